"""``harness merge``: combine the shards of a CI matrix (``harness run --shard I/N``) into one run."""

from __future__ import annotations

from pathlib import Path

import click

from harness.errors import EXIT_INCOMPLETE, EXIT_OK


@click.command("merge")
@click.argument("runs", nargs=-1, required=True)
@click.option("--run-id", default=None, help="Name of the merged run folder (default: a timestamp + '-merged').")
@click.option("--reports", "reports_root", type=click.Path(file_okay=False, path_type=Path), default=Path("reports"),
              show_default=True, help="Where the merged run is written, and where run ids are looked up.")
def command(runs: tuple[str, ...], run_id: str | None, reports_root: Path) -> int:
    """Merge RUNS (run folders or run ids) into one run per suite.

    Runs of several suites may be given together (e.g. every shard folder a CI matrix uploaded); each suite's
    runs are merged into reports/<suite>/<run-id>. Exits 4 when a shard is missing or did not finish (the
    merged run is still written, marked incomplete), 2 when the runs cannot be merged.
    """
    from harness.merge import merge_runs, read_manifest
    from harness.report.locate import locate_run

    by_suite: dict[str, list[Path]] = {}
    for spec in runs:
        directory = locate_run(spec, reports_root)
        suite = read_manifest(directory).suite
        by_suite.setdefault(suite, []).append(directory)
    code = EXIT_OK
    for directories in by_suite.values():
        outcome = merge_runs(directories, reports_root, run_id)
        shards = ", ".join(str(m["shard"]) for m in outcome.manifest.settings["merged_from"] if m["shard"])
        click.echo(f"merged {len(directories)} run(s){f' (shards {shards})' if shards else ''}: "
                   f"{outcome.trials} trials into {outcome.directory}")
        if outcome.missing_shards:
            click.echo(f"missing shard(s): {', '.join(outcome.missing_shards)}; the merged run is incomplete",
                       err=True)
        for run in outcome.incomplete_runs:
            click.echo(f"run {run} did not finish; the merged run is incomplete", err=True)
        if not outcome.complete:
            code = EXIT_INCOMPLETE
    return code
