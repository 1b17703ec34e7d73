"""Streamed replies (``stream: true``): the choices assembled from the deltas, and the time to first token.

Two places read a stream. The provider assembles what the SDK parsed (``assemble_chat``/``assemble_text``):
text and tool calls of every choice, tool-call arguments joined from their fragments with the SDK's own
``accumulate_delta``. The recording transport reads the raw bytes as they arrive (``read_timed``) and keeps
the time at which the first token arrived, so a cassette stores the whole SSE body with its TTFT next to
its latency, and a replay reports both exactly as recorded. A stream that breaks, or ends without saying it
is done, raises ``StreamBroken``: it is a retryable trial error and is never recorded or graded.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx2

from harness.grade.base import Output, ToolCall

_EVENT_END = re.compile(rb"\r?\n\r?\n")


class StreamBroken(httpx2.RemoteProtocolError):
    """A stream that stopped before its end. An ``httpx2`` transport error, so the SDK wraps it as a
    connection error (retried) with this as its cause."""


def is_event_stream(headers: Any) -> bool:
    return str(headers.get("content-type", "")).split(";")[0].strip().lower() == "text/event-stream"


def _events(body: bytes) -> list[tuple[int, str]]:
    """(offset just past the event, its data) for each server-sent event of ``body``."""
    out: list[tuple[int, str]] = []
    start = 0
    for match in _EVENT_END.finditer(body):
        block = body[start:match.start()].decode("utf-8", "replace")
        data = "\n".join(line[5:].lstrip(" ") for line in block.splitlines() if line.startswith("data:"))
        if data:
            out.append((match.end(), data))
        start = match.end()
    return out


def _carries_token(data: str) -> bool:
    try:
        event = json.loads(data)
    except ValueError:
        return False
    for choice in event.get("choices") or [] if isinstance(event, dict) else []:
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
        if delta.get("content") or delta.get("tool_calls") or delta.get("function_call") or choice.get("text"):
            return True
    return False


def first_token_offset(body: bytes) -> int | None:
    """Where the first event that carries content or a tool-call fragment ends; None without one."""
    return next((end for end, data in _events(body) if _carries_token(data)), None)


def stream_complete(body: bytes) -> bool:
    """Whether the stream said it was done: ``[DONE]``, or (for servers that omit it) a finish reason for
    every choice it started."""
    finished: dict[int, bool] = {}
    for _, data in _events(body):
        if data.strip() == "[DONE]":
            return True
        try:
            event = json.loads(data)
        except ValueError:
            continue
        for choice in (event.get("choices") or []) if isinstance(event, dict) else []:
            if isinstance(choice, dict):
                index = int(choice.get("index") or 0)
                finished[index] = finished.get(index, False) or bool(choice.get("finish_reason"))
    return bool(finished) and all(finished.values())


async def read_timed(response: httpx2.Response, started: float) -> tuple[bytes, float | None]:
    """Read a streamed body whole, noting when its first token arrived (ms after ``started``).

    Raises ``StreamBroken`` when the connection breaks mid-stream or the stream never says it is done.
    """
    parts: list[bytes] = []
    arrivals: list[tuple[int, float]] = []  # (bytes received so far, ms) per network read
    size = 0
    try:
        async for part in response.aiter_bytes():
            parts.append(part)
            size += len(part)
            arrivals.append((size, (time.perf_counter() - started) * 1000))
    except httpx2.TransportError as exc:
        raise StreamBroken(f"the stream broke after {size} bytes: {type(exc).__name__}: {exc}") from exc
    finally:
        await response.aclose()
    body = b"".join(parts)
    if not stream_complete(body):
        raise StreamBroken(f"the stream ended after {size} bytes without finishing (no [DONE], no finish reason)")
    offset = first_token_offset(body)
    ttft = None if offset is None else next(ms for received, ms in arrivals if received >= offset)
    return body, ttft


@dataclass
class StreamResult:
    """What a stream assembled to: every choice in index order, the usage (if sent), and the TTFT measured
    by the reader (used when no recorded TTFT exists, i.e. live calls)."""

    outputs: list[Output] = field(default_factory=list)
    usage: Any = None
    ttft_ms: float | None = None

    def token_arrived(self, started: float) -> None:
        """Note a token's arrival; the first one is the TTFT (ms after ``started``)."""
        if self.ttft_ms is None:
            self.ttft_ms = (time.perf_counter() - started) * 1000


async def _choices(stream: AsyncIterator[Any], result: StreamResult,
                   finish: dict[int, str | None]) -> AsyncIterator[Any]:
    """Each choice of each chunk (chat or legacy completions) as it arrives, keeping the stream's usage in
    ``result`` and each choice's finish reason in ``finish`` (by choice index)."""
    async for chunk in stream:
        if getattr(chunk, "usage", None) is not None:
            result.usage = chunk.usage
        for choice in chunk.choices or []:
            yield choice
            if choice.finish_reason:
                finish[choice.index] = choice.finish_reason


async def assemble_chat(stream: AsyncIterator[Any], started: float) -> StreamResult:
    """Chat chunks to choices: content and tool calls joined per choice index (chunks of several choices
    may interleave in any order)."""
    from openai.lib.streaming._deltas import accumulate_delta  # only streamed calls need the SDK's merger

    messages: dict[int, dict[object, object]] = {}
    finish: dict[int, str | None] = {}
    result = StreamResult()
    async for choice in _choices(stream, result, finish):
        delta = choice.delta.to_dict() if choice.delta is not None else {}
        if delta.get("content") or delta.get("tool_calls") or delta.get("function_call"):
            result.token_arrived(started)
        messages[choice.index] = accumulate_delta(messages.get(choice.index, {}), delta)
    for index in sorted(messages):
        result.outputs.append(_chat_output(messages[index], finish.get(index)))
    return result


def _chat_output(message: dict[object, object], finish_reason: str | None) -> Output:
    calls = []
    for call in message.get("tool_calls") or []:  # type: ignore[attr-defined]
        function = call.get("function") or {}
        calls.append(ToolCall(name=str(function.get("name") or ""), arguments=str(function.get("arguments") or ""),
                              id=str(call.get("id") or "")))
    legacy = message.get("function_call")  # the older `functions` API: one call, no id
    if isinstance(legacy, dict) and not calls:
        calls.append(ToolCall(name=str(legacy.get("name") or ""), arguments=str(legacy.get("arguments") or "")))
    return Output(str(message.get("content") or ""), tuple(calls), finish_reason)


async def assemble_text(stream: AsyncIterator[Any], started: float) -> StreamResult:
    """Legacy completions chunks to choices: text joined per choice index."""
    texts: dict[int, list[str]] = {}
    finish: dict[int, str | None] = {}
    result = StreamResult()
    async for choice in _choices(stream, result, finish):
        if choice.text:
            result.token_arrived(started)
        texts.setdefault(choice.index, []).append(choice.text or "")
    result.outputs = [Output("".join(texts[i]), (), finish.get(i)) for i in sorted(texts)]
    return result
