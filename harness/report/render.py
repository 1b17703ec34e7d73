"""Rendering a stored run: the one entry point for every report format."""

from __future__ import annotations

from pathlib import Path

from harness.report.build import ReportOptions, RunReport, build_report, load_run, run_seed
from harness.stats.summary import VariantSummary, summarize_variants
from harness.store import Manifest, write_atomic

__all__ = ["FORMATS", "FILE_NAMES", "load_summaries", "render_report", "render_run", "run_seed", "write_reports"]

FORMATS = ("summary", "table", "markdown", "json", "html")
# What ``harness report`` writes into the run folder, by format.
FILE_NAMES = {"markdown": "report.md", "json": "report.json", "html": "report.html", "table": "report.txt",
              "summary": "summary.txt"}


def load_summaries(directory: Path) -> tuple[Manifest, list[VariantSummary]]:
    manifest, results = load_run(directory)
    return manifest, summarize_variants(results, seed=run_seed(manifest))


def render_report(report: RunReport, fmt: str, wide: bool = False) -> str:
    """``wide``: terminal formats keep every interval (wider than 120 columns)."""
    if fmt == "summary":
        from harness.report.text import render_summary

        return render_summary(report, wide)
    if fmt == "table":
        from harness.report.text import render_terminal

        return render_terminal(report, wide)
    if fmt == "markdown":
        from harness.report.text import render_markdown

        return render_markdown(report)
    if fmt == "json":
        from harness.report.json_report import render_json

        return render_json(report)
    if fmt == "html":
        from harness.report.html_report import render_html

        return render_html(report)
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def render_run(directory: Path, fmt: str = "table", options: ReportOptions | None = None, wide: bool = False) -> str:
    """The run in folder ``directory`` as ``summary`` or ``table`` (terminal), ``markdown``, ``json`` or ``html``."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return render_report(build_report(directory, options), fmt, wide)


def write_reports(
    directory: Path, formats: tuple[str, ...] = ("markdown", "json", "html"), options: ReportOptions | None = None
) -> list[Path]:
    """Write each format into the run folder (atomically: readers never see half a report)."""
    report = build_report(directory, options)
    written = []
    for fmt in formats:
        path = directory / FILE_NAMES[fmt]
        write_atomic(path, render_report(report, fmt))
        written.append(path)
    return written
