"""``harness report``: a stored run as terminal table, Markdown, JSON or self-contained HTML."""

from __future__ import annotations

from pathlib import Path

import click

from harness.errors import EXIT_OK

FORMATS = ("table", "markdown", "json", "html")
METRICS = ("pass_rate", "score", "cost", "latency_p95", "ttft_p95")


@click.command("report")
@click.argument("run")
@click.option("--format", "formats", multiple=True, type=click.Choice(FORMATS),
              help="Print this format to stdout (repeatable). Default: print the table and write report.md, "
                   "report.json and report.html into the run folder.")  # fmt: skip
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None,
              help="Write one format to this file instead (format from --format or the suffix).")
@click.option("--baseline", default=None, metavar="VARIANT",
              help="Compare against this variant: its label, or model=…,prompt=…,temperature=… "
                   "(unset fields from the suite's baseline).")  # fmt: skip
@click.option("--all-pairs", is_flag=True, help="Compare every pair of variants (Holm over all pairs).")
@click.option("--metric", "metrics", multiple=True, type=click.Choice(METRICS),
              help="Metric to compare (repeatable). Default: the suite's gate metrics.")
@click.option("--reports", "reports_root", type=click.Path(path_type=Path), default=Path("reports"),
              show_default=True, help="Where run ids are looked up.")
@click.option("--wide", is_flag=True, help="Terminal tables with every interval (wider than 120 columns).")
def command(run: str, formats: tuple[str, ...], output: Path | None, baseline: str | None, all_pairs: bool,
            metrics: tuple[str, ...], reports_root: Path, wide: bool) -> int:  # fmt: skip
    """Report on RUN: a run folder, a suite's folder (its latest run) or a run id."""
    from harness.report.build import ReportOptions, build_report
    from harness.report.locate import locate_run, output_format
    from harness.report.render import FILE_NAMES, render_report
    from harness.store import write_atomic

    directory = locate_run(run, reports_root)
    report = build_report(directory, ReportOptions(baseline=baseline, all_pairs=all_pairs,
                                                   metrics=metrics or None))  # fmt: skip
    if output is not None:
        write_atomic(output, render_report(report, output_format(output, formats), wide))
        click.echo(f"wrote {output}", err=True)
        return EXIT_OK
    if formats:
        for fmt in formats:
            click.echo(render_report(report, fmt, wide), nl=False)
        return EXIT_OK
    for fmt in ("markdown", "json", "html"):
        path = directory / FILE_NAMES[fmt]
        write_atomic(path, render_report(report, fmt))
        click.echo(f"wrote {path}", err=True)
    click.echo(render_report(report, "table", wide), nl=False)
    return EXIT_OK
