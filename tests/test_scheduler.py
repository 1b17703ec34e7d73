"""The scheduler alone: retries, backoff, Retry-After, the outage breaker, exactly-once finishing.

The model call is a scripted fake and ``sleep`` is injected, so every requested delay is captured and no
test waits on a clock.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.execute.provider import CallFailed, Completion
from harness.execute.scheduler import Attempted, Scheduler
from harness.plan import Trial, iter_trials
from harness.render import Request
from harness.store import TrialError
from harness.suite import load_suite
from harness.suite.model import RetrySettings

Script = Callable[[Trial, int], Completion | CallFailed]


def make_trials(tmp_path: Path, n_cases: int, concurrency: int = 1) -> list[Trial]:
    rows = "\n".join(f'{{"id": "c{i:03d}", "text": "t{i}"}}' for i in range(n_cases))
    (tmp_path / "cases.jsonl").write_text(rows + "\n", encoding="utf-8")
    (tmp_path / "suite.yaml").write_text(
        "suite: sched\n"
        "models:\n"
        "  - name: m\n"
        "    base_url: http://127.0.0.1:9/v1\n"
        "    api_key_env: null\n"
        f"    max_concurrency: {concurrency}\n"
        "prompts:\n  v1:\n    - {role: user, content: '{{ text }}'}\n"
        "cases:\n  - file: cases.jsonl\n"
        "graders:\n  - {type: contains, value: t}\n",
        encoding="utf-8",
    )
    return list(iter_trials(load_suite(tmp_path / "suite.yaml")))


def rate_limited(retry_after: float | None) -> CallFailed:
    return CallFailed(TrialError("rate_limit", "HTTP 429: slow down", 429), True, retry_after)


def server_error() -> CallFailed:
    return CallFailed(TrialError("server", "HTTP 500: oops", 500), True)


def refused() -> CallFailed:
    return CallFailed(TrialError("connection", "ConnectionRefusedError: refused"), True, connection=True)


def client_error(status: int, kind: str) -> CallFailed:
    return CallFailed(TrialError(kind, f"HTTP {status}: provider says no", status), False)


OK = Completion(text="fine")


class Harness:
    """A scheduler wired to a scripted call, recording calls, sleeps and finished trials."""

    def __init__(self, script: Script, retry: RetrySettings, concurrency: int = 1, model: str = "m") -> None:
        self.script = script
        self.calls: Counter[str] = Counter()
        self.sleeps: list[float] = []
        self.finished: list[tuple[Trial, Attempted]] = []
        self.scheduler = Scheduler(
            render=lambda t: Request(api="chat", body={"case": t.case.id}, sample=f"r{t.repeat}"),
            call=self._call, finish=self._finish, retry=retry, concurrency={model: concurrency},
            rng=random.Random(7), sleep=self._sleep,
        )

    async def _call(self, trial: Trial, request: Request) -> Completion:
        self.calls[trial.id] += 1
        await asyncio.sleep(0)  # let other workers interleave, as real network calls do
        outcome = self.script(trial, self.calls[trial.id])
        if isinstance(outcome, CallFailed):
            raise outcome
        return outcome

    async def _finish(self, trial: Trial, request: Request, attempted: Attempted) -> None:
        self.finished.append((trial, attempted))

    async def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def run(self, trials: list[Trial]) -> None:
        self.report = asyncio.run(self.scheduler.run(iter(trials)))


def test_429_honours_retry_after_plus_small_jitter(tmp_path: Path) -> None:
    trials = make_trials(tmp_path, 1)
    h = Harness(lambda t, n: rate_limited(2.5) if n <= 3 else OK, RetrySettings(max_attempts=5, max_delay=30))
    h.run(trials)
    assert len(h.sleeps) == 3
    assert all(2.5 <= s <= 2.6 for s in h.sleeps), h.sleeps
    [(_, attempted)] = h.finished
    assert attempted.error is None and attempted.attempts == 4


def test_retry_after_is_honoured_beyond_max_delay_up_to_a_ceiling(tmp_path: Path) -> None:
    trials = make_trials(tmp_path, 1)
    # Retrying before the server's Retry-After only earns another 429, so it wins over max_delay ...
    h = Harness(lambda t, n: rate_limited(7.0) if n == 1 else OK, RetrySettings(max_attempts=3, max_delay=4.0))
    h.run(trials)
    assert len(h.sleeps) == 1 and 7.0 <= h.sleeps[0] <= 7.1
    # ... but a wild value is cut to the suite's max_retry_after.
    h = Harness(lambda t, n: rate_limited(600.0) if n == 1 else OK,
                RetrySettings(max_attempts=3, max_delay=4.0, max_retry_after=12.0))
    h.run(trials)
    assert len(h.sleeps) == 1 and 12.0 <= h.sleeps[0] <= 12.1


def test_retry_waits_stop_at_the_trial_budget_and_the_run_budget(tmp_path: Path) -> None:
    # A server asking for ten minutes every time: each wait is cut to 5 s, and a trial waits at most 12 s in all.
    retry = RetrySettings(max_attempts=6, max_retry_after=5.0, trial_budget=12.0, run_budget=1000.0)
    h = Harness(lambda t, n: rate_limited(600.0), retry)
    h.run(make_trials(tmp_path, 1))
    assert len(h.sleeps) == 2 and sum(h.sleeps) <= 12.0
    [(_, attempted)] = h.finished
    assert attempted.attempts == 3 and "retry.trial_budget = 12 s" in attempted.error.message  # type: ignore[union-attr]
    # The run's budget is shared: three trials (one at a time) may wait 11 s together, then nobody waits.
    retry = RetrySettings(max_attempts=6, max_retry_after=5.0, trial_budget=100.0, run_budget=11.0)
    h = Harness(lambda t, n: rate_limited(600.0), retry)
    h.run(make_trials(tmp_path, 3))
    assert sum(h.sleeps) <= 11.0 and len(h.finished) == 3
    assert all("retry.run_budget" in a.error.message for _, a in h.finished)  # type: ignore[union-attr]


def test_an_exhausted_quota_stops_the_model_at_once(tmp_path: Path) -> None:
    quota = CallFailed(TrialError("quota", "quota exhausted for the key in K", 429), retryable=False, stop_model=True)
    h = Harness(lambda t, n: quota, RetrySettings(max_attempts=6, outage_after=50))
    h.run(make_trials(tmp_path, 5))
    assert sum(h.calls.values()) == 1 and not h.sleeps and not h.finished  # no retries, and nobody else tries
    assert "quota exhausted for the key in K" in h.report.down["m"]


def test_backoff_is_exponential_with_full_jitter_and_capped(tmp_path: Path) -> None:
    trials = make_trials(tmp_path, 40)
    retry = RetrySettings(max_attempts=6, base_delay=0.5, max_delay=3.0)
    h = Harness(lambda t, n: server_error(), retry)
    h.run(trials)
    # 5 sleeps per trial, after attempts 1..5: ceilings 0.5, 1, 2, 3 (capped), 3.
    per_trial = [h.sleeps[i:i + 5] for i in range(0, len(h.sleeps), 5)]
    assert len(per_trial) == 40
    ceilings = [0.5, 1.0, 2.0, 3.0, 3.0]
    for delays in per_trial:
        assert all(0 <= d <= c for d, c in zip(delays, ceilings, strict=True)), delays
    # Jitter is real: the delays after the 4th attempt spread over most of [0, 3].
    fourth = [d[3] for d in per_trial]
    assert min(fourth) < 1.0 < 2.0 < max(fourth)
    for _, attempted in h.finished:
        assert attempted.completion is None and attempted.attempts == 6
        assert attempted.error is not None and attempted.error.kind == "server"


@pytest.mark.parametrize(("status", "kind"), [(400, "client"), (401, "auth"), (404, "not_found")])
def test_client_errors_are_not_retried(tmp_path: Path, status: int, kind: str) -> None:
    trials = make_trials(tmp_path, 3)
    h = Harness(lambda t, n: client_error(status, kind), RetrySettings(max_attempts=6, outage_after=50))
    h.run(trials)
    assert h.sleeps == []
    assert sorted(h.calls.values()) == [1, 1, 1]
    for _, attempted in h.finished:
        assert attempted.attempts == 1
        assert attempted.error == TrialError(kind, f"HTTP {status}: provider says no", status)


def test_every_trial_finishes_exactly_once_under_random_faults(tmp_path: Path) -> None:
    trials = make_trials(tmp_path, 300)
    rng = random.Random(11)
    faults = [rate_limited(0.01), server_error(), client_error(400, "client")]

    def script(trial: Trial, n: int) -> Completion | CallFailed:
        return rng.choice(faults) if rng.random() < 0.5 else OK

    h = Harness(script, RetrySettings(max_attempts=4, outage_after=5), concurrency=8)
    h.run(trials)
    finished_ids = [t.id for t, _ in h.finished]
    assert sorted(finished_ids) == sorted(t.id for t in trials)
    assert h.report.done == 300 and h.report.skipped_down == 0
    for trial, attempted in h.finished:
        assert attempted.attempts == h.calls[trial.id]  # the recorded count is what was really sent
        assert (attempted.completion is None) == (attempted.error is not None)
    assert {a.error.kind for _, a in h.finished if a.error} <= {"rate_limit", "server", "client"}


def test_outage_from_the_start_gives_up_after_outage_after_calls(tmp_path: Path) -> None:
    trials = make_trials(tmp_path, 200)
    retry = RetrySettings(max_attempts=6, base_delay=0.5, max_delay=30, outage_after=8)
    h = Harness(lambda t, n: refused(), retry, concurrency=1)
    h.run(trials)
    # One worker: trial 1 uses its 6 attempts (recorded as an error), trial 2 reaches 8 in a row.
    assert sum(h.calls.values()) == 8
    assert len(h.sleeps) == 6  # a bounded budget: no trial after the breaker waits at all
    assert [a.error.kind for _, a in h.finished] == ["connection"]  # type: ignore[union-attr]
    assert h.report.skipped_down == 199
    assert "8 failed calls in a row, none succeeded" in h.report.down["m"]


def test_outage_mid_run_ends_after_one_retry_cycle(tmp_path: Path) -> None:
    trials = make_trials(tmp_path, 100)
    ok_first = {t.id for t in trials[:10]}
    retry = RetrySettings(max_attempts=4, outage_after=3)
    h = Harness(lambda t, n: OK if t.id in ok_first else refused(), retry, concurrency=1)
    h.run(trials)
    # The 11th trial exhausts its 4 attempts with a streak of 4 >= 3: given up, left for a resume.
    assert [a.error for _, a in h.finished] == [None] * 10
    assert sum(h.calls.values()) == 10 + 4
    assert h.report.skipped_down == 90
    assert "after 10 that succeeded" in h.report.down["m"]


def test_a_short_blip_after_successes_is_waited_out(tmp_path: Path) -> None:
    trials = make_trials(tmp_path, 30)
    retry = RetrySettings(max_attempts=5, outage_after=2)
    # Every call of trial 5 is refused for its first 3 attempts: a server restarting.
    h = Harness(lambda t, n: refused() if t.id == trials[5].id and n <= 3 else OK, retry, concurrency=1)
    h.run(trials)
    assert h.report.down == {} and h.report.skipped_down == 0
    assert len(h.finished) == 30 and all(a.error is None for _, a in h.finished)


def test_an_answer_from_the_server_breaks_the_refusal_streak(tmp_path: Path) -> None:
    trials = make_trials(tmp_path, 20)

    def script(trial: Trial, n: int) -> Completion | CallFailed:
        return refused() if n % 2 else server_error()  # refused, 500, refused, 500, ...

    h = Harness(script, RetrySettings(max_attempts=4, outage_after=2), concurrency=1)
    h.run(trials)
    assert h.report.down == {}
    assert len(h.finished) == 20


def test_a_harness_error_in_finish_stops_the_run_without_hanging(tmp_path: Path) -> None:
    trials = make_trials(tmp_path, 50)

    async def finish(trial: Trial, request: Request, attempted: Attempted) -> None:
        raise HarnessError("judge key missing")

    h = Harness(lambda t, n: OK, RetrySettings(), concurrency=4)
    h.scheduler.finish = finish
    with pytest.raises(HarnessError, match="judge key missing"):
        asyncio.run(asyncio.wait_for(h.scheduler.run(iter(trials)), timeout=10))
