"""``harness run``: evaluate suites and print the summary table."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import click

from harness.cli.batch import batch_options, batch_run_options
from harness.errors import EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_OK, EXIT_REPLAY_MISS


@click.command("run")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--record", "record", type=click.Choice(["replay", "record-missing", "record", "live"]),
              default=None, help="Cassette mode. Default: replay in CI or without a key, else record-missing.")
@click.option("--run-id", default=None, help="Name of the run folder (default: a timestamp).")
@click.option("--resume", "resume_id", default=None, metavar="RUN_ID",
              help="Continue an interrupted run, skipping finished trials.")
@click.option("--model", "models", multiple=True, help="Only this model id (repeatable).")
@click.option("--prompt", "prompts", multiple=True, help="Only this prompt version (repeatable).")
@click.option("--case", "cases", multiple=True, help="Only this case id (repeatable).")
@click.option("--shard", default=None, metavar="I/N", help="Run only slice I of N (for CI matrices).")
@click.option("--concurrency", type=click.IntRange(min=1), default=None,
              help="Override every model's max_concurrency.")
@click.option("--changed-since", default=None, metavar="REF",
              help="Only suites whose prompts, cases or graders changed since this git ref.")
@click.option("--reports", "reports_root", type=click.Path(path_type=Path), default=Path("reports"),
              show_default=True)
@click.option("--cassettes", "cassettes_root", type=click.Path(path_type=Path), default=None,
              help="Recordings folder [default: cassettes/ in the suite's project].")
@click.option("--format", "formats", multiple=True,
              type=click.Choice(["summary", "table", "markdown", "json", "html"]), default=("summary",),
              show_default=True, help="What to print after the run (table: the full terminal report).")
@click.option("--quiet", is_flag=True, help="No progress output.")
@click.option("--wide", is_flag=True, help="Terminal tables with every interval (wider than 120 columns).")
@batch_run_options
def command(paths: tuple[str, ...], record: str | None, run_id: str | None, resume_id: str | None,
            models: tuple[str, ...], prompts: tuple[str, ...], cases: tuple[str, ...], shard: str | None,
            concurrency: int | None, changed_since: str | None, reports_root: Path, cassettes_root: Path | None,
            formats: tuple[str, ...], quiet: bool, wide: bool, **batch: Any) -> int:
    """Run suites (files or folders) across their models, prompts, temperatures and repeats."""
    from harness.errors import HarnessError
    from harness.plan import Shard
    from harness.store.results import plain_name
    from harness.suite import load_suite
    from harness.suite.discover import expand_paths

    for flag, name in (("--run-id", run_id), ("--resume", resume_id)):
        if name is not None:
            plain_name(name, flag)  # before anything is loaded or written
    suite_paths = expand_paths(paths)
    if changed_since:
        from harness.changes import changed_suites

        suite_paths = changed_suites(suite_paths, changed_since)
        if not suite_paths:
            click.echo(f"no suite changed since {changed_since}; nothing to run")
            return EXIT_OK
    if resume_id and len(suite_paths) > 1:
        raise HarnessError("--resume applies to one suite; name a single suite file")
    try:
        shard_spec = Shard.parse(shard) if shard else None
    except ValueError as exc:
        raise HarnessError(str(exc)) from None
    # Every suite is loaded, and every needed key checked, before anything runs (or the heavy client
    # libraries are imported): a bad suite or a missing key fails at once, not after an hour of trials.
    suites = [load_suite(path) for path in suite_paths]
    batching = batch_options(**batch)
    import os

    from harness.execute.clients import check_keys, choose_modes

    for suite in suites:
        check_keys(suite, choose_modes(suite, record, ci=bool(os.environ.get("CI"))), list(models) or None)

    from harness.cli.output import print_run_header, print_run_summary
    from harness.pipeline import RunOptions, run_suite

    # Everything imported and loaded so far (the SDK, vcrpy, the suites) lives until the process ends; freezing
    # it keeps each full garbage collection during the run from rescanning it (a 1,000-trial replay, best of 5:
    # 2.35 s without, 2.08 s with). It affects the whole process, so it is done here in the CLI and not in the
    # library, and undone afterwards for callers that run the command in-process (tests) unless they froze first.
    frozen_before = gc.get_freeze_count()
    gc.freeze()
    try:
        worst = EXIT_OK
        for suite in suites:
            options = RunOptions(
                reports_root=reports_root, cassettes_root=cassettes_root, run_id=resume_id or run_id,
                resume=bool(resume_id), record=record, models=list(models) or None,
                prompts=list(prompts) or None, cases=list(cases) or None, shard=shard_spec,
                concurrency=concurrency, progress=not quiet, batch=batching,
            )
            print_run_header(suite, options)
            outcome = run_suite(suite, options)
            code = print_run_summary(outcome, formats, wide)
            if code == EXIT_INTERRUPTED:
                return code
            worst = max(worst, code) if code in (EXIT_REPLAY_MISS, EXIT_INCOMPLETE) else worst
        return worst
    finally:
        if not frozen_before:
            gc.unfreeze()
