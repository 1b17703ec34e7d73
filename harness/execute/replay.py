"""Record and replay HTTP per client: an ``httpx2`` transport that consults its own cassette.

vcrpy's ``use_cassette`` patches the transport class for the whole process, so two cassettes open at once
cross (or leak to the network); here each ``AsyncOpenAI`` client gets its own ``RecordingTransport``::

    transport = RecordingTransport(open_cassette(path), mode, inner=httpx2.AsyncHTTPTransport())
    client = AsyncOpenAI(base_url=..., api_key=..., max_retries=0,
                         http_client=httpx2.AsyncClient(transport=transport, timeout=...))

A request is identified by ``match_key`` (method, path, the ``X-Harness-Sample`` header and the canonical
JSON body). In ``replay`` mode a miss raises ``ReplayMiss`` and nothing is sent anywhere. ``ReplayMiss``
is an ``httpx2.RequestError`` because openai 3.x wraps only those in ``APIConnectionError`` (with the miss
as ``__cause__``); any other exception would escape the SDK unwrapped. Keep ``max_retries=0``: the SDK
retries connection errors, and a miss would only miss again.

What is recorded is what is replayed: in the recording modes the client gets the response rebuilt from the
stored interaction (decoded body, allow-listed headers), so a recording run and its replays parse
identically. Responses are buffered whole: a streamed (SSE) answer is read as it arrives, its time to first
token kept next to its latency (``harness.execute.streaming.read_timed``), and handed on as one body; a
stream that breaks or never finishes is not recorded.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import time
from enum import Enum
from typing import Any

import httpx2

from harness.errors import ReplayMissError
from harness.execute.cassette import (
    LATENCY_HEADER,
    MATCH_KEY_HEADER,
    SAMPLE_HEADER,
    TTFT_HEADER,
    Cassette,
    CassetteError,
    Interaction,
    cassette_path,
    close_cassette,
    make_interaction,
    match_key,
    open_cassette,
    save_all,
    slugify,
)
from harness.execute.failures import BadRecording
from harness.execute.group_commit import GroupCommit
from harness.execute.limits import cap_response
from harness.execute.streaming import is_event_stream, read_timed

__all__ = [
    "MATCH_KEY_HEADER",
    "SAMPLE_HEADER",
    "Cassette",
    "CassetteError",
    "Interaction",
    "RecordMode",
    "RecordingTransport",
    "ReplayMiss",
    "cassette_path",
    "close_cassette",
    "is_recordable",
    "note_recorded",
    "rebuild_response",
    "match_key",
    "open_cassette",
    "parse_mode",
    "save_all",
    "slugify",
    "summarize_body",
]


class RecordMode(str, Enum):
    """How a transport uses its cassette. Values are the names users type."""

    replay = "replay"  # cassette only; a miss raises ReplayMiss
    record_missing = "record-missing"  # replay hits, call upstream for misses and record them
    record = "record"  # always call upstream and record, replacing the interaction for the key
    live = "live"  # pass-through, no cassette


def parse_mode(text: str | RecordMode) -> RecordMode:
    """``replay``, ``record-missing`` (or ``record_missing``), ``record`` or ``live``."""
    if isinstance(text, RecordMode):
        return text
    try:
        return RecordMode(text.strip().lower().replace("_", "-"))
    except ValueError:
        choices = ", ".join(mode.value for mode in RecordMode)
        raise ValueError(f"unknown record mode {text!r}; expected one of {choices}") from None


# Not recorded: statuses that say nothing stable about the request. 408/409/425/429 and 5xx are transient
# (the SDK or the scheduler retries them); 401/403/407 are about credentials. Recorded, any of them would
# replay forever, even after the outage ended or the key was fixed.
_NOT_RECORDED = frozenset({401, 403, 407, 408, 409, 425, 429})


def is_recordable(status: int) -> bool:
    return status < 500 and status not in _NOT_RECORDED


def recording_problem(interaction: Interaction) -> str | None:
    """What makes a stored answer one no real call gives (a hand edit, a bad merge), or None when it is fine."""
    if not is_recordable(interaction.status):
        return f"an HTTP {interaction.status} answer, which is never recorded"
    content_type = ",".join(v for n, v in interaction.headers if n == "content-type").lower()
    if 200 <= interaction.status < 300 and (not content_type or "json" in content_type):
        try:
            json.loads(interaction.content)
        except (ValueError, RecursionError):
            return "a 200 answer whose body is not JSON"
    return None


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summarize_body(body: bytes, limit: int = 80) -> str:
    """A one-line description of a request body for error messages: model, last message or prompt, seed."""
    if not body:
        return "empty body"
    try:
        obj: Any = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return f"body {_short(body[:limit * 4].decode('utf-8', 'replace'), limit)!r}"
    if not isinstance(obj, dict):
        return f"body {_short(json.dumps(obj, ensure_ascii=False), limit)}"
    parts: list[str] = []
    if isinstance(obj.get("model"), str):
        parts.append(f"model={obj['model']}")
    messages = obj.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
        last = messages[-1]
        content = last.get("content")
        text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
        parts.append(f"{last.get('role', 'message')}: {_short(text, limit)!r}")
    elif "prompt" in obj:
        prompt = obj["prompt"]
        text = prompt if isinstance(prompt, str) else json.dumps(prompt, ensure_ascii=False)
        parts.append(f"prompt: {_short(text, limit)!r}")
    for name in ("temperature", "seed"):
        if name in obj:
            parts.append(f"{name}={obj[name]}")
    return ", ".join(parts) or f"body {_short(json.dumps(obj, ensure_ascii=False), limit)}"


class ReplayMiss(httpx2.RequestError, ReplayMissError):
    """No recording for a request in ``replay`` mode. Raised before anything is sent.

    The SDK surfaces it as ``APIConnectionError`` with this as ``__cause__``. It is also a
    ``harness.errors.ReplayMissError`` (exit code 3).
    """

    def __init__(
        self,
        *,
        key: str,
        method: str,
        path: str,
        sample: str,
        summary: str,
        cassette: str,
        request: httpx2.Request | None = None,
    ) -> None:
        self.key = key
        self.method = method
        self.path = path
        self.sample = sample
        self.summary = summary
        self.cassette = cassette
        super().__init__(
            f"no recording for {method} {path} (sample {sample!r}; {summary}) in {cassette} "
            f"[match key {key[:16]}]; record it with mode record-missing",
            request=request,
        )


class RecordingTransport(httpx2.AsyncBaseTransport):
    """An ``httpx2`` async transport that replays from and records into one cassette.

    ``inner`` is the real transport for upstream calls; it is never called in ``replay`` mode (and may be
    omitted there). Every recording is in the cassette's journal on disk before the response is returned;
    closing the transport (``await client.close()``) closes ``inner`` and saves the cassette if it changed.
    """

    def __init__(
        self,
        cassette: Cassette | None,
        mode: RecordMode | str,
        inner: httpx2.AsyncBaseTransport | None = None,
        max_response_bytes: int | None = None,
    ) -> None:
        self.mode = parse_mode(mode)
        self.max_response_bytes = max_response_bytes
        if cassette is None and self.mode is not RecordMode.live:
            raise ValueError(f"record mode {self.mode.value} needs a cassette")
        if inner is None and self.mode is not RecordMode.replay:
            inner = httpx2.AsyncHTTPTransport()
        self.cassette = cassette
        self.inner = inner
        self._commit = GroupCommit(self._write_and_flush)
        # Counters for progress lines and tests: replayed hits, upstream calls, interactions recorded.
        self.hits = 0
        self.upstream_calls = 0
        self.recorded = 0

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if self.mode is RecordMode.live:
            return await self._upstream(request)
        assert self.cassette is not None
        body = await request.aread()
        path = request.url.raw_path.decode("ascii")
        sample = request.headers.get(SAMPLE_HEADER, "")
        key = match_key(request.method, path, sample, body)

        if self.mode is not RecordMode.record:
            found = self.cassette.lookup(key)
            if found is not None:
                problem = recording_problem(found)
                if problem is not None:
                    # Replaying it again would only give the same answer: fail now, naming the cassette.
                    raise BadRecording(
                        f"{self.cassette.path}: the recording of {request.method} {path} (sample {sample!r}; "
                        f"{summarize_body(body)}) [match key {key[:16]}] is {problem}; delete it and record it "
                        "again with --record record-missing", request=request)
                self.hits += 1
                note_recorded(found)
                return _rebuild(found, request)
            if self.mode is RecordMode.replay:
                raise ReplayMiss(key=key, method=request.method, path=path, sample=sample,
                                 summary=summarize_body(body), cassette=str(self.cassette.path),
                                 request=request)

        # Ask for gzip only: httpx2 would also offer br/zstd, and vcrpy-era tooling cannot decode zstd.
        request.headers["Accept-Encoding"] = "gzip"
        started = time.perf_counter()
        response = await self._upstream(request)
        if not is_recordable(response.status_code):
            return response  # untouched: the caller's retry logic needs its headers (Retry-After)
        timings: list[tuple[str, str]] = []
        if is_event_stream(response.headers):
            content, ttft = await read_timed(response, started)  # decoded; raises if the stream broke
            if ttft is not None:
                timings.append((TTFT_HEADER, f"{ttft:.1f}"))
        else:
            try:
                content = await response.aread()  # decoded: gzip/deflate/br removed
            finally:
                await response.aclose()
        timings.append((LATENCY_HEADER, f"{(time.perf_counter() - started) * 1000:.1f}"))
        interaction = make_interaction(
            key=key, method=request.method, uri=path, sample=sample, request_body=body,
            request_headers=request.headers.multi_items(), status=response.status_code,
            reason=response.reason_phrase, content=content,
            response_headers=[*response.headers.multi_items(), *timings],
        )
        # Off the event loop: the recording is written to the journal and fsync'd (one append and one flush
        # shared by the recordings made meanwhile) before the answer goes back, so the trial's result (stored
        # after this returns) can never be on disk without its recording. An equal recording made earlier
        # may still await its flush: this one waits for it too.
        self._commit.wrote(interaction)
        await self._commit.synced()
        # Answer with what is stored (an unchanged answer keeps its first latency), so a recording run
        # reports exactly what its replays will.
        interaction = self.cassette.lookup(key) or interaction
        note_recorded(interaction)
        return _rebuild(interaction, request)

    def _write_and_flush(self, interactions: list[Interaction]) -> None:
        """The group commit's flush (in a worker thread): the recordings handed over, then one fsync."""
        if self.cassette is None:
            return
        if interactions:
            self.recorded += self.cassette.record_many(interactions, sync=False)
        self.cassette.flush()

    async def _upstream(self, request: httpx2.Request) -> httpx2.Response:
        assert self.inner is not None
        self.upstream_calls += 1
        response = await self.inner.handle_async_request(request)
        return await cap_response(response, self.max_response_bytes, request)

    async def aclose(self) -> None:
        try:
            if self.inner is not None:
                await self.inner.aclose()
        finally:
            if self.cassette is not None and self.cassette.dirty:
                await asyncio.to_thread(self.cassette.save)


