"""Group commit: one write and one flush to disk for every recording made while the previous flush ran.

A recording transport must not hand an answer back before its recording is on disk (the trial's result is
stored right after, and must never exist without its recording). Writing and flushing each recording costs
a trip to a worker thread and one ``fsync`` per trial (about 1 ms here, more on network disks); with 32
trials in flight, most of them wait for the same flush anyway. So each recorder hands its recording over,
then awaits a flush that *started after* it did: one flush runs at a time, and it writes and syncs every
recording handed over before it began, in one append.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


class GroupCommit:
    """Shares ``flush`` (blocking, run in a worker thread) among the writers of one event loop.

    Each writer calls ``wrote(item)`` (``item``: what the flush is to write for it, or None when the writer
    wrote for itself), then ``await synced()``: that returns when a flush that began after ``wrote`` has
    completed, and raises what that flush raised. ``flush`` gets the items handed over since the last flush
    began, in order.
    """

    def __init__(self, flush: Callable[[list[Any]], None]) -> None:
        self._flush = flush
        self._written = 0  # writes handed over, counted on the event loop
        self._synced = 0  # writes known to be on disk
        self._pending: list[Any] = []
        self._running: asyncio.Future[None] | None = None
        self.flushes = 0

    def wrote(self, item: Any = None) -> None:
        self._written += 1
        if item is not None:
            self._pending.append(item)

    async def synced(self) -> None:
        target = self._written
        if self._running is not None and self._running.get_loop() is not asyncio.get_running_loop():
            self._running = None  # left by a loop that ended mid-flush (an interrupted run): start afresh
        while self._synced < target:
            if self._running is None:
                # Covers every write counted so far: each of them returned before this flush starts.
                self._running = asyncio.ensure_future(self._run(self._written))
                # Its waiters get its error through the shield; if all of them were cancelled meanwhile (a run
                # stopping), the error is theirs to lose, not a "never retrieved" warning at exit.
                self._running.add_done_callback(lambda done: done.cancelled() or done.exception())
            # Shielded: a cancelled waiter must not cancel a flush other writers are waiting on.
            await asyncio.shield(self._running)

    async def _run(self, upto: int) -> None:
        # Taken with the count, on the loop: exactly the items of the writes this flush covers.
        items, self._pending = self._pending, []
        try:
            self.flushes += 1
            await asyncio.to_thread(self._flush, items)
            self._synced = max(self._synced, upto)
        finally:
            self._running = None
