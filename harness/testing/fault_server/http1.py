"""Just enough HTTP/1.1 on asyncio streams to serve the ``openai`` SDK, ``httpx2`` and urllib.

Keep-alive, pipelining, ``Content-Length`` and chunked request bodies, ``Expect: 100-continue``; replies
always carry a ``Content-Length``. Named ``http1`` rather than ``http`` so it never reads as the standard
library's module, which it imports.
"""

from __future__ import annotations

import asyncio
import http
from collections.abc import Sequence
from dataclasses import dataclass

# Bounds that keep a long benchmark or a hostile client from growing memory without limit.
MAX_HEAD = 64 * 1024
MAX_BODY = 32 * 1024 * 1024


class HttpError(Exception):
    """A request that cannot be parsed; answered with ``status`` and the connection closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool
    query: str = ""  # after the "?", for the list endpoints' paging


async def read_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Request | None:
    """The next request on the connection, or None when the client closed it between requests."""
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip():
                raise HttpError(400, "incomplete request head") from None
            return None  # the client closed an idle keep-alive connection
        except asyncio.LimitOverrunError:
            raise HttpError(431, "request head too large") from None
        # RFC 9112 asks servers to ignore empty lines before a request line.
        head = head.lstrip(b"\r\n")
        if head:
            break
    lines = head[:-4].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise HttpError(400, f"malformed request line: {lines[0][:100]!r}")
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise HttpError(400, f"malformed header line: {line[:100]!r}")
        name = name.lower()
        value = value.strip(" \t")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    connection = headers.get("connection", "").lower()
    # HTTP/1.1 keeps the connection open unless told otherwise; HTTP/1.0 only when asked to.
    keep_alive = "keep-alive" in connection if version == "HTTP/1.0" else "close" not in connection

    transfer_encoding = headers.get("transfer-encoding", "").lower()
    if transfer_encoding and transfer_encoding.rsplit(",", 1)[-1].strip() != "chunked":
        raise HttpError(501, f"unsupported transfer-encoding: {transfer_encoding}")
    if headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    if transfer_encoding:
        body = await _read_chunked(reader)
        # A message with both framings is a smuggling risk; RFC 9112 says close after answering.
        keep_alive = keep_alive and "content-length" not in headers
    elif "content-length" in headers:
        length_text = headers["content-length"]
        if not length_text.isdigit():
            raise HttpError(400, f"bad content-length: {length_text[:40]!r}")
        length = int(length_text)
        if length > MAX_BODY:
            raise HttpError(413, "request body too large")
        body = await reader.readexactly(length)
    else:
        body = b""
    path, _, query = target.partition("?")
    return Request(method, path, headers, body, keep_alive, query)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise HttpError(400, "bad chunk size") from None
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass  # trailers carry nothing the server uses
            return b"".join(chunks)
        total += size
        if total > MAX_BODY:
            raise HttpError(413, "request body too large")
        chunks.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise HttpError(400, "chunk not terminated by CRLF")


def write_response(
    writer: asyncio.StreamWriter,
    status: int,
    body: bytes,
    keep_alive: bool,
    content_type: str = "application/json",
    extra_headers: Sequence[tuple[str, str]] = (),
) -> None:
    lines = [
        f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        f"Connection: {'keep-alive' if keep_alive else 'close'}",
        *(f"{name}: {value}" for name, value in extra_headers),
    ]
    writer.write(response_head(lines) + body)


def response_head(lines: Sequence[str]) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def write_trickle(writer: asyncio.StreamWriter, status: int, body: bytes, content_type: str,
                        extra_headers: Sequence[tuple[str, str]], interval: float) -> None:
    """A slow-loris answer: the head at once, then the body one byte per ``interval`` s; closes afterwards."""
    lines = [
        f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in extra_headers),
    ]
    writer.write(response_head(lines))
    await writer.drain()
    for i in range(len(body)):
        await asyncio.sleep(interval)
        writer.write(body[i : i + 1])
        await writer.drain()
