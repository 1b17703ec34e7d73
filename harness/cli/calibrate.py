"""``harness calibrate RUN``: how well each judge in a run agrees with the cases' human labels."""

from __future__ import annotations

from pathlib import Path

import click

from harness.errors import EXIT_OK


@click.command("calibrate")
@click.argument("run")
@click.option("--format", "fmt", type=click.Choice(["table", "markdown", "json"]), default="table",
              show_default=True)
@click.option("--reports", "reports_root", type=click.Path(path_type=Path), default=Path("reports"),
              show_default=True, help="Where run folders are, for a bare run id.")
def command(run: str, fmt: str, reports_root: Path) -> int:
    """Judge–human agreement in RUN (a run folder, its results.jsonl, or a run id): accuracy, Cohen's kappa
    and the confusion matrix with 95% intervals, and the cases where judge and humans disagree."""
    import json

    from harness.errors import HarnessError
    from harness.report.locate import locate_run
    from harness.stats.calibration import calibration_from_results, vote_agreement
    from harness.store import RESULTS_FILE, read_results

    directory = locate_run(run, reports_root)
    results = list(read_results(directory / RESULTS_FILE))
    calibration = calibration_from_results(results)
    votes = vote_agreement(results)
    if calibration is None:
        raise HarnessError(
            f"{directory}: nothing to calibrate: no trial has both a human label and a judge grade. "
            "Give cases `label: pass` / `label: fail` (or a value of the judge's scale) and a `judge` grader"
        )
    if fmt == "json":
        data = {**calibration.to_dict(), "votes": {v.judge: v.to_dict() for v in votes}}
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        click.echo(calibration.markdown() if fmt == "markdown" else calibration.table(), nl=False)
        for vote in votes:
            click.echo(f"\n{vote.line()}")
    return EXIT_OK
