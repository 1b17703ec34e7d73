"""``harness gate``: did the candidate regress against its baseline? Exit 1 on BLOCK (docs/gating.md)."""

from __future__ import annotations

from pathlib import Path

import click

# Kept literal so ``harness --help`` need not import numpy; a test checks it equals harness.stats METRICS.
METRIC_CHOICES = ("pass_rate", "score", "cost", "latency_p95", "ttft_p95")


@click.command("gate")
@click.argument("runs", nargs=-1, required=True)
@click.option("--baseline", "baselines", multiple=True, metavar="RUN",
              help="Baseline run (e.g. from main), same forms as RUN; repeatable, matched by suite name. "
                   "Without it each run's variants are gated against the suite's baseline: variant.")
@click.option("--metric", "metrics", multiple=True, type=click.Choice(METRIC_CHOICES),
              help="Gate this metric (repeatable). Default: the suite's gate.metrics.")
@click.option("--strict", is_flag=True, help="WARN fails too (exit 1), not only BLOCK.")
@click.option("--non-inferiority", is_flag=True,
              help="Strict non-inferiority for release gates: BLOCK unless no drop larger than the margin is "
                   "shown. Needs a large suite; the gate warns when it is too small.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write JUnit XML: one testcase per gated comparison.")
@click.option("--markdown", "markdown_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the Markdown summary here (it is appended to $GITHUB_STEP_SUMMARY when that is set).")
@click.option("--reports", "reports_root", type=click.Path(file_okay=False, path_type=Path),
              default=Path("reports"), show_default=True, help="Where SUITE@RUN_ID names are looked up.")
@click.option("--max-flips", type=click.IntRange(min=0), default=10, show_default=True,
              help="Flipped cases listed per comparison in the terminal.")
def command(runs: tuple[str, ...], baselines: tuple[str, ...], metrics: tuple[str, ...], strict: bool,
            non_inferiority: bool, junit_path: Path | None, markdown_path: Path | None, reports_root: Path,
            max_flips: int) -> int:
    """Gate RUN(s) against their baseline; Holm over every comparison gated in this call.

    RUN is a run folder (reports/<suite>/<run-id>), SUITE@RUN_ID, SUITE@latest, a suite name (its latest
    run), a run id (that run of every suite), a suite file, or a folder (a reports root or a folder of
    suites: the latest run of each suite).

    Exit codes: 0 no BLOCK (WARN too unless --strict), 1 BLOCK, 2 bad usage or unreadable run.
    """
    from harness.gate import gate_runs
    from harness.report.gate_markdown import render_markdown, write_step_summary
    from harness.report.gate_text import render_text
    from harness.report.junit import write_junit
    from harness.run_names import resolve_runs
    from harness.store import write_atomic

    run_dirs = [p for spec in runs for p in resolve_runs(spec, reports_root)]
    base_dirs = [p for spec in baselines for p in resolve_runs(spec, reports_root)]
    _refuse_empty_runs([*run_dirs, *base_dirs])
    outcome = gate_runs(run_dirs, base_dirs, metrics=list(metrics) or None, non_inferiority=non_inferiority,
                        fail_on_warn=strict)  # fmt: skip
    click.echo(render_text(outcome, max_flips))
    markdown = render_markdown(outcome)
    if markdown_path is not None:
        write_atomic(markdown_path, markdown)
    summary = write_step_summary(markdown)
    if summary is not None:
        click.echo(f"summary appended to {summary}", err=True)
    if junit_path is not None:
        write_junit(outcome, junit_path)
        click.echo(f"JUnit XML: {junit_path}", err=True)
    return outcome.exit_code


def _refuse_empty_runs(run_dirs: list[Path]) -> None:
    """A run that finished no trial (a broken replay, an outage) must not pass the gate by having nothing in it."""
    from harness.errors import RunIncompleteError
    from harness.store import Manifest

    for directory in run_dirs:
        manifest = Manifest.read(directory)
        if manifest.trials_done == 0:
            raise RunIncompleteError(
                f"run {directory} finished no trial ({manifest.status}, 0/{manifest.trials_planned}): nothing to "
                "gate. Fix the run first (a replay miss or an unreachable endpoint is named in its output)."
            )
