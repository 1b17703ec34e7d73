"""Upload a chunk's request file and submit it as a batch, at most once per chunk, even across kills.

The order of durable steps is the whole point (see ``state``): the intent (``submitting``, with the input file
id) is saved before ``batches.create`` is called, and a chunk found in that phase is first looked for among
the provider's batches by the run and chunk ids its metadata carries. A submission that failed ambiguously (a
timeout, a 5xx: the batch may exist) is looked for the same way before it is retried.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError
from harness.execute.backoff import backoff_delay
from harness.execute.batch.state import BatchState, Chunk
from harness.execute.provider import CallFailed, classify
from harness.suite.model import RetrySettings

if TYPE_CHECKING:  # the SDK is imported where a call is made: a replay answered from cassettes never needs it
    import openai

RUN_KEY = "harness_run"
CHUNK_KEY = "harness_chunk"
UPLOAD_TIMEOUT = 600.0  # seconds: a 200 MB upload takes a while
# A batch created for an intent cannot be older than the intent; allow for clocks that disagree.
CLOCK_SLACK = 3600


class SubmitError(HarnessError):
    """A batch could not be submitted (after retries); the run keeps its state and can be resumed."""

    exit_code = 4


def metadata(run_key: str, chunk: Chunk) -> dict[str, str]:
    return {RUN_KEY: run_key[-512:], CHUNK_KEY: chunk.chunk_id}


async def find_submitted(client: openai.AsyncOpenAI, run_key: str, chunk: Chunk) -> Any | None:
    """The provider's batch made for this chunk of this run, if one exists (newest first, bounded by time)."""
    wanted = metadata(run_key, chunk)
    oldest = (chunk.submit_intent_at or 0) - CLOCK_SLACK
    async for batch in client.batches.list(limit=100):
        if batch.created_at < oldest:
            return None
        meta = batch.metadata or {}
        if all(meta.get(k) == v for k, v in wanted.items()) and batch.input_file_id == chunk.input_file_id:
            return batch
    return None


async def submit_chunk(client: openai.AsyncOpenAI, state: BatchState, chunk: Chunk, run_key: str,
                       retry: RetrySettings, rng: random.Random | None = None) -> None:
    """Take ``chunk`` from ``spooled`` or ``submitting`` to ``submitted`` (saving each step)."""
    rng = rng or random.Random()
    reconcile = chunk.phase == "submitting"  # a previous process may have created the batch already
    if chunk.phase == "spooled":
        path = chunk.file(state.directory, "requests")
        file = await _retrying(lambda: _upload(client, path), retry, rng, f"upload of {path.name}")
        state.advance(chunk, "submitting", input_file_id=file.id, submit_intent_at=time.time())
    attempt = 0
    while True:
        attempt += 1
        if reconcile:
            found = await _retrying(lambda: find_submitted(client, run_key, chunk), retry, rng,
                                    "listing batches")
            if found is not None:
                state.advance(chunk, "submitted", batch_id=found.id, status=found.status, submitted_at=time.time(),
                              note="found after an interrupted submission")
                return
        try:
            batch = await client.batches.create(
                input_file_id=chunk.input_file_id or "", endpoint=chunk.endpoint,  # type: ignore[arg-type]
                completion_window=chunk.window,  # type: ignore[arg-type]
                metadata=metadata(run_key, chunk),
            )
        except Exception as exc:  # noqa: BLE001 - classified: retried, or a SubmitError naming the cause
            failure = classify(exc)
            if not failure.retryable or attempt >= retry.max_attempts:
                raise SubmitError(f"batch {chunk.chunk_id}: submission failed: {failure.error.message}") from exc
            # A 429 was refused outright; anything else may have created the batch before failing.
            reconcile = failure.error.kind != "rate_limit"
            await asyncio.sleep(backoff_delay(attempt, failure.retry_after, retry, rng))
            continue
        state.advance(chunk, "submitted", batch_id=batch.id, status=batch.status, submitted_at=time.time())
        return


async def _upload(client: openai.AsyncOpenAI, path: Any) -> Any:
    with open(path, "rb") as fh:
        return await client.with_options(timeout=UPLOAD_TIMEOUT).files.create(
            file=(path.name, fh, "application/jsonl"), purpose="batch")


async def _retrying(action: Any, retry: RetrySettings, rng: random.Random, what: str) -> Any:
    """``await action()`` with the run's retry policy for rate limits, 5xx and connection errors."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await action()
        except Exception as exc:  # noqa: BLE001 - classified as a trial call would be
            failure: CallFailed = classify(exc)
            if not failure.retryable or attempt >= retry.max_attempts:
                raise SubmitError(f"{what} failed: {failure.error.message}") from exc
            await asyncio.sleep(backoff_delay(attempt, failure.retry_after, retry, rng))
