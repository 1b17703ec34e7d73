"""Connections to a live endpoint: several small connection pools behind one transport.

Why: httpx's pool re-examines every connection it holds each time a request starts or ends, and for an idle
keep-alive connection that means probing its socket (``has_expired`` → ``is_readable``, a ``getpeername``
and a ``poll`` per connection). At 256 requests in flight that bookkeeping was 40% of the process's CPU,
and the cost of each call grew with the concurrency. Split into pools of at most ``SHARD_SIZE`` connections,
each request pays for its own pool only, so the cost per call stays flat however many are in flight.

Each request goes to the shard with the fewest requests in flight (ties to the first), so no shard is ever
asked for more connections than it has while the scheduler keeps at most ``max_connections`` in flight. A
request stays counted until its response body is closed, which is when httpx hands its connection back.
"""

from __future__ import annotations

import math
import ssl
from collections.abc import AsyncIterator

import httpx2

# Small enough that a pool's walk over its connections is cheap, large enough that a suite at the default
# concurrency uses one or two pools.
SHARD_SIZE = 4


class _Counted(httpx2.AsyncByteStream):
    """A response body that gives its shard's slot back when closed (once, however often it is closed)."""

    def __init__(self, inner: httpx2.AsyncByteStream, release: ShardedTransport, shard: int) -> None:
        self._inner = inner
        self._owner = release
        self._shard: int | None = shard

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            if self._shard is not None:
                self._owner.release(self._shard)
                self._shard = None


class ShardedTransport(httpx2.AsyncBaseTransport):
    """``max_connections`` connections in pools of at most ``shard_size``, sharing one TLS context.

    Args:
        max_connections: connections allowed in all, also kept alive between requests (the scheduler's
            concurrency for the model).
        shard_size: the largest pool; the pools are made equal in size.
    """

    def __init__(self, max_connections: int, shard_size: int = SHARD_SIZE) -> None:
        total = max(int(max_connections), 1)
        count = math.ceil(total / max(shard_size, 1))
        per_shard = math.ceil(total / count)
        limits = httpx2.Limits(max_connections=per_shard, max_keepalive_connections=per_shard)
        # One TLS context for all: building one loads the CA bundle (~30 ms), and every pool would build its own.
        context: ssl.SSLContext = httpx2.create_ssl_context()
        self._shards = [httpx2.AsyncHTTPTransport(verify=context, limits=limits) for _ in range(count)]
        self.busy = [0] * count
        self.per_shard = per_shard

    def _pick(self) -> int:
        busy = self.busy
        return busy.index(min(busy))

    def release(self, shard: int) -> None:
        self.busy[shard] -= 1

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        shard = self._pick()
        self.busy[shard] += 1
        try:
            response = await self._shards[shard].handle_async_request(request)
        except BaseException:
            self.busy[shard] -= 1
            raise
        stream = response.stream
        if isinstance(stream, httpx2.AsyncByteStream):
            response.stream = _Counted(stream, self, shard)
        else:  # not a stream this transport can see closed: the slot is free already as far as we can tell
            self.busy[shard] -= 1
        return response

    async def aclose(self) -> None:
        for shard in self._shards:
            await shard.aclose()
