"""What ``harness batches RUN`` shows and does: each batch's state, asked afresh, and cancelling them."""

from __future__ import annotations

import asyncio
from pathlib import Path

from harness.execute.batch.poll import refresh
from harness.execute.batch.runner import batch_client, describe
from harness.execute.batch.state import BatchState
from harness.execute.provider import classify
from harness.suite.model import Suite


async def _update(suite: Suite, directory: Path, cancel: bool) -> list[dict[str, object]]:
    # Read-only: a run may be polling these very batches and owns batches.json; it sees a cancel at its next poll.
    state = BatchState.load(directory, persist=False)
    models = suite.judges  # every model of the suite, graded or judge
    clients = {}
    try:
        for chunk in state.chunks:
            if chunk.phase != "submitted" or chunk.model not in models:
                continue
            client = clients.get(chunk.model) or clients.setdefault(chunk.model, batch_client(models[chunk.model]))
            try:
                if cancel:
                    await client.batches.cancel(chunk.batch_id or "")
                await refresh(client, state, chunk)
            except Exception as exc:  # noqa: BLE001 - shown in the table; the other batches are still listed
                chunk.note = f"could not ask the provider: {classify(exc).error.message}"
    finally:
        for client in clients.values():
            await client.close()
    return [describe(chunk) for chunk in state.chunks]


def batch_table(suite: Suite, directory: Path, cancel: bool = False) -> list[dict[str, object]]:
    """Every batch of the run (as ``runner.describe`` rows), after asking the provider about the running ones;
    with ``cancel``, running batches are cancelled first (their finished answers are still collected by a
    resume, the rest stay pending)."""
    return asyncio.run(_update(suite, directory, cancel))
