"""Wires the stages for one run: suite → plan → render → execute → grade → store.

The CLI and the pytest plugin both call :func:`run_suite`; neither knows how the stages fit together.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import secrets
import shlex
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import __version__
from harness.errors import HarnessError, StorageError
from harness.execute.batch.runner import BatchOptions, BatchRunner, is_deferred
from harness.execute.clients import ClientPool, choose_modes
from harness.execute.progress import RunProgress
from harness.execute.provider import Completion, call
from harness.execute.scheduler import Attempted, ExecuteReport, Scheduler
from harness.execute.tool_loop import RoundTrip, ToolBox, loop_grade, run_round_trip
from harness.grade.base import Grade, GradeContext, Output
from harness.grade.runner import combine, grade_output
from harness.history.gitinfo import git_info
from harness.plan import Shard, Trial, iter_trials
from harness.render import Request, case_vars, render_request
from harness.resume_rule import check_resume, resume_done_ids, suite_inputs
from harness.run_signals import sigint_deferred, sigterm_as_ctrl_c
from harness.store import (
    MANIFEST_FILE,
    RESULTS_FILE,
    GradeRecord,
    Manifest,
    ResultsWriter,
    RunLock,
    SpaceReserve,
    TrialError,
    TrialResult,
    choice_id,
    run_dir,
)
from harness.suite.model import Suite
from harness.templating import render_text

JUDGE_UNANSWERED = "judge unanswered"

@dataclass
class RunOptions:
    """How to run a suite.

    Args:
        reports_root: where run folders go (``<root>/<suite>/<run-id>``).
        cassettes_root: where recordings go (``<root>/<suite>/<model>.json``); by default the ``cassettes``
            folder of the suite's project (so a run from another working directory finds them).
        run_id: name of the run folder; a new timestamped id when ``None``.
        resume: continue ``run_id``, skipping trials already recorded in it.
        record: ``replay``, ``record-missing``, ``record`` or ``live``; chosen per model when ``None``.
        models, prompts, cases: run only these ids (all when ``None``).
        shard: run only this deterministic slice of the trials.
        concurrency: override every model's ``max_concurrency``.
        progress: show a progress bar / progress lines.
        batch: how calls go by batch (``--batch``/``--no-batch``, limits, waiting); see docs/batch.md.
    """

    reports_root: Path = Path("reports")
    cassettes_root: Path | None = None
    run_id: str | None = None
    resume: bool = False
    record: str | None = None
    models: list[str] | None = None
    prompts: list[str] | None = None
    cases: list[str] | None = None
    shard: Shard | None = None
    concurrency: int | None = None
    progress: bool = True
    batch: BatchOptions = field(default_factory=BatchOptions)


@dataclass
class RunOutcome:
    suite: Suite
    run_id: str
    directory: Path
    manifest: Manifest
    execute: ExecuteReport
    modes: dict[str, str]
    planned: int
    skipped_done: int
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)
    options: RunOptions = field(default_factory=RunOptions)
    finished: int = 0  # trials stored by this run that a resume would keep
    # Trials stored by this run with an error a resume would redo, by error kind (``JUDGE_UNANSWERED``: the
    # trial's own call worked but a judge's did not).
    unfinished_errors: Counter[str] = field(default_factory=Counter)
    answered: int = 0  # trials stored by this run that got an answer (an output to grade)
    # Errors a resume would not redo (a 400, an answer too large), by kind, with the first message of each.
    final_errors: dict[str, tuple[int, str]] = field(default_factory=dict)
    batches_pending: int = 0  # batches still running at the provider: a resume collects them

    @property
    def results_path(self) -> Path:
        return self.directory / RESULTS_FILE


def cassettes_root(suite: Suite, given: Path | None) -> Path:
    """Recordings are project data: by default they live in the suite's project, not the working directory."""
    return given if given is not None else suite.root / "cassettes"


def new_run_id() -> str:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{secrets.token_hex(2)}"


def run_suite(suite: Suite, options: RunOptions) -> RunOutcome:
    """Run (or resume) a suite and return what happened. Ctrl-C or SIGTERM keeps every finished trial."""
    if options.resume and not options.run_id:
        raise HarnessError("--resume needs the run id to continue")
    run_id = options.run_id or new_run_id()
    directory = run_dir(options.reports_root, suite.name, run_id)
    if directory.exists() and not options.resume and any(directory.iterdir()):
        raise HarnessError(f"run folder {directory} already exists; use --resume {run_id} to continue it")
    if options.resume and not directory.exists():
        raise HarnessError(f"nothing to resume: {directory} does not exist")
    directory.mkdir(parents=True, exist_ok=True)
    with RunLock(directory):
        outcome = _run_locked(suite, options, run_id, directory)
    from harness.history.index import record_run_quietly

    record_run_quietly(directory, options.reports_root)
    return outcome


