"""The execute stage: run trials concurrently, bounded per endpoint, retrying what is worth retrying.

Each model gets ``max_concurrency`` workers fed through a small bounded queue, so the plan is streamed and
memory stays flat however many trials there are. Retries use exponential backoff with full jitter and
honour ``Retry-After``; 400/401/404 are never retried. An endpoint that refuses every connection
``outage_after`` times in a row is given up on, so an outage ends the run in seconds, not minutes. Each
finished trial is graded and handed to the store at once.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace

from harness.execute.backoff import backoff_delay
from harness.execute.provider import CallFailed, Completion
from harness.plan import Trial
from harness.render import Request
from harness.store import TrialError
from harness.suite.model import RetrySettings

CallFn = Callable[[Trial, Request], Awaitable[Completion]]
FinishFn = Callable[[Trial, Request, "Attempted"], Awaitable[None]]
RenderFn = Callable[[Trial], Request]


@dataclass
class Attempted:
    """The outcome of calling the model for one trial, before grading."""

    completion: Completion | None
    error: TrialError | None
    attempts: int
    latency_ms: float | None


@dataclass
class ModelState:
    consecutive_connection_failures: int = 0
    successes: int = 0
    down: str | None = None  # why the endpoint was given up on


@dataclass
class ExecuteReport:
    done: int = 0
    skipped_down: int = 0
    replay_misses: list[tuple[Trial, str]] = field(default_factory=list)
    down: dict[str, str] = field(default_factory=dict)
    down_kinds: dict[str, str] = field(default_factory=dict)  # the error kind that made each model give up


class Scheduler:
    """Runs trials through ``call`` and hands each outcome to ``finish``.

    Args:
        render: turns a trial into its request (may raise ``TemplateError``).
        call: performs one HTTP call for a trial (raises ``CallFailed``).
        finish: grades and stores a finished trial.
        retry: backoff and outage settings.
        concurrency: workers per model id.
        sleep: injectable for tests of the backoff schedule.
    """

    def __init__(self, render: RenderFn, call: CallFn, finish: FinishFn, retry: RetrySettings,
                 concurrency: dict[str, int], rng: random.Random | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.render = render
        self.call = call
        self.finish = finish
        self.retry = retry
        self.concurrency = concurrency
        self.rng = rng or random.Random()
        self.sleep = sleep
        self.states = {model: ModelState() for model in concurrency}
        self.report = ExecuteReport()
        self.waited = 0.0  # seconds all trials together have slept between attempts (the run's budget)

    async def run(self, trials: Iterator[Trial]) -> ExecuteReport:
        queues: dict[str, asyncio.Queue[Trial | None]] = {
            model: asyncio.Queue(maxsize=2 * n) for model, n in self.concurrency.items()
        }
        workers = [
            asyncio.create_task(self._worker(model, queues[model]), name=f"worker-{model}-{i}")
            for model, n in self.concurrency.items() for i in range(n)
        ]
        producer = asyncio.create_task(self._produce(trials, queues), name="producer")
        try:
            # A worker that dies (a bug, or a HarnessError such as a missing key) must stop the run, not
            # leave the producer blocked on a full queue.
            done, _ = await asyncio.wait([producer, *workers], return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            await asyncio.gather(producer, *workers)
        finally:
            producer.cancel()
            for task in workers:
                task.cancel()
            await asyncio.gather(producer, *workers, return_exceptions=True)
        return self.report

    async def _produce(self, trials: Iterator[Trial], queues: dict[str, asyncio.Queue[Trial | None]]) -> None:
        for trial in trials:
            await queues[trial.model.id].put(trial)
        for model, n in self.concurrency.items():
            for _ in range(n):
                await queues[model].put(None)

    async def _worker(self, model: str, queue: asyncio.Queue[Trial | None]) -> None:
        state = self.states[model]
        while True:
            trial = await queue.get()
            if trial is None:
                return
            if state.down is not None:
                self.report.skipped_down += 1
                continue
            await self._run_one(trial, state)

    async def _run_one(self, trial: Trial, state: ModelState) -> None:
        try:
            request = self.render(trial)
        except Exception as exc:  # noqa: BLE001 - a template failure is that trial's error, not a crash
            await self.finish(trial, _empty_request(trial), Attempted(None, TrialError("template", str(exc)), 0, None))
            self.report.done += 1
            return
        outcome = await self._call_with_retries(trial, request, state)
        if outcome is None:  # the endpoint went down meanwhile: leave the trial for a resume
            self.report.skipped_down += 1
            return
        if outcome.error is not None and outcome.error.kind in ("replay_miss", "bad_recording"):
            self.report.replay_misses.append((trial, outcome.error.message))
            return
        await self.finish(trial, request, outcome)
        self.report.done += 1

    async def _call_with_retries(self, trial: Trial, request: Request, state: ModelState) -> Attempted | None:
        attempt = 0
        waited = 0.0  # seconds this trial has slept between attempts
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                completion = await self.call(trial, request)
            except CallFailed as failure:
                if failure.stop_model and state.down is None:
                    state.down = failure.error.message
                    self.report.down[trial.model.id] = state.down
                    self.report.down_kinds[trial.model.id] = failure.error.kind
                exhausted = not failure.retryable or attempt >= self.retry.max_attempts
                self._count_unreachable(trial, state, failure, exhausted)
                if state.down is not None:
                    return None
                if exhausted:
                    return Attempted(None, failure.error, attempt, None)
                delay = self._delay(attempt, failure.retry_after)
                budget = self._over_budget(waited + delay, delay)
                if budget is not None:
                    error = replace(failure.error, message=f"{failure.error.message} ({budget})")
                    return Attempted(None, error, attempt, None)
                waited += delay
                self.waited += delay
                await self.sleep(delay)
                continue
            state.consecutive_connection_failures = 0
            state.successes += 1
            latency = completion.recorded_latency_ms
            if latency is None and not completion.batch:  # a batch answer has no response time of its own
                latency = (time.perf_counter() - started) * 1000
            return Attempted(completion, None, attempt, latency)

    def _count_unreachable(self, trial: Trial, state: ModelState, failure: CallFailed, exhausted: bool) -> None:
        """Track refused connections (and rejected keys) in a row; give the endpoint up when it is down.

        Before any call has succeeded, ``outage_after`` in a row is enough: the endpoint is not there, and
        the run ends in seconds. After a success, a trial must also have used up its retries during the
        streak, so a server restarting for a moment is waited for, but an endpoint that died mid-run still
        ends the run after one retry cycle instead of one per remaining trial.
        """
        if not (failure.connection or failure.error.kind == "auth"):
            state.consecutive_connection_failures = 0  # the server answered: reachable
            return
        state.consecutive_connection_failures += 1
        streak = state.consecutive_connection_failures
        if state.down is None and streak >= self.retry.outage_after and (state.successes == 0 or exhausted):
            history = "none succeeded" if state.successes == 0 else f"after {state.successes} that succeeded"
            state.down = f"{failure.error.message} ({streak} failed calls in a row, {history})"
            self.report.down[trial.model.id] = state.down
            self.report.down_kinds[trial.model.id] = failure.error.kind

    def _over_budget(self, trial_total: float, delay: float) -> str | None:
        """Why one more wait of ``delay`` s is not allowed (the trial's or the run's retry budget), or None."""
        if trial_total > self.retry.trial_budget:
            return f"gave up: retrying would wait more than retry.trial_budget = {self.retry.trial_budget:g} s"
        if self.waited + delay > self.retry.run_budget:
            return f"gave up: the run has waited retry.run_budget = {self.retry.run_budget:g} s for retries"
        return None

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        return backoff_delay(attempt, retry_after, self.retry, self.rng)


def _empty_request(trial: Trial) -> Request:
    return Request(api=trial.model.api, body={}, sample=f"r{trial.repeat}")
