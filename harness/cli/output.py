"""What ``harness run`` prints: the header before, the summary and any problems after."""

from __future__ import annotations

from collections.abc import Sequence

import click

from harness.errors import EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_OK, EXIT_REPLAY_MISS
from harness.pipeline import RunOptions, RunOutcome
from harness.suite.model import Suite

MAX_LISTED = 20


def print_run_header(suite: Suite, options: RunOptions) -> None:
    import os

    from harness.execute.clients import choose_modes

    modes = choose_modes(suite, options.record, ci=bool(os.environ.get("CI")))
    shown = ", ".join(f"{m}: {mode}" for m, mode in modes.items())
    click.echo(f"suite {suite.name} ({suite.path.name}) · record mode {shown}", err=True)


def print_run_summary(outcome: RunOutcome, formats: Sequence[str]) -> int:
    from harness.report.render import render_run

    for fmt in formats:
        text = render_run(outcome.directory, fmt)
        if fmt == "table":
            click.echo(text)
        else:
            click.echo(text)
    click.echo(f"results: {outcome.results_path}", err=True)
    if outcome.interrupted:
        click.echo(f"interrupted: finished trials are saved. Resume with:\n  harness run {outcome.suite.path} "
                   f"--resume {outcome.run_id}", err=True)
        return EXIT_INTERRUPTED
    code = EXIT_OK
    misses = outcome.execute.replay_misses
    if misses:
        click.echo(f"\nreplay miss: {len(misses)} trial(s) have no recording in cassettes/:", err=True)
        for trial, _ in misses[:MAX_LISTED]:
            click.echo(f"  {trial.describe()}", err=True)
        if len(misses) > MAX_LISTED:
            click.echo(f"  … and {len(misses) - MAX_LISTED} more", err=True)
        click.echo(f"record them with (needs the model's key variable):\n  harness run {outcome.suite.path} "
                   f"--record record-missing --resume {outcome.run_id}", err=True)
        code = EXIT_REPLAY_MISS
    if outcome.execute.down or outcome.execute.skipped_down:
        for model, why in outcome.execute.down.items():
            click.echo(f"\nmodel {model} unreachable, gave up: {why}", err=True)
        click.echo(f"{outcome.execute.skipped_down} trial(s) not run. When the endpoint is back:\n"
                   f"  harness run {outcome.suite.path} --resume {outcome.run_id}", err=True)
        code = max(code, EXIT_INCOMPLETE)
    return code
