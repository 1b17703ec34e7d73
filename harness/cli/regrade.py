"""``harness regrade``: grade a run's stored outputs again with the suite's current graders, into a new run."""

from __future__ import annotations

from pathlib import Path

import click

from harness.errors import EXIT_INCOMPLETE, EXIT_OK


@click.command("regrade")
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--suite", "suite_path", type=click.Path(), default=None,
              help="The suite whose graders to use [default: the run's suite file].")
@click.option("--run-id", default=None, help="Name of the new run folder (default: a timestamp).")
@click.option("--reports", "reports_root", type=click.Path(path_type=Path), default=None,
              help="Where the new run goes [default: beside the old one].")
@click.option("--cassettes", "cassettes_root", type=click.Path(path_type=Path), default=None,
              help="Recordings folder for judges [default: cassettes/ in the suite's project].")
def command(run: Path, suite_path: str | None, run_id: str | None, reports_root: Path | None,
            cassettes_root: Path | None) -> int:
    """Grade RUN's stored outputs again with the current graders: no API calls, a new run folder.

    Exits 4 when the current suite plans trials RUN has no output for (run them with --resume of the new run).
    """
    from harness.cli.output import shown_path
    from harness.regrade import regrade
    from harness.store import Manifest
    from harness.suite import load_suite

    suite = load_suite(suite_path or Manifest.read(run).suite_file)
    outcome = regrade(suite, run, reports_root=reports_root, run_id=run_id, cassettes=cassettes_root)
    click.echo(f"regraded {outcome.regraded} output(s) into {shown_path(outcome.directory)} "
               f"({outcome.carried} final error(s) copied; {run} is unchanged)", err=True)
    if outcome.dropped:
        click.echo(f"{len(outcome.dropped)} record(s) left out: their case or prompt changed, so the current suite "
                   "plans other trials for them", err=True)
    if outcome.missing:
        click.echo(f"{outcome.missing} trial(s) of the current suite have no stored output; run them with:\n  "
                   f"harness run {suite.path} --resume {outcome.directory.name} "
                   f"--reports {outcome.directory.parent.parent}", err=True)
        return EXIT_INCOMPLETE
    return EXIT_OK
