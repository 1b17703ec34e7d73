"""``harness batch export|import`` and ``harness batches RUN``, plus the ``--batch`` flags of ``harness run``.

Thin: flags are parsed here and handed to ``harness.execute.batch``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from harness.errors import EXIT_OK, HarnessError

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d)?$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_wait(text: str | None) -> float | None:
    """``none`` (submit and return): 0; ``done`` or unset: None (until every batch ended); else a duration."""
    if text is None or text.strip().lower() in ("done", "until-done"):
        return None
    if text.strip().lower() == "none":
        return 0.0
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise HarnessError(f"--batch-wait {text!r}: expected none, done, or a duration such as 90s, 30m, 24h")
    return float(match.group(1)) * _SECONDS[match.group(2) or "s"]


def batch_run_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The ``--batch`` family of ``harness run`` flags."""
    options = [
        click.option("--batch/--no-batch", "batch", default=None,
                     help="Send calls that need the API through the Batch API (default: each model's `batch:`)."),
        click.option("--batch-wait", default=None, metavar="none|done|DURATION",
                     help="How long to wait for batches: none submits and exits 0 (resume later) [default: done]."),
        click.option("--batch-window", default="24h", show_default=True, help="The batches' completion window."),
        click.option("--batch-max-requests", type=click.IntRange(min=1), default=50_000, show_default=True,
                     help="Requests per batch; more go into further batches."),
        click.option("--batch-max-bytes", type=click.IntRange(min=1), default=200 * 1024 * 1024,
                     show_default=True, help="Bytes per batch input file."),
        click.option("--batch-poll", type=click.FloatRange(min=0.0), default=5.0, show_default=True,
                     help="Seconds between the first status polls (grows to 60)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def batch_options(batch: bool | None, batch_wait: str | None, batch_window: str, batch_max_requests: int,
                  batch_max_bytes: int, batch_poll: float) -> Any:
    from harness.execute.batch.poll import PollSettings
    from harness.execute.batch.requests import BatchLimits
    from harness.execute.batch.runner import BatchOptions

    return BatchOptions(enabled=batch, limits=BatchLimits(batch_max_requests, batch_max_bytes, batch_window),
                        poll=PollSettings(wait=parse_wait(batch_wait), interval=batch_poll,
                                          max_interval=max(batch_poll, 60.0)))


def batch_flags(options: Any) -> list[str]:
    """The flags that make a resume use batches as the run did."""
    words: list[str] = []
    if options.enabled is not None:
        words.append("--batch" if options.enabled else "--no-batch")
    limits = options.limits
    if limits.window != "24h":
        words += ["--batch-window", limits.window]
    if limits.max_requests != 50_000:
        words += ["--batch-max-requests", str(limits.max_requests)]
    if limits.max_bytes != 200 * 1024 * 1024:
        words += ["--batch-max-bytes", str(limits.max_bytes)]
    return words


def run_suite_of(run: str, reports_root: Any) -> tuple[Any, Any]:
    """The suite (loaded from the manifest's file) and folder of a run."""
    from harness.report.locate import locate_run
    from harness.store import Manifest
    from harness.suite import load_suite

    directory = locate_run(run, reports_root)
    manifest = Manifest.read(directory)
    return load_suite(manifest.suite_file), directory


@click.group("batch")
def command() -> None:
    """Batch files for other engines: export a suite's requests, import the engine's answers."""


@command.command("export")
@click.argument("suite_path", type=click.Path())
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="The request file (JSONL).")
@click.option("--run-id", default=None, help="Name of the run that will receive the answers.")
@click.option("--reports", "reports_root", type=click.Path(path_type=Path), default=Path("reports"),
              show_default=True)
@click.option("--model", "models", multiple=True, help="Only this model id (repeatable).")
@click.option("--prompt", "prompts", multiple=True, help="Only this prompt version (repeatable).")
@click.option("--case", "cases", multiple=True, help="Only this case id (repeatable).")
def export_command(suite_path: str, output: Path, run_id: str | None, reports_root: Path,
                   models: tuple[str, ...], prompts: tuple[str, ...], cases: tuple[str, ...]) -> int:
    """Write every trial's request as an OpenAI batch line (custom_id = trial id) and open a run for the answers."""
    from harness.execute.batch.runner import BatchOptions
    from harness.pipeline import RunOptions, run_suite
    from harness.suite import load_suite

    suite = load_suite(suite_path)
    options = RunOptions(reports_root=reports_root, run_id=run_id, record="record", models=list(models) or None,
                         prompts=list(prompts) or None, cases=list(cases) or None, progress=False,
                         batch=BatchOptions(enabled=True, export_to=output))
    outcome = run_suite(suite, options)
    for note in outcome.notes:
        click.echo(note, err=True)
    click.echo(f"run {outcome.run_id} waits for the answers; when the engine is done:\n"
               f"  harness batch import {outcome.directory} ANSWERS.jsonl", err=True)
    return EXIT_OK


@command.command("import")
@click.argument("run")
@click.argument("answers", type=click.Path(path_type=Path))
@click.option("--reports", "reports_root", type=click.Path(path_type=Path), default=Path("reports"),
              show_default=True)
@click.option("--cassettes", "cassettes_root", type=click.Path(path_type=Path), default=None,
              help="Recordings folder [default: cassettes/ in the suite's project].")
def import_command(run: str, answers: Path, reports_root: Path, cassettes_root: Path | None) -> int:
    """Grade and store an engine's answer file (OpenAI batch output format) into the run and the cassettes."""
    from harness.cli.output import print_run_summary
    from harness.execute.batch.runner import BatchOptions
    from harness.pipeline import RunOptions, run_suite

    suite, directory = run_suite_of(run, reports_root)
    options = RunOptions(reports_root=directory.parent.parent, cassettes_root=cassettes_root,
                         run_id=directory.name, resume=True, progress=False,
                         batch=BatchOptions(import_from=answers))
    outcome = run_suite(suite, options)
    return print_run_summary(outcome, ("summary",))
