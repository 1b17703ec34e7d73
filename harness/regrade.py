"""``harness regrade``: the stored outputs of a run graded again with the suite's current graders.

The explicit way forward when graders (or their files) changed after a run: a resume refuses to mix two
versions of a suite (see ``harness.resume_rule``). Nothing is sent to the graded models: each stored output is
graded again as it is; judges replay from their cassettes (a judge call not recorded is that grade's error,
as in any replay). The result is a **new** run folder; the old run is never touched. Only trials the current
suite still plans, with the same id (an edited case or prompt has a new id), are carried over; trials the
current suite plans that the old run never ran are left out and reported, for ``--resume`` of the new run.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import __version__
from harness.errors import HarnessError
from harness.execute.clients import ClientPool
from harness.execute.provider import Completion
from harness.execute.scheduler import Attempted
from harness.grade.base import Output, ToolCall
from harness.pipeline import cassettes_root, grade_choice, new_run_id
from harness.plan import Shard, Trial, iter_trials
from harness.render import render_request
from harness.resume_rule import suite_inputs
from harness.store import RESULTS_FILE, Manifest, ResultsWriter, RunLock, TrialResult, read_results, run_dir
from harness.store.records import request_id
from harness.suite.model import Suite


@dataclass
class RegradeOutcome:
    directory: Path
    regraded: int = 0
    carried: int = 0  # records without an output (a final error) copied as they were
    dropped: list[str] = field(default_factory=list)  # old trial ids the current suite no longer plans
    missing: int = 0  # trials the current suite plans that the old run has no record of


def regrade(suite: Suite, old_dir: Path, *, reports_root: Path | None = None, run_id: str | None = None,
            cassettes: Path | None = None) -> RegradeOutcome:
    """Grade ``old_dir``'s stored outputs with ``suite``'s graders into a new run folder; return what happened."""
    old = Manifest.read(old_dir)
    if old.suite != suite.name:
        raise HarnessError(f"{old_dir} is a run of suite {old.suite!r}, not {suite.name!r}")
    new_id = run_id or new_run_id()
    directory = run_dir(reports_root or old_dir.parent.parent, suite.name, new_id)
    if directory.exists() and any(directory.iterdir()):
        raise HarnessError(f"run folder {directory} already exists; choose another --run-id")
    directory.mkdir(parents=True, exist_ok=True)
    shard = Shard.parse(old.shard) if old.shard else None
    trials = {t.id: t for t in iter_trials(suite, models=old.models, prompts=old.prompts, shard=shard)}
    outcome = RegradeOutcome(directory)
    started = time.time()
    with RunLock(directory):
        done = asyncio.run(_regrade_all(suite, old_dir, trials, outcome, cassettes))
        outcome.missing = len(set(trials) - done)
        manifest = Manifest(
            suite=suite.name, run_id=new_id, suite_file=str(suite.path), suite_hash=suite.hash,
            harness_version=__version__, record_mode="regrade", models=list(old.models), prompts=list(old.prompts),
            temperatures=list(suite.temperatures), repeats=suite.repeats, trials_planned=len(trials),
            started_at=started, finished_at=time.time(), trials_done=len(done), shard=old.shard,
            status="complete" if not outcome.missing else "incomplete",
            settings={**old.settings, "regraded_from": str(old_dir)}, inputs=suite_inputs(suite),
        )
        manifest.write(directory)
    return outcome


async def _regrade_all(suite: Suite, old_dir: Path, trials: dict[str, Trial], outcome: RegradeOutcome,
                       cassettes: Path | None) -> set[str]:
    # Every model (and judge) replays: a regrade never calls an API.
    pool = ClientPool(suite, cassettes_root(suite, cassettes), {m: "replay" for m in _model_ids(suite)})
    services: dict[str, object] = {"clients": pool}
    done: set[str] = set()
    writer = ResultsWriter(outcome.directory / RESULTS_FILE)
    try:
        for record in read_results(old_dir / RESULTS_FILE):
            trial = trials.get(request_id(record.trial_id))
            if trial is None:
                outcome.dropped.append(record.trial_id)
                continue
            if record.output is None:
                if record.finished:  # a final error (a 400): its outcome does not depend on the graders
                    writer.write(record)
                    outcome.carried += 1
                    done.add(trial.id)
                continue
            writer.write(await _regraded(suite, trial, record, services))
            outcome.regraded += 1
            done.add(trial.id)
    finally:
        writer.close()
        await pool.aclose()
    return done


async def _regraded(suite: Suite, trial: Trial, record: TrialResult, services: dict[str, object]) -> TrialResult:
    calls = tuple(ToolCall(name=c.get("name", ""), arguments=c.get("arguments", ""), id=c.get("id", ""))
                  for c in record.tool_calls)
    output = Output(record.output or "", calls, record.finish_reason)
    completion = Completion(text=output.text, tool_calls=calls, finish_reason=record.finish_reason,
                            usage=dict(record.usage), recorded_latency_ms=record.latency_ms, batch=record.batch,
                            ttft_ms=record.ttft_ms)
    request = render_request(suite, trial.prompt, trial.model, trial.case, trial.temperature, trial.repeat)
    attempted = Attempted(completion, None, record.attempts, record.latency_ms)
    return await grade_choice(suite, trial, request, attempted, record.choice, output, dict(record.usage),
                              record.cost, services)


def _model_ids(suite: Suite) -> list[str]:
    return [m.id for m in (*suite.models, *suite.judges.values())]
