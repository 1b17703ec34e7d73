"""How long to wait before retrying a call: one policy for trial calls and judge calls alike."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from harness.suite.model import RetrySettings

T = TypeVar("T")

def backoff_delay(attempt: int, retry_after: float | None, retry: RetrySettings, rng: random.Random) -> float:
    """Seconds to sleep after failed attempt number ``attempt`` (1-based).

    A server-given Retry-After wins over ``max_delay`` (retrying sooner only earns another 429), but only up to
    ``retry.max_retry_after``: a server asking for ten minutes must not stall a run for ten minutes per
    attempt. A little jitter keeps many workers from returning in lockstep. Otherwise exponential backoff with
    full jitter.
    """
    if retry_after is not None:
        return min(retry.max_retry_after, retry_after) + rng.uniform(0, 0.1)
    return rng.uniform(0, min(retry.max_delay, retry.base_delay * 2 ** (attempt - 1)))


async def with_retries(op: Callable[[], Awaitable[T]], retry: RetrySettings, rng: random.Random,
                       sleep: Callable[[float], Awaitable[None]]) -> T:
    """``op()`` retried on retryable ``CallFailed`` up to ``retry.max_attempts`` times: for calls graders make
    themselves (judges, moderation), which the scheduler's retries of the graded call do not cover."""
    from harness.execute.provider import CallFailed  # graders import this module; validate need not load openai

    for attempt in range(1, retry.max_attempts + 1):
        try:
            return await op()
        except CallFailed as failure:
            if not failure.retryable or attempt == retry.max_attempts:
                raise
            await sleep(backoff_delay(attempt, failure.retry_after, retry, rng))
    raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover
