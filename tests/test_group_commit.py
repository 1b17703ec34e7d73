"""Group commit: recordings share flushes, and none is answered before a flush that began after its write."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from pathlib import Path

import pytest

from harness.execute.group_commit import GroupCommit
from harness.execute.journal import read
from harness.execute.replay import RecordingTransport
from harness.testing.fault_server import FaultConfig, FaultServer


def test_every_writer_waits_for_a_flush_that_began_after_its_write() -> None:
    written: list[int] = []
    flushed_up_to: list[int] = []  # for each finished flush: how many writes had returned when it began
    lock = threading.Lock()

    def flush(items: list[object]) -> None:
        assert items == []  # the writers wrote for themselves
        with lock:
            began_with = len(written)
        time.sleep(0.005)
        with lock:
            flushed_up_to.append(began_with)

    async def scenario() -> GroupCommit:
        commit = GroupCommit(flush)
        rng = random.Random(3)

        async def writer(i: int) -> None:
            await asyncio.sleep(rng.random() * 0.05)
            with lock:
                written.append(i)
                mine = len(written)
            commit.wrote()
            await commit.synced()
            with lock:
                assert any(up_to >= mine for up_to in flushed_up_to), (i, mine, flushed_up_to)

        await asyncio.gather(*(writer(i) for i in range(80)))
        return commit

    commit = asyncio.run(scenario())
    assert len(written) == 80
    # Shared: far fewer flushes than writers (one at a time, each covering whoever wrote meanwhile).
    assert 1 <= commit.flushes < 40, commit.flushes


def test_a_failed_flush_fails_its_waiters_and_the_next_one_is_tried_again() -> None:
    attempts = []

    def flush(items: list[object]) -> None:
        attempts.append(items)
        if len(attempts) == 1:
            raise OSError(28, "No space left on device")

    async def scenario() -> None:
        commit = GroupCommit(flush)
        commit.wrote("a")
        with pytest.raises(OSError):
            await commit.synced()
        commit.wrote("b")
        commit.wrote("c")
        await commit.synced()  # the disk has room again: a new flush covers the new writes

    asyncio.run(scenario())
    assert attempts == [["a"], ["b", "c"]]


def test_recording_transport_flushes_once_for_many_concurrent_recordings(tmp_path: Path) -> None:
    """32 requests in flight through one recording transport: every recording is in the journal when its
    answer arrives, with fewer flushes than recordings."""
    import httpx2

    from harness.execute.cassette import open_cassette

    cassette = open_cassette(tmp_path / "m.json")
    flushes = []
    real_flush = cassette.flush

    def counting_flush() -> None:
        flushes.append(1)
        real_flush()

    cassette.flush = counting_flush  # type: ignore[method-assign]

    async def scenario(url: str) -> list[int]:
        transport = RecordingTransport(cassette, "record")
        seen_in_journal = []
        async with httpx2.AsyncClient(transport=transport, base_url=url) as client:
            async def one(i: int) -> None:
                body = {"model": "m", "messages": [{"role": "user", "content": f"question-{i:03d}-end"}]}
                response = await client.post("/v1/chat/completions", json=body)
                assert response.status_code == 200
                # On disk by now: the journal holds this request's recording.
                lines = read(cassette.journal)
                seen_in_journal.append(sum(f"question-{i:03d}-end" in str(item.request) for item in lines))
            await asyncio.gather(*(one(i) for i in range(32)))
        return seen_in_journal

    with FaultServer(FaultConfig(latency_ms=20.0)) as server:
        seen = asyncio.run(scenario(server.url))
    assert seen == [1] * 32
    assert 1 <= len(flushes) < 32, len(flushes)
