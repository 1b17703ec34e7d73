"""Wires the stages for one run: suite → plan → render → execute → grade → store.

The CLI and the pytest plugin both call :func:`run_suite`; neither knows how the stages fit together.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness import __version__
from harness.errors import HarnessError
from harness.execute.clients import ClientPool, choose_modes
from harness.execute.progress import RunProgress
from harness.execute.provider import Completion, call
from harness.execute.scheduler import Attempted, ExecuteReport, Scheduler
from harness.grade.base import GradeContext, Output
from harness.grade.runner import combine, grade_output
from harness.plan import Shard, Trial, count_trials, iter_trials
from harness.render import Request, case_vars, render_request
from harness.store import (
    RESULTS_FILE,
    GradeRecord,
    Manifest,
    ResultsWriter,
    TrialResult,
    finished_ids,
    run_dir,
)
from harness.suite.model import Suite
from harness.templating import render_text


@dataclass
class RunOptions:
    """How to run a suite.

    Args:
        reports_root: where run folders go (``<root>/<suite>/<run-id>``).
        cassettes_root: where recordings go (``<root>/<suite>/<model>.json``).
        run_id: name of the run folder; a new timestamped id when ``None``.
        resume: continue ``run_id``, skipping trials already recorded in it.
        record: ``replay``, ``record-missing``, ``record`` or ``live``; chosen per model when ``None``.
        models, prompts, cases: run only these ids (all when ``None``).
        shard: run only this deterministic slice of the trials.
        concurrency: override every model's ``max_concurrency``.
        progress: show a progress bar / progress lines.
    """

    reports_root: Path = Path("reports")
    cassettes_root: Path = Path("cassettes")
    run_id: str | None = None
    resume: bool = False
    record: str | None = None
    models: list[str] | None = None
    prompts: list[str] | None = None
    cases: list[str] | None = None
    shard: Shard | None = None
    concurrency: int | None = None
    progress: bool = True


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

    @property
    def results_path(self) -> Path:
        return self.directory / RESULTS_FILE


def new_run_id() -> str:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{secrets.token_hex(2)}"


def run_suite(suite: Suite, options: RunOptions) -> RunOutcome:
    """Run (or resume) a suite and return what happened. Ctrl-C keeps every finished trial."""
    if options.resume and not options.run_id:
        raise HarnessError("--resume needs the run id to continue")
    run_id = options.run_id or new_run_id()
    directory = run_dir(options.reports_root, suite.name, run_id)
    if directory.exists() and not options.resume and any(directory.iterdir()):
        raise HarnessError(f"run folder {directory} already exists; use --resume {run_id} to continue it")
    if options.resume and not directory.exists():
        raise HarnessError(f"nothing to resume: {directory} does not exist")
    filters = {"models": options.models, "prompts": options.prompts, "cases": options.cases,
               "shard": options.shard}
    modes = choose_modes(suite, options.record, ci=bool(os.environ.get("CI")))
    planned = count_trials(suite, **filters)
    done_ids = finished_ids(directory / RESULTS_FILE) if options.resume else set()
    manifest = Manifest(
        suite=suite.name, run_id=run_id, suite_file=str(suite.path), suite_hash=suite.hash,
        harness_version=__version__, record_mode=",".join(f"{m}={v}" for m, v in modes.items()),
        models=[m.id for m in suite.models if not options.models or m.id in options.models],
        prompts=[p for p in suite.prompts if not options.prompts or p in options.prompts],
        temperatures=list(suite.temperatures), repeats=suite.repeats, trials_planned=planned,
        started_at=time.time(), shard=str(options.shard) if options.shard else None,
        settings={"baseline": vars(suite.baseline), "gate": {"metrics": list(suite.gate.metrics),
                  "margin": suite.gate.margin, "tolerance": suite.gate.tolerance, "mode": suite.gate.mode}},
    )
    directory.mkdir(parents=True, exist_ok=True)
    manifest.write(directory)
    outcome = RunOutcome(suite, run_id, directory, manifest, ExecuteReport(), modes, planned, len(done_ids))
    trials = (t for t in iter_trials(suite, **filters) if t.id not in done_ids)  # type: ignore[arg-type]
    try:
        outcome.execute = asyncio.run(_execute(suite, options, modes, trials, directory,
                                               planned - len(done_ids)))
    except KeyboardInterrupt:
        outcome.interrupted = True
    finally:
        _finish_manifest(outcome)
    return outcome


def _finish_manifest(outcome: RunOutcome) -> None:
    manifest = outcome.manifest
    manifest.finished_at = time.time()
    manifest.trials_done = sum(1 for _ in finished_ids(outcome.results_path))
    if outcome.interrupted:
        manifest.status = "interrupted"
    elif outcome.execute.down or outcome.execute.skipped_down or outcome.execute.replay_misses:
        manifest.status = "incomplete"
    else:
        manifest.status = "complete" if manifest.trials_done >= manifest.trials_planned else "incomplete"
    manifest.write(outcome.directory)


async def _execute(suite: Suite, options: RunOptions, modes: dict[str, str], trials: Iterator[Trial],
                   directory: Path, remaining: int) -> ExecuteReport:
    pool = ClientPool(suite, options.cassettes_root, modes)
    concurrency = {m.id: options.concurrency or m.max_concurrency for m in suite.models}
    services = {"clients": pool}
    writer = ResultsWriter(directory / RESULTS_FILE)
    progress = RunProgress(remaining, enabled=options.progress)

    async def do_call(trial: Trial, request: Request) -> Completion:
        return await call(pool.client(trial.model.id), request, trial.model.timeout)

    async def finish(trial: Trial, request: Request, attempted: Attempted) -> None:
        result = await grade_trial(suite, trial, request, attempted, services)
        writer.write(result)
        progress.advance(result)
        pool.maybe_save()

    scheduler = Scheduler(
        render=lambda t: render_request(suite, t.prompt, t.model, t.case, t.temperature, t.repeat),
        call=do_call, finish=finish, retry=suite.retry, concurrency=concurrency,
    )
    try:
        with progress:
            return await scheduler.run(trials)
    finally:
        writer.close()
        await pool.aclose()


async def grade_trial(suite: Suite, trial: Trial, request: Request, attempted: Attempted,
                      services: dict[str, object]) -> TrialResult:
    """Grade a finished call and build its stored record."""
    completion = attempted.completion
    grades = []
    passed: bool | None = None
    score: float | None = None
    if completion is not None:
        variables = case_vars(suite, trial.case)
        ctx = GradeContext(
            case_id=trial.case.id, vars=variables, messages=tuple(request.body.get("messages", ())),
            render=lambda text: render_text(text, variables, f"grader of case {trial.case.id!r}"),
            suite_dir=str(suite.dir), services=services, sample=request.sample,
        )
        output = Output(completion.text, completion.tool_calls, completion.finish_reason)
        specs = [(g.grader, g.weight) for g in (*suite.graders, *trial.case.graders)]
        grades = await grade_output(specs, output, ctx)
        passed, score = combine(grades, suite.threshold)
    price = trial.model.price
    usage = completion.usage if completion else {}
    cost = price.cost(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)) \
        if price is not None and usage else None
    judge_usage: dict[str, int] = {}
    judge_cost = None
    for g in grades:
        for k, v in (g.usage or {}).items():
            judge_usage[k] = judge_usage.get(k, 0) + int(v)
        if g.cost is not None:
            judge_cost = (judge_cost or 0.0) + g.cost
    return TrialResult(
        trial_id=trial.id, case_id=trial.case.id, prompt=trial.prompt.name, model=trial.model.id,
        temperature=trial.temperature, repeat=trial.repeat, request=request.body,
        output=completion.text if completion else None,
        tool_calls=[{"name": c.name, "arguments": c.arguments, "id": c.id} for c in completion.tool_calls]
        if completion else [],
        finish_reason=completion.finish_reason if completion else None,
        grades=[GradeRecord(grader=g.grader, passed=g.passed, score=g.score, reason=g.reason, error=g.error,
                            weight=g.weight, usage=dict(g.usage) if g.usage else None, cost=g.cost,
                            details=dict(g.details) if g.details else None) for g in grades],
        passed=passed, score=score, usage=dict(usage), cost=cost, judge_usage=judge_usage,
        judge_cost=judge_cost, latency_ms=attempted.latency_ms, attempts=attempted.attempts,
        error=attempted.error, label=trial.case.label, group=trial.case.group,
    )
