"""``harness compare``: two runs of one suite, paired on case id."""

from __future__ import annotations

from pathlib import Path

import click

from harness.errors import EXIT_OK

METRICS = ("pass_rate", "score", "cost", "latency_p95", "ttft_p95")


@click.command("compare")
@click.argument("run_a")
@click.argument("run_b")
@click.option("--format", "fmt", type=click.Choice(["table", "markdown", "json"]), default="table",
              show_default=True)
@click.option("--metric", "metrics", multiple=True, type=click.Choice(METRICS),
              help="Metric to compare (repeatable). Default: the suite's gate metrics.")
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None, help="Write to this file.")
@click.option("--reports", "reports_root", type=click.Path(path_type=Path), default=Path("reports"),
              show_default=True, help="Where run ids are looked up.")
@click.option("--wide", is_flag=True, help="The terminal table with every interval (wider than 120 columns).")
def command(run_a: str, run_b: str, fmt: str, metrics: tuple[str, ...], output: Path | None,
            reports_root: Path, wide: bool) -> int:  # fmt: skip
    """Compare RUN_B against RUN_A (the baseline): each variant against the same variant, paired on case id.

    A run is a run folder, SUITE@RUN_ID, SUITE@latest, SUITE@BRANCH (newest run of that git branch), a
    suite name (its latest run) or a run id.

    Cases or variants present in one run only are listed, not dropped silently.
    """
    from harness.report.runs import compare_run_dirs, render_comparison
    from harness.run_names import resolve_one
    from harness.store import write_atomic

    dir_a, dir_b = resolve_one(run_a, reports_root), resolve_one(run_b, reports_root)
    result = compare_run_dirs(dir_a, dir_b, metrics or None)
    text = render_comparison(result, fmt, wide)
    if output is not None:
        write_atomic(output, text)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)
    return EXIT_OK