def _run_locked(suite: Suite, options: RunOptions, run_id: str, directory: Path) -> RunOutcome:
    filters = _filters(options)
    modes = choose_modes(suite, options.record, ci=bool(os.environ.get("CI")))
    # Ids only (not trials), so memory stays small; a set also stops a plan that yields one id twice
    # (say, a temperature listed twice) from running and storing that trial twice.
    planned_ids = {t.id for t in iter_trials(suite, **filters)}
    done_ids: set[str] = set()
    notes: list[str] = []
    if options.resume:
        if (directory / MANIFEST_FILE).exists():
            old = Manifest.read(directory)
            check_resume(suite, old.suite_hash, old.inputs, directory, _fresh_run_command(suite, options))
        done_ids, notes = resume_done_ids(suite, directory / RESULTS_FILE, planned_ids, modes,
                                          cassettes_root(suite, options.cassettes_root))
    manifest = _new_manifest(suite, options, run_id, modes, len(planned_ids))
    manifest.write(directory)
    outcome = RunOutcome(suite, run_id, directory, manifest, ExecuteReport(), modes, len(planned_ids),
                         len(done_ids), options=options, notes=notes)
    trials = _pending(iter_trials(suite, **filters), done_ids)
    reserve = SpaceReserve(directory).__enter__()
    try:
        with sigterm_as_ctrl_c():
            outcome.execute = asyncio.run(_execute(suite, options, modes, trials, outcome, done_ids))
    except KeyboardInterrupt:
        outcome.interrupted = True
    finally:
        with sigint_deferred() as deferred:
            _finish_manifest(outcome, reserve)
    if deferred and not outcome.interrupted:
        raise KeyboardInterrupt
    return outcome


def _fresh_run_command(suite: Suite, options: RunOptions) -> str:
    words = ["harness", "run", str(suite.path)] + (["--record", options.record] if options.record else [])
    if options.reports_root != RunOptions().reports_root:
        words += ["--reports", str(options.reports_root)]
    return shlex.join(words)


def _new_manifest(suite: Suite, options: RunOptions, run_id: str, modes: dict[str, str], planned: int) -> Manifest:
    return Manifest(
        suite=suite.name, run_id=run_id, suite_file=str(suite.path), suite_hash=suite.hash,
        harness_version=__version__, record_mode=",".join(f"{m}={v}" for m, v in modes.items()),
        models=[m.id for m in suite.models if not options.models or m.id in options.models],
        prompts=[p for p in suite.prompts if not options.prompts or p in options.prompts],
        temperatures=list(suite.temperatures), repeats=suite.repeats, trials_planned=planned,
        started_at=time.time(), shard=str(options.shard) if options.shard else None, git=git_info(suite.dir),
        inputs=suite_inputs(suite),
        settings={"baseline": vars(suite.baseline), "gate": {"metrics": list(suite.gate.metrics),
                  "margin": suite.gate.margin, "tolerance": suite.gate.tolerance, "mode": suite.gate.mode}},
    )


def _filters(options: RunOptions) -> dict[str, Any]:
    return {"models": options.models, "prompts": options.prompts, "cases": options.cases, "shard": options.shard}


def _pending(trials: Iterator[Trial], done: set[str]) -> Iterator[Trial]:
    seen = set(done)
    for trial in trials:
        if trial.id not in seen:
            seen.add(trial.id)
            yield trial


def _finish_manifest(outcome: RunOutcome, reserve: SpaceReserve) -> None:
    manifest = outcome.manifest
    manifest.finished_at = time.time()
    # Counted as trials were stored (not by re-reading the file): ids are unique within the plan, and a
    # resume's kept records are exactly ``skipped_done``.
    manifest.trials_done = outcome.skipped_done + outcome.finished
    if outcome.interrupted:
        manifest.status = "interrupted"
    elif outcome.execute.down or outcome.execute.skipped_down or outcome.execute.replay_misses:
        manifest.status = "incomplete"
    else:
        manifest.status = "complete" if manifest.trials_done >= manifest.trials_planned else "incomplete"
    try:
        manifest.write(outcome.directory)
    except OSError:
        reserve.release()  # the disk is full: the space held back since the start is for this write
        try:
            manifest.write(outcome.directory)
        except OSError as exc:
            raise StorageError(f"cannot write {outcome.directory / MANIFEST_FILE}: {exc.strerror or exc}; "
                               "`harness report` reads the run's true state from its results") from None
    finally:
        reserve.release()


