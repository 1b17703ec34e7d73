"""What ``harness run`` prints: the header before, the summary and any problems after."""

from __future__ import annotations

import shlex
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import click

from harness.cli.batch import batch_flags
from harness.errors import EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_OK, EXIT_REPLAY_MISS
from harness.pipeline import JUDGE_UNANSWERED, RunOptions, RunOutcome
from harness.suite.model import ModelSpec, Suite

MAX_LISTED = 20


def print_run_header(suite: Suite, options: RunOptions) -> None:
    import os

    from harness.execute.clients import choose_modes

    modes = choose_modes(suite, options.record, ci=bool(os.environ.get("CI")))
    shown = ", ".join(f"{m}: {mode}" for m, mode in modes.items())
    click.echo(f"suite {suite.name} ({suite.path.name}) · record mode {shown}", err=True)
    for warning in suite.warnings:
        click.echo(f"warning: {warning}", err=True)


def print_run_summary(outcome: RunOutcome, formats: Sequence[str], wide: bool = False) -> int:
    from harness.report.render import render_run

    try:
        for fmt in formats:
            click.echo(render_run(outcome.directory, fmt, wide=wide))
    except KeyboardInterrupt:
        if not outcome.interrupted:
            raise
        # A second Ctrl-C may cut the summary short, but never the way to resume.
    click.echo(f"results: {shown_path(outcome.results_path)}", err=True)
    for note in outcome.notes:
        click.echo(note, err=True)
    if outcome.interrupted:
        click.echo(f"interrupted: finished trials are saved. Resume with:\n  {resume_command(outcome)}", err=True)
        return EXIT_INTERRUPTED
    code = EXIT_OK
    if outcome.batches_pending:
        click.echo(f"\n{outcome.batches_pending} batch(es) submitted and still running; collect their results "
                   f"with:\n  {resume_command(outcome)}\n(`harness batches {outcome.directory}` shows them)",
                   err=True)
    misses = outcome.execute.replay_misses
    if misses:
        click.echo(f"\nreplay miss: {len(misses)} trial(s) have no recording in cassettes/ that can be replayed:",
                   err=True)
        for trial, why in misses[:MAX_LISTED]:
            # A recording that is there but unusable (a 5xx, a body that is not JSON) says which and where.
            detail = "" if why.startswith("no recording") else f": {why}"
            click.echo(f"  {trial.describe()}{detail}", err=True)
        if len(misses) > MAX_LISTED:
            click.echo(f"  … and {len(misses) - MAX_LISTED} more", err=True)
        models = {trial.model.id: trial.model for trial, _ in misses}
        click.echo(f"record them by adding --record record-missing ({_what_recording_needs(models.values())}):\n  "
                   f"{resume_command(outcome, record='record-missing')}", err=True)
        code = EXIT_REPLAY_MISS
    judged = _judge_replay_misses(outcome)
    if judged:
        click.echo(f"\nreplay miss: {len(judged)} judge grade(s) have no recorded judge call in cassettes/:", err=True)
        for line in judged[:MAX_LISTED]:
            click.echo(f"  {line}", err=True)
        if len(judged) > MAX_LISTED:
            click.echo(f"  … and {len(judged) - MAX_LISTED} more", err=True)
        # A new run, not a resume: a resume keeps these trials as finished and would not grade them again.
        words = shlex.split(resume_command(outcome, record="record-missing"))
        at = words.index("--resume")
        del words[at : at + 2]
        click.echo(f"record them in a new run (needs the judge's key variable):\n  {shlex.join(words)}", err=True)
        code = EXIT_REPLAY_MISS
    if outcome.execute.down or outcome.execute.skipped_down:
        for model, why in outcome.execute.down.items():
            # A rejected key or an exhausted quota is not an outage: the message says which, and names the key.
            reachable = outcome.execute.down_kinds.get(model, "connection") in ("auth", "quota")
            click.echo(f"\nmodel {model} {'gave up' if reachable else 'unreachable, gave up'}: {why}", err=True)
        click.echo(f"{outcome.execute.skipped_down} trial(s) not run. When the endpoint is back:\n"
                   f"  {resume_command(outcome)}", err=True)
        code = max(code, EXIT_INCOMPLETE)
    if outcome.finished and not outcome.answered and not outcome.skipped_done:
        # Nothing was evaluated: a run of 100% errors must not look like a result (nor exit 0).
        kinds = "; ".join(f"{kind} ×{n}, e.g. {first}" for kind, (n, first) in outcome.final_errors.items())
        click.echo(f"\nevery trial of this run failed, none got an answer ({kinds}); nothing was evaluated. Fix "
                   "the request (the message is the provider's) and run again.", err=True)
        code = max(code, EXIT_INCOMPLETE)
    errors = Counter(outcome.unfinished_errors)
    judged = errors.pop(JUDGE_UNANSWERED, 0)
    if judged:
        click.echo(f"\n{judged} trial(s) have a judge call that could not answer (refused, timed out or failed "
                   "after retries): their cases are undecided unless another grader already failed them, and "
                   f"the run is not finished. Redo those judge calls with:\n  {resume_command(outcome)}", err=True)
        code = max(code, EXIT_INCOMPLETE)
    if errors:
        kinds = ", ".join(f"{kind} {n}" for kind, n in errors.most_common())
        click.echo(f"\n{sum(errors.values())} trial(s) ended in an error worth retrying ({kinds}); the summary "
                   f"counts them as errors. Run them again with:\n  {resume_command(outcome)}", err=True)
        code = max(code, EXIT_INCOMPLETE)
    return code


