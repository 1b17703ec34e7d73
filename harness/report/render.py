"""Rendering a stored run in one of the report formats."""

from __future__ import annotations

from pathlib import Path

from harness.stats.seeding import seed_from
from harness.stats.summary import VariantSummary, summarize_variants
from harness.store import RESULTS_FILE, Manifest, read_results


def run_seed(manifest: Manifest) -> int:
    # Seeded by what the run evaluated, not by its timestamped id, so a replay of the same suite
    # reproduces every bootstrap interval and the report is byte-identical.
    return seed_from(f"{manifest.suite}:{manifest.suite_hash}")


def load_summaries(directory: Path) -> tuple[Manifest, list[VariantSummary]]:
    manifest = Manifest.read(directory)
    summaries = summarize_variants(read_results(directory / RESULTS_FILE), seed=run_seed(manifest))
    return manifest, summaries


def render_run(directory: Path, fmt: str = "table") -> str:
    from harness.report.table import methods_note, summary_table

    manifest, summaries = load_summaries(directory)
    if fmt == "table":
        head = f"{manifest.suite} · run {manifest.run_id} · {manifest.status}"
        return f"{head}\n{summary_table(summaries)}\n{methods_note(summaries)}"
    if fmt == "markdown":
        return f"### {manifest.suite}\n\n{summary_table(summaries, 'github')}\n\n{methods_note(summaries)}\n"
    raise ValueError(f"unknown format {fmt!r}")