async def _execute(suite: Suite, options: RunOptions, modes: dict[str, str], trials: Iterator[Trial],
                   outcome: RunOutcome, done_ids: set[str]) -> ExecuteReport:
    pool = ClientPool(suite, cassettes_root(suite, options.cassettes_root), modes)
    batches = BatchRunner.open(suite, options.batch, outcome.directory, f"{suite.name}/{outcome.run_id}", pool,
                               done_ids, options.progress)
    concurrency = {m.id: options.concurrency or m.max_concurrency for m in suite.models}
    services = {"clients": pool}
    writer = ResultsWriter(outcome.results_path)
    progress = RunProgress(outcome.planned - outcome.skipped_done, enabled=options.progress)

    async def do_call(trial: Trial, request: Request) -> Completion:
        box = ToolBox.for_trial(suite, trial)
        if box is None:
            if batches is not None and batches.takes(trial, request):
                return await batches.call_or_defer(trial, request)
            direct = pool.direct(trial.model.id)
            answer = direct.answer(request) if direct is not None else None
            if answer is not None:
                return answer
        client = pool.client(trial.model.id)
        if box is None:
            return await call(client, request, trial.model.timeout, trial.model.api_key_env)
        # A tool round trip needs each answer before its next request: it runs live, never by batch.
        return await run_round_trip(lambda step: call(client, step, trial.model.timeout, trial.model.api_key_env),
                                    request, box)

    async def finish(trial: Trial, request: Request, attempted: Attempted) -> None:
        if is_deferred(attempted):
            return  # its answer comes from a batch, through this same function
        # Cancellation (Ctrl-C) can only land on an await: a trial is graded and written whole, or not at all.
        results = await grade_trial(suite, trial, request, attempted, services)
        writer.write_request(results)
        result = results[0]  # the request's outcome: its choices were called together
        if result.finished:
            outcome.finished += 1
        elif result.error is not None:
            outcome.unfinished_errors[result.error.kind] += 1
        else:  # graded, but a judge never answered: a resume grades it again
            outcome.unfinished_errors[JUDGE_UNANSWERED] += 1
        if result.error is None:
            outcome.answered += 1
        elif result.finished:
            count, first = outcome.final_errors.get(result.error.kind, (0, result.error.message))
            outcome.final_errors[result.error.kind] = (count + 1, first)
        progress.advance(result)

    scheduler = Scheduler(
        render=lambda t: render_request(suite, t.prompt, t.model, t.case, t.temperature, t.repeat),
        call=do_call, finish=finish, retry=suite.retry, concurrency=concurrency,
    )
    try:
        with progress:
            if batches is not None:
                await batches.collect(finish)  # batches that ended while no process watched
            report = await scheduler.run(batches.exclude(trials) if batches is not None else trials)
            if batches is not None:
                await batches.complete(finish)
                outcome.batches_pending = batches.pending
                outcome.notes.extend(batches.notes)
        complete = not (report.replay_misses or report.down or report.skipped_down or outcome.batches_pending)
        if complete and not options.resume and not any(_filters(options).values()):
            # Only a whole-suite run knows every recording still in use; a partial one must keep the rest.
            for cassette, count in pool.prune_unused().items():
                if count:
                    outcome.notes.append(f"dropped {count} unused recording(s) from {cassette}")
        return report
    finally:
        writer.close()
        if batches is not None:
            await batches.aclose()
        await pool.aclose()


async def grade_trial(suite: Suite, trial: Trial, request: Request, attempted: Attempted,
                      services: dict[str, object]) -> list[TrialResult]:
    """Grade a finished call and build its stored records: one per choice (``n``), choice 0 first.

    A grading step that crashes (anything but a ``HarnessError``, which stops the run) becomes that choice's
    error, kind ``grading``, so one odd output cannot end a run of thousands. The request's cost is shared
    evenly by its choices (so the run's total is the invoice's); its latency and TTFT, measured once per
    request, are on choice 0 only.
    """
    completion = attempted.completion
    outputs = _outputs(completion)
    usage = completion.usage if completion else {}
    price = trial.model.price
    if price is not None and completion is not None and completion.batch:
        price = price.for_batch()
    cost = price.usage_cost(usage) if price is not None else None
    share = None if cost is None else cost / len(outputs)
    return [await grade_choice(suite, trial, request, attempted, index, output, usage if index == 0 else {}, share,
                               services) for index, output in enumerate(outputs)]