def shown_path(path: Path) -> str:
    """A path as a person would type it here: relative to the working directory when it is below it."""
    import os

    try:
        relative = os.path.relpath(Path(path).absolute(), Path.cwd())
    except ValueError:  # another drive (Windows)
        return str(path)
    return str(path) if relative.startswith("..") else relative


def _what_recording_needs(models: Iterable[ModelSpec]) -> str:
    """Which key variables (or which running servers) recording these models needs, named exactly."""
    keys = sorted({m.api_key_env for m in models if m.api_key_env})
    keyless = sorted({m.base_url or m.id for m in models if not m.api_key_env})
    parts = []
    if keys:
        parts.append(f"with {' and '.join(keys)} set")
    if keyless:
        parts.append(f"no key needed; the endpoint must be up: {', '.join(keyless)}")
    return "; ".join(parts) or "the model's endpoint must be reachable"


def resume_command(outcome: RunOutcome, record: str | None = None) -> str:
    """The command that continues this run with the same plan, folders and record mode."""
    options = outcome.options
    words = ["harness", "run", shown_path(outcome.suite.path), "--resume", outcome.run_id]
    record = record or options.record
    if record:
        words += ["--record", record]
    defaults = RunOptions()
    if Path(options.reports_root) != defaults.reports_root:
        words += ["--reports", shown_path(Path(options.reports_root))]
    if options.cassettes_root is not None:
        words += ["--cassettes", shown_path(Path(options.cassettes_root))]
    for flag, values in (("--model", options.models), ("--prompt", options.prompts), ("--case", options.cases)):
        for value in values or ():
            words += [flag, value]
    if options.shard is not None:
        words += ["--shard", str(options.shard)]
    words += batch_flags(options.batch)
    return shlex.join(words)


def _judge_replay_misses(outcome: RunOutcome) -> list[str]:
    """Trials whose grade is undecided because a grader's own call (a judge's) was not in the cassette."""
    from harness.store import read_results

    found: list[str] = []
    if not _mentions(outcome.results_path, b"replay miss"):
        return found  # the usual case, told by a byte scan instead of parsing every record again
    for result in read_results(outcome.results_path):
        for grade in result.grades:
            if grade.passed is None and (grade.error or "").startswith("replay miss"):
                error = grade.error or ""
                error = error if len(error) <= 240 else error[:239] + "…"
                found.append(f"case {result.case_id} · {result.variant} · repeat {result.repeat}: {error}")
    return found


def _mentions(path: Path, needle: bytes) -> bool:
    """Whether the file contains ``needle``, read in 1 MB blocks (a missing file contains nothing)."""
    try:
        with path.open("rb") as fh:
            carry = b""
            while block := fh.read(1 << 20):
                if needle in carry + block:
                    return True
                carry = block[-(len(needle) - 1):]
    except FileNotFoundError:
        return False
    return False
