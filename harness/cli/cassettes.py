"""``harness cassettes``: what is recorded, what a replay would miss, what no trial uses any more."""

from __future__ import annotations

from pathlib import Path

import click

from harness.errors import EXIT_OK, EXIT_REPLAY_MISS

MAX_LISTED = 20


@click.command("cassettes")
@click.argument("suite_path", type=click.Path())
@click.option("--cassettes", "cassettes_root", type=click.Path(path_type=Path), default=None,
              help="Recordings folder [default: cassettes/ in the suite's project].")
@click.option("--prune", is_flag=True, help="Drop recordings that no trial of the suite uses.")
def command(suite_path: str, cassettes_root: Path | None, prune: bool) -> int:
    """Show, per model, recorded interactions, trials missing a recording and unused recordings.

    Exits 3 when a replay of the suite would miss.
    """
    from tabulate import tabulate

    from harness.execute import inventory as inv
    from harness.pipeline import cassettes_root as default_root
    from harness.suite import load_suite

    suite = load_suite(suite_path)
    cassettes_root = default_root(suite, cassettes_root)
    items = inv.inventory(suite, cassettes_root)
    rows = [[i.model, str(i.path), i.recorded if i.exists else "no file", i.expected, len(i.missing),
             len(i.unused)] for i in items]
    rows += [[label, str(path), count, "–", "–", "–"]
             for label, path, count in inv.judge_cassettes(suite, cassettes_root)]
    click.echo(tabulate(rows, headers=["model", "cassette", "recorded", "needed", "missing", "unused"],
                        disable_numparse=True))
    missing = [t for i in items for t in i.missing]
    for trial in missing[:MAX_LISTED]:
        click.echo(f"  missing: {trial.describe()}")
    if len(missing) > MAX_LISTED:
        click.echo(f"  … and {len(missing) - MAX_LISTED} more")
    if missing:
        click.echo(f"record them with: harness run {suite_path} --record record-missing")
    if prune:
        dropped = inv.prune(suite, cassettes_root)
        click.echo(f"pruned: {sum(dropped.values())} unused interaction(s)"
                   + "".join(f"\n  {m}: {n}" for m, n in dropped.items()))
    return EXIT_REPLAY_MISS if missing else EXIT_OK