async def grade_choice(suite: Suite, trial: Trial, request: Request, attempted: Attempted, index: int,
                       output: Output | None, usage: dict[str, int], cost: float | None,
                       services: dict[str, object]) -> TrialResult:
    """Grade one choice's output (if any) and build its record; see ``grade_trial``."""
    grades: list[Grade] = []
    passed: bool | None = None
    score: float | None = None
    error = attempted.error
    if output is not None:
        try:
            grades, passed, score = await _grade(suite, trial, request, output, attempted.completion, services)
        except HarnessError:
            raise
        except Exception as exc:  # noqa: BLE001 - recorded as the choice's error, see grade_trial
            grades, passed, score = [], None, None
            error = TrialError("grading", f"{type(exc).__name__}: {exc}")
    return _record(trial, request, attempted, index, output, grades, passed, score, error, usage, cost)


def _record(trial: Trial, request: Request, attempted: Attempted, index: int, output: Output | None,
            grades: list[Grade], passed: bool | None, score: float | None, error: TrialError | None,
            usage: dict[str, int], cost: float | None) -> TrialResult:
    judge_usage: dict[str, int] = {}
    judge_cost = None
    answer = None
    for g in grades:
        for k, v in (g.usage or {}).items():
            judge_usage[k] = judge_usage.get(k, 0) + int(v)
        if g.cost is not None:
            judge_cost = (judge_cost or 0.0) + g.cost
        if answer is None and g.details and isinstance(g.details.get("answer"), str):
            answer = g.details["answer"]
    first = index == 0
    completion = attempted.completion
    return TrialResult(
        trial_id=choice_id(trial.id, index), case_id=trial.case.id, prompt=trial.prompt.name,
        model=trial.model.id, temperature=trial.temperature, repeat=trial.repeat, request=request.body,
        output=output.text if output else None,
        tool_calls=[{"name": c.name, "arguments": c.arguments, "id": c.id} for c in output.tool_calls]
        if output else [],
        finish_reason=output.finish_reason if output else None,
        transcript=list(completion.transcript) if isinstance(completion, RoundTrip) else [],
        grades=[GradeRecord(grader=g.grader, passed=g.passed, score=g.score, reason=g.reason, error=g.error,
                            weight=g.weight, usage=dict(g.usage) if g.usage else None, cost=g.cost,
                            details=dict(g.details) if g.details else None) for g in grades],
        passed=passed, score=score, usage=dict(usage), cost=cost, judge_usage=judge_usage,
        judge_cost=judge_cost, latency_ms=attempted.latency_ms if first else None, attempts=attempted.attempts,
        error=error, label=trial.case.label, group=trial.case.group, choice=index,
        ttft_ms=completion.ttft_ms if first and completion is not None else None, answer=answer,
        batch=bool(completion and completion.batch),
    )


def _outputs(completion: Completion | None) -> tuple[Output | None, ...]:
    """What is graded: each choice, or a round trip's final answer with its steps (one choice)."""
    if completion is None:
        return (None,)
    if isinstance(completion, RoundTrip):
        return (Output(completion.text, completion.tool_calls, completion.finish_reason, completion.steps),)
    return completion.outputs()


async def _grade(suite: Suite, trial: Trial, request: Request, output: Output, completion: Completion | None,
                 services: dict[str, object]) -> tuple[list[Grade], bool | None, float | None]:
    variables = case_vars(suite, trial.case)
    sent = request.body.get("messages")
    if sent is None and isinstance(request.body.get("prompt"), str):  # the completions endpoint's one text
        sent = [{"role": "user", "content": request.body["prompt"]}]
    ctx = GradeContext(
        case_id=trial.case.id, vars=variables, messages=tuple(sent or ()),
        render=lambda text: render_text(text, variables, f"grader of case {trial.case.id!r}"),
        suite_dir=str(suite.dir), services=services, sample=request.sample,
    )
    specs = [(g.grader, g.weight) for g in (*suite.graders, *trial.case.graders)]
    grades = await grade_output(specs, output, ctx)
    stopped = loop_grade(completion)
    if stopped is not None:
        grades.append(stopped)
    passed, score = combine(grades, suite.threshold)
    return grades, passed, score
