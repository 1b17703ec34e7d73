"""``harness history``: a suite's runs over time per variant, with a drift check; ``--rebuild`` the index."""

from __future__ import annotations

from pathlib import Path

import click

from harness.errors import EXIT_OK

HISTORY_METRICS = ("pass_rate", "score", "cost", "latency_p50", "latency_p95", "ttft")


@click.command("history")
@click.argument("suite", required=False)
@click.option("--variant", default=None, help="Only this variant (its label, as reports print it).")
@click.option("--metric", type=click.Choice(HISTORY_METRICS), default="pass_rate", show_default=True)
@click.option("--last", type=click.IntRange(min=1), default=20, show_default=True, help="Runs per variant.")
@click.option("--branch", default=None, help="Only runs made on this git branch.")
@click.option("--reports", "reports_root", type=click.Path(file_okay=False, path_type=Path),
              default=Path("reports"), show_default=True)
@click.option("--rebuild", is_flag=True, help="Rebuild reports/index.sqlite from the run folders first.")
@click.option("--wide", is_flag=True, help="Show each rate's 95% interval.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def command(suite: str | None, variant: str | None, metric: str, last: int, branch: str | None,
            reports_root: Path, rebuild: bool, wide: bool, fmt: str) -> int:  # fmt: skip
    """SUITE's runs over time, per variant: date, commit, value, change, sparkline and a drift check.

    Drift: a permutation trend test over the window (sustained change) is reported apart from the latest
    run against the earlier ones (a single run, possibly noise). Without SUITE: the suites with runs.
    """
    from harness.history.index import HistoryIndex

    index = HistoryIndex(reports_root)
    if rebuild:
        counts = index.rebuild()
        click.echo(f"rebuilt {index.path}: {counts['runs']} run folder(s), {counts['added_or_updated']} indexed",
                   err=True)  # fmt: skip
    if suite is None:
        index.sync()
        for name in index.suites():
            runs = index.runs(name)
            click.echo(f"{name}: {len(runs)} run(s), latest {runs[-1]['run_id']}")
        return EXIT_OK
    from harness.history.series import load_series
    from harness.history.table import history_json, render_history

    found = load_series(reports_root, suite, variant=variant, metric=metric, last=last, branch=branch)
    click.echo(history_json(found) if fmt == "json" else render_history(found, wide), nl=fmt != "json")
    return EXIT_OK