# Set by the caller around one request; the transport fills in the recorded latency. A mutable holder (not
# a value) so the caller sees it even if a library copies the context on the way down.
RECORDED_LATENCY: contextvars.ContextVar[dict[str, float] | None] = contextvars.ContextVar(
    "harness_recorded_latency", default=None
)


def note_recorded(interaction: Interaction) -> None:
    """Tell the caller what the answer's recording says about it: its latency and time to first token, and
    whether a batch made it."""
    holder = RECORDED_LATENCY.get()
    if holder is None:
        return
    for name, value in (("latency_ms", interaction.latency_ms), ("ttft_ms", interaction.ttft_ms)):
        if value is not None:
            holder[name] = value
    if interaction.from_batch:
        holder["batch"] = 1.0


def rebuild_response(interaction: Interaction, request: httpx2.Request) -> httpx2.Response:
    """The response a client gets for ``interaction``: what is stored is what is answered."""
    return _rebuild(interaction, request)


def _rebuild(interaction: Interaction, request: httpx2.Request) -> httpx2.Response:
    reason = interaction.reason
    return httpx2.Response(
        interaction.status,
        headers=interaction.headers,
        content=interaction.content,
        request=request,
        extensions={"reason_phrase": reason.encode("ascii", "ignore")} if reason else None,
    )

