"""The sharded connection pool: every request answered, all of them in flight at once, no shard asked for more
connections than it has, and every slot given back whatever becomes of the request."""

from __future__ import annotations

import asyncio
import json
import socket

import httpx2
import pytest

from harness.execute.pool import ShardedTransport
from harness.testing.fault_server import FaultConfig, FaultServer


def _body(text: str) -> bytes:
    return json.dumps({"model": "m", "messages": [{"role": "user", "content": text}]}).encode()


async def _ask(client: httpx2.AsyncClient, url: str, text: str) -> str:
    response = await client.post(f"{url}/chat/completions", content=_body(text),
                                 headers={"content-type": "application/json"})
    response.raise_for_status()
    return str(response.json()["choices"][0]["message"]["content"])


def test_requests_spread_over_shards_all_in_flight_at_once() -> None:
    transport = ShardedTransport(40, shard_size=4)
    assert len(transport.busy) == 10 and transport.per_shard == 4
    peak = [0] * len(transport.busy)
    original = transport._pick

    def pick() -> int:
        shard = original()
        peak[shard] = max(peak[shard], transport.busy[shard] + 1)
        return shard

    transport._pick = pick  # type: ignore[method-assign]
    with FaultServer(FaultConfig(latency_ms=300)) as server:
        async def main() -> list[str]:
            async with httpx2.AsyncClient(transport=transport, timeout=30) as client:
                return await asyncio.gather(*(_ask(client, server.base_url, f"n{i}") for i in range(40)))

        answers = asyncio.run(main())
        stats = server.stats()
    assert answers == [f"n{i}" for i in range(40)]  # every echo came back to its own request
    assert stats["max_in_flight"] == 40  # no request waited in a shard's queue
    assert max(peak) <= transport.per_shard
    assert transport.busy == [0] * 10


def test_sequential_requests_reuse_one_connection() -> None:
    transport = ShardedTransport(32)
    with FaultServer() as server:
        async def main() -> None:
            async with httpx2.AsyncClient(transport=transport, timeout=30) as client:
                for i in range(5):
                    assert await _ask(client, server.base_url, f"s{i}") == f"s{i}"
                # The least busy shard is the first whenever all are idle: keep-alive stays useful.
                assert len(transport._shards[0]._pool.connections) == 1
                assert all(not shard._pool.connections for shard in transport._shards[1:])

        asyncio.run(main())
    assert transport.busy == [0] * len(transport.busy)


def test_slots_come_back_after_errors_refusals_and_cancellation() -> None:
    transport = ShardedTransport(8, shard_size=2)
    with FaultServer(FaultConfig(latency_ms=2000)) as slow:
        async def main() -> None:
            async with httpx2.AsyncClient(transport=transport, timeout=30) as client:
                # Refused connections (nothing listens on a port just closed).
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", 0))
                    dead = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
                for _ in range(3):
                    with pytest.raises(httpx2.ConnectError):
                        await _ask(client, dead, "x")
                # Cancelled while the server is still thinking.
                tasks = [asyncio.create_task(_ask(client, slow.base_url, f"c{i}")) for i in range(6)]
                await asyncio.sleep(0.3)
                assert sum(transport.busy) == 6
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                # A response whose body is never read, only closed.
                request = client.build_request("POST", f"{slow.base_url}/models-that-do-not-exist")
                response = await client.send(request, stream=True)
                await response.aclose()
                await response.aclose()  # closing twice gives the slot back once

        asyncio.run(main())
    assert transport.busy == [0, 0, 0, 0]
