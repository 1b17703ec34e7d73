"""Wait for submitted batches: poll with backoff, show progress, fetch each finished batch's files.

Output and error files are streamed to the run folder (never held in memory) and renamed into place whole, so
a kill mid-download leaves no half file that could be mistaken for a finished one.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from harness.execute.batch.state import FINAL_STATUSES, BatchState, Chunk
from harness.execute.provider import classify
from harness.report.format import money
from harness.store import atomic_file

if TYPE_CHECKING:  # the SDK is imported where a call is made: a replay answered from cassettes never needs it
    import openai


@dataclass
class PollSettings:
    """How long and how often to ask. ``wait``: seconds in all (None: until every batch ended; 0: not at all)."""

    wait: float | None = None
    interval: float = 5.0
    max_interval: float = 60.0
    growth: float = 1.5


class BatchProgress:
    """One line per poll: how many batches are in each state, requests done, time waited, estimated spend."""

    def __init__(self, enabled: bool, estimate: float | None, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.estimate = estimate
        self.stream = stream or sys.stderr
        self.started = time.monotonic()

    def show(self, chunks: Sequence[Chunk]) -> None:
        if not self.enabled:
            return
        states = Counter(c.status or "uploading" for c in chunks)
        shown = " · ".join(f"{n} {status.replace('_', ' ')}" for status, n in sorted(states.items()))
        done = sum(c.counts.get("completed", 0) + c.counts.get("failed", 0) for c in chunks)
        total = sum(c.count for c in chunks)
        elapsed = int(time.monotonic() - self.started)
        spend = "?" if self.estimate is None else f"~{money(self.estimate, 4)}"
        print(f"[harness] batches: {shown} · requests {done}/{total} · {elapsed // 60}m{elapsed % 60:02d}s · "
              f"est. spend {spend}", file=self.stream, flush=True)


async def download(client: openai.AsyncOpenAI, file_id: str, path: Path) -> None:
    """Stream a provider file to ``path`` (replaced whole when complete)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, binary=True) as fh:
        async with client.files.with_streaming_response.content(file_id) as response:
            async for block in response.iter_bytes():
                fh.write(block)


def _counts(batch: Any) -> dict[str, int]:
    counts = getattr(batch, "request_counts", None)
    if counts is None:
        return {}
    return {"total": int(counts.total or 0), "completed": int(counts.completed or 0), "failed": int(counts.failed or 0)}


async def refresh(client: openai.AsyncOpenAI, state: BatchState, chunk: Chunk) -> None:
    """Ask for the chunk's batch once; when it has ended, fetch its files and move it to ``ended``."""
    batch = await client.batches.retrieve(chunk.batch_id or "")
    changed = batch.status != chunk.status or _counts(batch) != chunk.counts
    chunk.status, chunk.counts = batch.status, _counts(batch)
    if batch.status in FINAL_STATUSES:
        for file_id, kind in ((batch.output_file_id, "output"), (batch.error_file_id, "errors")):
            if file_id:
                await download(client, file_id, chunk.file(state.directory, kind))
        errors = getattr(getattr(batch, "errors", None), "data", None) or []
        note = "; ".join(f"{e.code}: {e.message}" for e in errors if getattr(e, "message", None))
        state.advance(chunk, "ended", output_file_id=batch.output_file_id, error_file_id=batch.error_file_id,
                      ended_at=time.time(), note=note or chunk.note)
    elif changed:
        state.save()


async def wait_for(chunks: Sequence[Chunk], client_for: Callable[[Chunk], openai.AsyncOpenAI], state: BatchState,
                   settings: PollSettings, progress: BatchProgress) -> bool:
    """Poll until every chunk has ended (True) or the wait is over (False). Errors of one poll are retried."""
    deadline = None if settings.wait is None else time.monotonic() + settings.wait
    delay = settings.interval
    while True:
        for chunk in chunks:
            if chunk.phase == "submitted":
                try:
                    await refresh(client_for(chunk), state, chunk)
                except Exception as exc:  # noqa: BLE001 - a failed poll is asked again next time
                    failure = classify(exc)
                    if not failure.retryable:
                        raise
                    progress_note(progress, f"batch {chunk.chunk_id}: poll failed ({failure.error.message}); "
                                            "asking again")
        progress.show(chunks)
        if all(c.phase != "submitted" for c in chunks):
            return True
        if deadline is not None and time.monotonic() + delay > deadline:
            return False
        await asyncio.sleep(delay)
        delay = min(delay * settings.growth, settings.max_interval)


def progress_note(progress: BatchProgress, text: str) -> None:
    if progress.enabled:
        print(f"[harness] {text}", file=progress.stream, flush=True)
