"""Group commit: one flush to disk for every recording written while the previous flush ran.

A recording transport must not hand an answer back before its recording is on disk (the trial's result is
stored right after, and must never exist without its recording). Flushing after each recording costs one
``fsync`` per trial (about 1 ms here, more on network disks); with 32 trials in flight, most of them wait
for the same flush anyway. So each recorder writes its line, then awaits a flush that *started after* its
write: one flush runs at a time, and whoever finished writing while it ran is covered by the next one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class GroupCommit:
    """Shares ``flush`` (blocking, run in a worker thread) among the writers of one event loop.

    Each writer calls ``wrote()`` once its write has returned, then ``await synced()``: that returns when a
    flush that began after the write has completed, and raises what that flush raised.
    """

    def __init__(self, flush: Callable[[], None]) -> None:
        self._flush = flush
        self._written = 0  # writes finished, counted on the event loop
        self._synced = 0  # writes known to be on disk
        self._running: asyncio.Future[None] | None = None
        self.flushes = 0

    def wrote(self) -> None:
        self._written += 1

    async def synced(self) -> None:
        target = self._written
        if self._running is not None and self._running.get_loop() is not asyncio.get_running_loop():
            self._running = None  # left by a loop that ended mid-flush (an interrupted run): start afresh
        while self._synced < target:
            if self._running is None:
                # Covers every write counted so far: each of them returned before this flush starts.
                self._running = asyncio.ensure_future(self._run(self._written))
            # Shielded: a cancelled waiter must not cancel a flush other writers are waiting on.
            await asyncio.shield(self._running)

    async def _run(self, upto: int) -> None:
        try:
            self.flushes += 1
            await asyncio.to_thread(self._flush)
            self._synced = max(self._synced, upto)
        finally:
            self._running = None
