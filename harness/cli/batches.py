"""``harness batches RUN``: the run's batches with their status and counts; ``--cancel`` cancels them."""

from __future__ import annotations

from pathlib import Path

import click

from harness.errors import EXIT_OK


@click.command("batches")
@click.argument("run")
@click.option("--reports", "reports_root", type=click.Path(path_type=Path), default=Path("reports"),
              show_default=True)
@click.option("--cancel", is_flag=True, help="Cancel the batches still running (a resume collects what finished).")
def command(run: str, reports_root: Path, cancel: bool) -> int:
    """Show each batch of a run: provider id, status, requests completed and failed."""
    from tabulate import tabulate

    from harness.cli.batch import run_suite_of
    from harness.execute.batch.status import batch_table

    suite, directory = run_suite_of(run, reports_root)
    rows = batch_table(suite, directory, cancel=cancel)
    if not rows:
        click.echo(f"{directory}: no batches")
        return EXIT_OK
    headers = list(rows[0])
    click.echo(tabulate([[row[h] for h in headers] for row in rows], headers=headers, disable_numparse=True))
    return EXIT_OK
