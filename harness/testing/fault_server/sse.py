"""Streamed replies (``stream: true``) sent as real server-sent events: chunked, paced, and breakable.

The first event (the role, or an empty text) goes out at once, like a real server's flush of its headers;
the events that carry tokens follow after ``stream_first_token_ms`` and then every ``stream_chunk_ms``.
The ``stream_break`` fault sends about half of the events and then closes the connection without ending
the chunked body, which clients see as a stream broken mid-way.
"""

from __future__ import annotations

import asyncio
import http
import json
from collections.abc import Sequence
from typing import Any

from .config import Fault, FaultConfig

# Tool-call arguments are sent in fragments of this many characters, as the API splits them.
ARGUMENT_FRAGMENT = 8


def chat_events(reply: dict[str, Any], include_usage: bool) -> list[dict[str, Any]]:
    """A chat completion as chunk events: a role event per choice, then one event per word of content or
    per fragment of tool-call arguments, choices interleaved, then a finish event per choice."""
    common = _common(reply, "chat.completion.chunk")
    events: list[dict[str, Any]] = []
    per_choice: list[list[dict[str, Any]]] = []
    for choice in reply["choices"]:
        index, message = choice["index"], choice["message"]
        events.append({**common, "choices": [{"index": index, "delta": {"role": "assistant", "content": ""},
                                              "finish_reason": None}]})
        deltas: list[dict[str, Any]] = [{"content": word} for word in _words(message.get("content") or "")]
        for position, call in enumerate(message.get("tool_calls") or []):
            arguments = call["function"]["arguments"]
            deltas.append({"tool_calls": [{"index": position, "id": call["id"], "type": "function",
                                           "function": {"name": call["function"]["name"], "arguments": ""}}]})
            pieces = [arguments[i:i + ARGUMENT_FRAGMENT] for i in range(0, len(arguments), ARGUMENT_FRAGMENT)]
            deltas += [{"tool_calls": [{"index": position, "function": {"arguments": piece}}]} for piece in pieces]
        legacy = message.get("function_call")  # the older `functions` API streams its one call the same way
        if legacy:
            arguments = legacy["arguments"]
            deltas.append({"function_call": {"name": legacy["name"], "arguments": ""}})
            deltas += [{"function_call": {"arguments": arguments[i:i + ARGUMENT_FRAGMENT]}}
                       for i in range(0, len(arguments), ARGUMENT_FRAGMENT)]
        per_choice.append([{**common, "choices": [{"index": index, "delta": d, "finish_reason": None}]}
                           for d in deltas]
                          + [{**common, "choices": [{"index": index, "delta": {},
                                                     "finish_reason": choice["finish_reason"]}]}])
    events += _interleave(per_choice)
    if include_usage:
        events.append({**common, "choices": [], "usage": reply["usage"]})
    return events


def text_events(reply: dict[str, Any], include_usage: bool) -> list[dict[str, Any]]:
    """A legacy completion as events: an empty first event, then one per word and choice, then finishes."""
    common = _common(reply, "text_completion")
    events = [{**common, "choices": [{"index": c["index"], "text": "", "finish_reason": None, "logprobs": None}
                                     for c in reply["choices"]]}]
    per_choice = [
        [{**common, "choices": [{"index": c["index"], "text": w, "finish_reason": None, "logprobs": None}]}
         for w in _words(c["text"])]
        + [{**common, "choices": [{"index": c["index"], "text": "", "finish_reason": c["finish_reason"],
                                   "logprobs": None}]}]
        for c in reply["choices"]
    ]
    events += _interleave(per_choice)
    if include_usage:
        events.append({**common, "choices": [], "usage": reply["usage"]})
    return events


def _common(reply: dict[str, Any], kind: str) -> dict[str, Any]:
    return {"id": reply["id"], "object": kind, "created": reply["created"], "model": reply["model"],
            "system_fingerprint": reply["system_fingerprint"]}


def _words(text: str) -> list[str]:
    """Pieces that join back to ``text`` exactly: each word with the whitespace before it."""
    pieces: list[str] = []
    current = ""
    for char in text:
        if char.isspace() and current.strip():
            pieces.append(current)
            current = ""
        current += char
    if current:
        pieces.append(current)
    return pieces


def _interleave(lists: Sequence[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    # Round-robin, the last choice first: clients must assemble by index, not by arrival order.
    out: list[dict[str, Any]] = []
    longest = max((len(x) for x in lists), default=0)
    for i in range(longest):
        out += [events[i] for events in reversed(lists) if i < len(events)]
    return out


def encode(events: list[dict[str, Any]]) -> list[bytes]:
    return [b"data: " + json.dumps(e).encode() + b"\n\n" for e in events] + [b"data: [DONE]\n\n"]


async def write_stream(writer: asyncio.StreamWriter, events: list[bytes], keep_alive: bool,
                       headers: Sequence[tuple[str, str]], config: FaultConfig, fault: Fault | None) -> bool:
    """Send ``events`` as a chunked SSE body, paced; return whether the connection may carry another."""
    head = [
        f"HTTP/1.1 200 {http.HTTPStatus(200).phrase}",
        "Content-Type: text/event-stream",
        "Transfer-Encoding: chunked",
        f"Connection: {'keep-alive' if keep_alive else 'close'}",
        *(f"{name}: {value}" for name, value in headers),
    ]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
    cut = max(2, len(events) // 2) if fault is Fault.STREAM_BREAK else None
    for i, event in enumerate(events):
        if i == cut:
            await writer.drain()
            return False  # the caller closes the socket: the chunked body never ends
        if i == 1 and config.stream_first_token_ms:
            await asyncio.sleep(config.stream_first_token_ms / 1000)
        elif i > 1 and config.stream_chunk_ms:
            await asyncio.sleep(config.stream_chunk_ms / 1000)
        writer.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
        await writer.drain()
    writer.write(b"0\r\n\r\n")
    await writer.drain()
    return keep_alive
