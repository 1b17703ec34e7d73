"""Answers bigger than a model's ``max_response_bytes`` are cut off while they arrive, never buffered whole.

``cap_response`` checks a declared ``Content-Length`` before reading anything, and wraps the response's byte
stream so that reading past the limit raises ``ResponseTooLarge``: the SDK, the recording transport and a
streamed (SSE) reader all read through it, so a 200 MB answer costs at most the limit in memory and is
neither graded, stored in results, nor recorded.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx2

from harness.execute.failures import ResponseTooLarge


def _too_large(limit: int, request: httpx2.Request, size: str) -> ResponseTooLarge:
    return ResponseTooLarge(f"the answer is larger than max_response_bytes = {limit:,} bytes ({size}); raise the "
                            "model's max_response_bytes if such answers are expected", request=request)


class _CappedStream(httpx2.AsyncByteStream):
    def __init__(self, inner: httpx2.AsyncByteStream, limit: int, request: httpx2.Request) -> None:
        self._inner = inner
        self._limit = limit
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        total = 0
        async for chunk in self._inner:
            total += len(chunk)
            if total > self._limit:
                await self.aclose()
                raise _too_large(self._limit, self._request, f"{total:,} bytes read so far")
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


async def cap_response(response: httpx2.Response, limit: int | None, request: httpx2.Request) -> httpx2.Response:
    """``response`` whose body can be read only up to ``limit`` bytes (on the wire); None: no limit."""
    if limit is None:
        return response
    declared = response.headers.get("content-length")
    with contextlib.suppress(ValueError):
        if declared is not None and int(declared) > limit:
            await response.aclose()
            raise _too_large(limit, request, f"Content-Length {int(declared):,}")
    stream = response.stream
    if isinstance(stream, httpx2.AsyncByteStream):
        response.stream = _CappedStream(stream, limit, request)
    return response
