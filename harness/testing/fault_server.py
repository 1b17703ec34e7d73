"""A fault-injecting OpenAI-compatible HTTP server on 127.0.0.1, for tests and benchmarks.

It speaks just enough HTTP/1.1 (keep-alive, pipelining, ``Content-Length`` and chunked request bodies) on
asyncio streams to serve the ``openai`` SDK, ``httpx2`` and urllib, with no dependency beyond the standard
library. Replies are a deterministic function of the request: by default the last user message (or the
prompt) is echoed back, so a test can check that every request got its own answer. Faults (HTTP errors,
slow replies, dropped connections, malformed bodies) are drawn from a hash of the request and its attempt
number, so a run is reproducible and a retried request can succeed.

In-process, on a background thread with its own event loop (usable from sync and async tests)::

    with FaultServer(FaultConfig(fail_first_n=1, fail_first_with="429")) as server:
        client = OpenAI(base_url=server.base_url, api_key="test", max_retries=0)

As a separate process, so a benchmark does not pay for the server's CPU in the measured process::

    python -m harness.testing.fault_server --port 0 --latency-ms 100 --fault 500 0.05

prints its base URL on stdout once it accepts connections; ``spawn_server`` wraps that.

Endpoints: ``POST /v1/chat/completions``, ``POST /v1/completions``, ``GET /v1/models``, ``GET /health``,
``GET /_stats`` (counters as JSON) and ``POST /_reset`` (clears counters and attempt numbers).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import http
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any

HOST = "127.0.0.1"
SAMPLE_HEADER = "x-harness-sample"
DEFAULT_FAULT_PATHS = ("/v1/chat/completions", "/v1/completions")
DEFAULT_MODELS = ("fault-server",)

# Bounds that keep a long benchmark or a hostile client from growing memory without limit.
_MAX_HEAD = 64 * 1024
_MAX_BODY = 32 * 1024 * 1024
_MAX_TRACKED_REQUESTS = 200_000
_MAX_N = 128

# The ``malformed`` fault's body: declared as JSON, but it stops mid-object.
_TRUNCATED_JSON = b'{"id": "broken", "object": "chat.completion", "choices": [{"ind'


class Fault(str, Enum):
    """What can go wrong with a request. The values are the names used in config, CLI flags and stats."""

    RATE_LIMIT = "429"
    SERVER_ERROR = "500"
    UNAVAILABLE = "503"
    BAD_REQUEST = "400"
    UNAUTHORIZED = "401"
    NOT_FOUND = "404"
    SLOW = "slow"
    DROP = "drop"
    MALFORMED = "malformed"
    NO_CHOICES = "no_choices"


# status, error type, error code, message for the faults that answer with an OpenAI-style error body.
_ERROR_FAULTS: dict[Fault, tuple[int, str, str | None, str]] = {
    Fault.RATE_LIMIT: (429, "requests", "rate_limit_exceeded", "Rate limit reached (injected)."),
    Fault.SERVER_ERROR: (500, "server_error", None, "The server had an error (injected)."),
    Fault.UNAVAILABLE: (503, "server_error", "service_unavailable", "The server is overloaded (injected)."),
    Fault.BAD_REQUEST: (400, "invalid_request_error", "invalid_request", "Invalid request (injected)."),
    Fault.UNAUTHORIZED: (401, "invalid_request_error", "invalid_api_key", "Incorrect API key (injected)."),
    Fault.NOT_FOUND: (404, "invalid_request_error", "model_not_found", "No such model (injected)."),
}


@dataclass
class FaultConfig:
    """How the server answers. Read afresh for every request, so it may be replaced or mutated while running.

    Args:
        seed: Mixed into every fault draw, jitter draw and id; the same seed and requests give the same run.
        latency_ms: Delay added before every ``/v1`` response (including injected errors), via asyncio.sleep
            so concurrent requests overlap.
        jitter_ms: Extra delay in ``[0, jitter_ms)``, drawn from a hash of the request and attempt.
        fault_rates: Probability of each ``Fault`` (keys may be the plain names, e.g. ``"429"``) for a
            request to one of ``fault_paths``. They must sum to at most 1; one draw per attempt picks at
            most one fault, from a hash of (seed, method, path, body, sample header, attempt number).
        fault_paths: The paths that ``fault_rates`` and ``fail_first_n`` apply to.
        fail_first_n: The first N attempts of each distinct request (same method, path, body and sample
            header) to ``fault_paths`` fail with ``fail_first_with``; attempt N+1 goes through. Checked
            before ``fault_rates``.
        fail_first_with: The fault used by ``fail_first_n``.
        always_fail: Path -> fault injected on every request to that path (``"*"``: every ``/v1`` path).
            Checked before everything else.
        retry_after_s: ``Retry-After`` header value on 429 replies, in seconds; None leaves it out.
        retry_after_ms: ``retry-after-ms`` header value on 429 replies; None leaves it out.
        slow_s: How long the ``slow`` fault sleeps before answering normally; meant to exceed the client's
            timeout.
        rules: Substring of the last user message (or prompt) -> fixed reply text; the first match in
            insertion order wins, otherwise the text is echoed.
        tool_call: Answer chat requests with one ``tool_calls`` entry and finish_reason ``"tool_calls"``.
        tool_name: The function name in that call; default: the first tool in the request, else ``"tool"``.
        tool_arguments: The call's arguments (sent as JSON); default ``{"text": <the reply text>}``.
        vary_by_sample: With temperature > 0 (absent counts as 1, as in the API), append a short suffix
            derived from the ``X-Harness-Sample`` header and the choice index, so repeats of one prompt
            get different (but reproducible) text.
        models: The ids listed by ``GET /v1/models``.
    """

    seed: int = 0
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    fault_rates: dict[Fault, float] = field(default_factory=dict)
    fault_paths: tuple[str, ...] = DEFAULT_FAULT_PATHS
    fail_first_n: int = 0
    fail_first_with: Fault = Fault.SERVER_ERROR
    always_fail: dict[str, Fault] = field(default_factory=dict)
    retry_after_s: float | None = 1.0
    retry_after_ms: float | None = None
    slow_s: float = 30.0
    rules: dict[str, str] = field(default_factory=dict)
    tool_call: bool = False
    tool_name: str | None = None
    tool_arguments: dict[str, Any] | None = None
    vary_by_sample: bool = False
    models: tuple[str, ...] = DEFAULT_MODELS

    def __post_init__(self) -> None:
        # Normalise plain strings to Fault up front, so a typo fails at construction and not mid-test.
        self.fault_rates = {Fault(name): float(p) for name, p in self.fault_rates.items()}
        self.fail_first_with = Fault(self.fail_first_with)
        self.always_fail = {path: Fault(name) for path, name in self.always_fail.items()}
        self.fault_paths = tuple(self.fault_paths)
        self.models = tuple(self.models)
        for name, p in self.fault_rates.items():
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"fault_rates[{name!s}] must be within [0, 1], got {p}")
        if sum(self.fault_rates.values()) > 1.0 + 1e-9:
            raise ValueError("fault_rates must sum to at most 1")
        if self.fail_first_n < 0:
            raise ValueError("fail_first_n must be >= 0")
        if self.latency_ms < 0 or self.jitter_ms < 0 or self.slow_s < 0:
            raise ValueError("latency_ms, jitter_ms and slow_s must be >= 0")

    def to_cli_args(self) -> list[str]:
        """The command-line flags that rebuild this config in process mode (see ``main``)."""
        args = ["--seed", str(self.seed), "--latency-ms", repr(self.latency_ms),
                "--jitter-ms", repr(self.jitter_ms), "--slow-s", repr(self.slow_s)]
        for fault, p in self.fault_rates.items():
            args += ["--fault", fault.value, repr(p)]
        for path in self.fault_paths:
            args += ["--fault-path", path]
        if self.fail_first_n:
            args += ["--fail-first-n", str(self.fail_first_n)]
        args += ["--fail-first-with", self.fail_first_with.value]
        for path, fault in self.always_fail.items():
            args += ["--always-fail", path, fault.value]
        if self.retry_after_s is None:
            args.append("--no-retry-after")
        else:
            args += ["--retry-after", repr(self.retry_after_s)]
        if self.retry_after_ms is not None:
            args += ["--retry-after-ms", repr(self.retry_after_ms)]
        for substring, reply in self.rules.items():
            args += ["--rule", substring, reply]
        if self.tool_call:
            args.append("--tool-call")
        if self.tool_name is not None:
            args += ["--tool-name", self.tool_name]
        if self.tool_arguments is not None:
            args += ["--tool-arguments", json.dumps(self.tool_arguments)]
        if self.vary_by_sample:
            args.append("--vary-by-sample")
        for model in self.models:
            args += ["--model", model]
        return args


def _digest(*parts: bytes) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        # Length-prefix each part so ("ab", "c") and ("a", "bc") hash differently.
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.digest()


def _unit(*parts: bytes) -> float:
    """A number in [0, 1) that is a deterministic function of ``parts``."""
    return int.from_bytes(_digest(*parts)[:8], "little") / 2.0**64


def _sample_suffix(sample: str, index: int) -> str:
    return " ~" + _digest(b"sample", sample.encode(), str(index).encode()).hex()[:8]


def _text_of(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = (part.get("text") for part in content if isinstance(part, dict))
        return "".join(text for text in texts if isinstance(text, str))
    return ""


def _count_tokens(text: str) -> int:
    # Whitespace words: a deterministic stand-in that tests can compute for themselves.
    return len(text.split())


def _truncate(text: str, max_tokens: Any) -> tuple[str, str]:
    """Cut ``text`` to ``max_tokens`` words as the API would; return (text, finish_reason)."""
    if isinstance(max_tokens, int) and max_tokens >= 0:
        words = text.split()
        if len(words) > max_tokens:
            return " ".join(words[:max_tokens]), "length"
    return text, "stop"


class _HttpError(Exception):
    """A request that cannot be parsed; answered with ``status`` and the connection closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _ApiError(Exception):
    """A well-formed HTTP request the API rejects (bad JSON, missing fields); the connection stays open."""

    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param


@dataclass
class _Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


def _error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> bytes:
    return json.dumps({"error": {"message": message, "type": type_, "param": param, "code": code}}).encode()


class _App:
    """The server's state and request handling, independent of which thread or process runs the loop."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        # Handlers run on the loop thread while stats()/reset() may come from a test thread.
        self._lock = threading.Lock()
        self._attempts: OrderedDict[bytes, int] = OrderedDict()
        self._connections: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None
        self._reset_counters()

    def _reset_counters(self) -> None:
        self._requests = 0
        self._responses = 0
        self._by_path: Counter[str] = Counter()
        self._by_status: Counter[int] = Counter()
        self._faults: Counter[str] = Counter()
        self._by_sample: Counter[str] = Counter()
        self._in_flight = 0
        self._max_in_flight = 0

    # -- state ---------------------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests_total": self._requests,
                "responses_total": self._responses,
                "by_path": dict(self._by_path),
                "by_status": {str(code): n for code, n in sorted(self._by_status.items())},
                "faults": dict(self._faults),
                "by_sample": dict(self._by_sample),
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
                "distinct_requests": len(self._attempts),
            }

    def reset(self) -> None:
        with self._lock:
            self._attempts.clear()
            in_flight = self._in_flight
            self._reset_counters()
            # Requests already being served still finish and decrement; keep the gauge consistent.
            self._in_flight = in_flight

    def _next_attempt(self, key: bytes) -> int:
        with self._lock:
            attempt = self._attempts.pop(key, 0) + 1
            self._attempts[key] = attempt  # re-insert: the most recently seen requests are evicted last
            if len(self._attempts) > _MAX_TRACKED_REQUESTS:
                self._attempts.popitem(last=False)
            return attempt

    # -- lifecycle -----------------------------------------------------------------------------------------

    async def listen(self, port: int) -> int:
        # A large backlog: benchmarks open a few hundred connections at once.
        self._server = await asyncio.start_server(
            self._serve_connection, HOST, port, limit=_MAX_HEAD, backlog=1024
        )
        return int(self._server.sockets[0].getsockname()[1])

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        # Python 3.11's Server.wait_closed does not wait for open connections, and slow-fault handlers
        # may be asleep for a long time: cancel them outright.
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    # -- HTTP ----------------------------------------------------------------------------------------------

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            while True:
                try:
                    request = await self._read_request(reader, writer)
                except _HttpError as exc:
                    self._write(writer, exc.status, _error_body(exc.message, "invalid_request_error"), False)
                    await writer.drain()
                    return
                if request is None or not await self._dispatch(request, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away mid-request: nothing to answer
        except asyncio.CancelledError:
            # Shutdown cancels handlers. Finishing normally instead of re-raising is deliberate: Python 3.11's
            # start_server callback calls task.exception() on a cancelled task and logs a spurious error.
            pass
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()

    async def _read_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> _Request | None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                if exc.partial.strip():
                    raise _HttpError(400, "incomplete request head") from None
                return None  # the client closed an idle keep-alive connection
            except asyncio.LimitOverrunError:
                raise _HttpError(431, "request head too large") from None
            # RFC 9112 asks servers to ignore empty lines before a request line.
            head = head.lstrip(b"\r\n")
            if head:
                break
        lines = head[:-4].decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _HttpError(400, f"malformed request line: {lines[0][:100]!r}")
        method, target, version = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                raise _HttpError(400, f"malformed header line: {line[:100]!r}")
            name = name.lower()
            value = value.strip(" \t")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        connection = headers.get("connection", "").lower()
        # HTTP/1.1 keeps the connection open unless told otherwise; HTTP/1.0 only when asked to.
        keep_alive = "keep-alive" in connection if version == "HTTP/1.0" else "close" not in connection

        transfer_encoding = headers.get("transfer-encoding", "").lower()
        if transfer_encoding and transfer_encoding.rsplit(",", 1)[-1].strip() != "chunked":
            raise _HttpError(501, f"unsupported transfer-encoding: {transfer_encoding}")
        if headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if transfer_encoding:
            body = await self._read_chunked(reader)
            # A message with both framings is a smuggling risk; RFC 9112 says close after answering.
            keep_alive = keep_alive and "content-length" not in headers
        elif "content-length" in headers:
            length_text = headers["content-length"]
            if not length_text.isdigit():
                raise _HttpError(400, f"bad content-length: {length_text[:40]!r}")
            length = int(length_text)
            if length > _MAX_BODY:
                raise _HttpError(413, "request body too large")
            body = await reader.readexactly(length)
        else:
            body = b""
        return _Request(method, target.split("?", 1)[0], headers, body, keep_alive)

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = await reader.readuntil(b"\r\n")
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _HttpError(400, "bad chunk size") from None
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":
                    pass  # trailers carry nothing the server uses
                return b"".join(chunks)
            total += size
            if total > _MAX_BODY:
                raise _HttpError(413, "request body too large")
            chunks.append(await reader.readexactly(size))
            if await reader.readexactly(2) != b"\r\n":
                raise _HttpError(400, "chunk not terminated by CRLF")

    def _write(
        self,
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
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    # -- routing -------------------------------------------------------------------------------------------

    async def _dispatch(self, request: _Request, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; return whether the connection may carry another."""
        path, method = request.path, request.method
        if path.startswith("/v1/"):
            return await self._api(request, writer)
        if path == "/health" and method in ("GET", "HEAD"):
            body = b'{"status":"ok"}'
        elif path == "/_stats" and method == "GET":
            body = json.dumps(self.stats()).encode()
        elif path == "/_reset" and method == "POST":
            self.reset()
            body = b'{"status":"reset"}'
        else:
            body = _error_body(f"no route for {method} {path}", "invalid_request_error", "unknown_url")
            self._write(writer, 404, body, request.keep_alive)
            await writer.drain()
            return request.keep_alive
        self._write(writer, 200, body, request.keep_alive)
        await writer.drain()
        return request.keep_alive

    def _choose_fault(self, config: FaultConfig, path: str, key: bytes, attempt: int) -> Fault | None:
        forced = config.always_fail.get(path) or config.always_fail.get("*")
        if forced is not None:
            return forced
        if path not in config.fault_paths:
            return None
        if attempt <= config.fail_first_n:
            return config.fail_first_with
        if config.fault_rates:
            u = _unit(b"fault", str(config.seed).encode(), key, str(attempt).encode())
            # Walk the faults in a fixed order so the outcome does not depend on the dict's insertion order.
            cumulative = 0.0
            for fault in Fault:
                cumulative += config.fault_rates.get(fault, 0.0)
                if u < cumulative:
                    return fault
        return None

    async def _api(self, request: _Request, writer: asyncio.StreamWriter) -> bool:
        config = self.config  # one snapshot per request, even if the config is swapped meanwhile
        sample = request.headers.get(SAMPLE_HEADER, "")
        key = _digest(request.method.encode(), request.path.encode(), request.body, sample.encode())
        attempt = self._next_attempt(key)
        fault = self._choose_fault(config, request.path, key, attempt)
        with self._lock:
            self._requests += 1
            self._by_path[request.path] += 1
            if sample:
                self._by_sample[sample] += 1
            if fault is not None:
                self._faults[fault.value] += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        try:
            delay = config.latency_ms
            if config.jitter_ms:
                u = _unit(b"jitter", str(config.seed).encode(), key, str(attempt).encode())
                delay += config.jitter_ms * u
            if fault is Fault.SLOW:
                delay += config.slow_s * 1000.0
            if delay > 0:
                await asyncio.sleep(delay / 1000.0)
            if fault is Fault.DROP:
                return False  # the caller closes the socket without a byte of response
            status, body, content_type, headers = self._respond(config, request, fault, key, sample)
        finally:
            with self._lock:
                self._in_flight -= 1
        headers.append(("x-harness-attempt", str(attempt)))
        if fault is not None:
            headers.append(("x-harness-fault", fault.value))
        self._write(writer, status, body, request.keep_alive, content_type, headers)
        with self._lock:
            self._responses += 1
            self._by_status[status] += 1
        await writer.drain()
        return request.keep_alive

    def _respond(
        self, config: FaultConfig, request: _Request, fault: Fault | None, key: bytes, sample: str
    ) -> tuple[int, bytes, str, list[tuple[str, str]]]:
        headers: list[tuple[str, str]] = []
        if fault in _ERROR_FAULTS:
            status, type_, code, message = _ERROR_FAULTS[fault]  # type: ignore[index]
            if fault is Fault.RATE_LIMIT:
                if config.retry_after_s is not None:
                    headers.append(("retry-after", _format_number(config.retry_after_s)))
                if config.retry_after_ms is not None:
                    headers.append(("retry-after-ms", _format_number(config.retry_after_ms)))
            return status, _error_body(message, type_, code), "application/json", headers
        if fault is Fault.MALFORMED:
            return 200, _TRUNCATED_JSON, "application/json", headers
        if fault is Fault.NO_CHOICES:
            body = {"id": "nochoices-" + key.hex()[:16], "object": "chat.completion",
                    "created": int(time.time())}
            return 200, json.dumps(body).encode(), "application/json", headers
        try:
            if request.path == "/v1/models" and request.method == "GET":
                return 200, json.dumps(self._models(config)).encode(), "application/json", headers
            if request.path in ("/v1/chat/completions", "/v1/completions") and request.method == "POST":
                payload = self._json_body(request.body)
                chat = request.path == "/v1/chat/completions"
                reply = self._completion(config, payload, key, sample, chat)
                if payload.get("stream"):
                    include_usage = bool((payload.get("stream_options") or {}).get("include_usage"))
                    return 200, _sse(reply, chat, include_usage), "text/event-stream", headers
                return 200, json.dumps(reply).encode(), "application/json", headers
            raise _ApiError(404, f"no route for {request.method} {request.path}")
        except _ApiError as exc:
            return exc.status, _error_body(exc.message, "invalid_request_error", None, exc.param), \
                "application/json", headers

    @staticmethod
    def _json_body(body: bytes) -> dict[str, Any]:
        try:
            payload = json.loads(body)
        except ValueError:
            raise _ApiError(400, "request body is not valid JSON") from None
        if not isinstance(payload, dict):
            raise _ApiError(400, "request body must be a JSON object")
        return payload

    @staticmethod
    def _models(config: FaultConfig) -> dict[str, Any]:
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "fault-server"} for m in config.models]
        return {"object": "list", "data": data}

    def _completion(
        self, config: FaultConfig, payload: dict[str, Any], key: bytes, sample: str, chat: bool
    ) -> dict[str, Any]:
        n = payload.get("n")
        n = 1 if n is None else n
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= _MAX_N:
            raise _ApiError(400, f"n must be an integer in [1, {_MAX_N}]", "n")
        temperature = payload.get("temperature")
        temperature = 1.0 if temperature is None else temperature
        vary = config.vary_by_sample and isinstance(temperature, int | float) and temperature > 0
        max_tokens = payload.get("max_completion_tokens", payload.get("max_tokens"))

        if chat:
            messages = payload.get("messages")
            if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
                raise _ApiError(400, "messages must be a list of objects", "messages")
            users = [m for m in messages if m.get("role") == "user"]
            prompts = [_text_of(users[-1].get("content")) if users else ""]
            prompt_tokens = sum(_count_tokens(_text_of(m.get("content"))) for m in messages)
        else:
            prompt = payload.get("prompt", "")
            if isinstance(prompt, str):
                prompts = [prompt]
            elif isinstance(prompt, list) and all(isinstance(p, str) for p in prompt):
                prompts = list(prompt)
            elif isinstance(prompt, list) and all(isinstance(p, int) for p in prompt):
                prompts = [" ".join(map(str, prompt))]  # a token-id prompt: echo the ids as text
            else:
                raise _ApiError(400, "prompt must be a string or a list of strings or token ids", "prompt")
            prompt_tokens = sum(_count_tokens(p) for p in prompts)

        choices: list[dict[str, Any]] = []
        completion_tokens = 0
        for prompt_text in prompts:
            base = next((reply for sub, reply in config.rules.items() if sub in prompt_text), prompt_text)
            for _ in range(n):
                index = len(choices)
                text = base + _sample_suffix(sample, index) if vary else base
                text, finish = _truncate(text, max_tokens)
                if chat and config.tool_call:
                    arguments = json.dumps(config.tool_arguments if config.tool_arguments is not None
                                           else {"text": text})
                    name = config.tool_name or _first_tool(payload)
                    call = {
                        "id": f"call_{_digest(key, str(index).encode()).hex()[:24]}",
                        "type": "function",
                        "function": {"name": name, "arguments": arguments},
                    }
                    message = {"role": "assistant", "content": None, "refusal": None, "tool_calls": [call]}
                    choices.append({"index": index, "message": message, "finish_reason": "tool_calls",
                                    "logprobs": None})
                    completion_tokens += _count_tokens(arguments)
                elif chat:
                    message = {"role": "assistant", "content": text, "refusal": None}
                    choices.append({"index": index, "message": message, "finish_reason": finish,
                                    "logprobs": None})
                    completion_tokens += _count_tokens(text)
                else:
                    choices.append({"index": index, "text": text, "finish_reason": finish, "logprobs": None})
                    completion_tokens += _count_tokens(text)

        model = payload.get("model")
        return {
            "id": ("chatcmpl-" if chat else "cmpl-") + key.hex()[:24],
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": model if isinstance(model, str) else DEFAULT_MODELS[0],
            "system_fingerprint": "fault-server",
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


def _first_tool(payload: dict[str, Any]) -> str:
    tools = payload.get("tools")
    if isinstance(tools, list) and tools and isinstance(tools[0], dict):
        name = (tools[0].get("function") or {}).get("name")
        if isinstance(name, str):
            return name
    return "tool"


def _format_number(value: float) -> str:
    # Integral values as integers: the HTTP Retry-After grammar is delay-seconds = 1*DIGIT.
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _sse(reply: dict[str, Any], chat: bool, include_usage: bool) -> bytes:
    """A whole streamed reply as one Content-Length body of server-sent events, one chunk per choice."""
    common = {"id": reply["id"], "created": reply["created"], "model": reply["model"],
              "system_fingerprint": reply["system_fingerprint"]}
    events: list[dict[str, Any]] = []
    for choice in reply["choices"]:
        index = choice["index"]
        if chat:
            message = choice["message"]
            delta: dict[str, Any] = {"role": "assistant", "content": message["content"]}
            if "tool_calls" in message:
                delta["tool_calls"] = [{"index": 0, **call} for call in message["tool_calls"]]
            events.append({**common, "object": "chat.completion.chunk",
                           "choices": [{"index": index, "delta": delta, "finish_reason": None}]})
            finish = {"index": index, "delta": {}, "finish_reason": choice["finish_reason"]}
            events.append({**common, "object": "chat.completion.chunk", "choices": [finish]})
        else:
            events.append({**common, "object": "text_completion",
                           "choices": [{"index": index, "text": choice["text"],
                                        "finish_reason": choice["finish_reason"], "logprobs": None}]})
    if include_usage:
        events.append({**common, "object": "chat.completion.chunk" if chat else "text_completion",
                       "choices": [], "usage": reply["usage"]})
    out = b"".join(b"data: " + json.dumps(event).encode() + b"\n\n" for event in events)
    return out + b"data: [DONE]\n\n"


class FaultServer:
    """The fault server on a background thread with its own event loop; a context manager.

    ``config`` may be replaced (``server.config = FaultConfig(...)``) or mutated at any time; each request
    reads it once on arrival. Attempt numbers (for ``fail_first_n`` and the fault draws) survive a config
    change: call ``reset()`` to start counting afresh.
    """

    def __init__(self, config: FaultConfig | None = None, port: int = 0) -> None:
        self._app = _App(config or FaultConfig())
        self._requested_port = port
        self._port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def config(self) -> FaultConfig:
        return self._app.config

    @config.setter
    def config(self, value: FaultConfig) -> None:
        self._app.config = value

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the fault server is not running")
        return self._port

    @property
    def url(self) -> str:
        """The server root, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://{HOST}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, ``http://127.0.0.1:PORT/v1``."""
        return f"{self.url}/v1"

    def start(self) -> FaultServer:
        if self._thread is not None:
            raise RuntimeError("the fault server is already running")
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                self._port = loop.run_until_complete(self._app.listen(self._requested_port))
            except BaseException as exc:  # reported to start()'s caller, e.g. port already in use
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._app.aclose())
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        thread = threading.Thread(target=run, name="fault-server", daemon=True)
        thread.start()
        ready.wait()
        if failure:
            thread.join()
            raise failure[0]
        self._loop, self._thread = loop, thread
        return self

    def stop(self) -> None:
        """Stop serving; in-flight requests (e.g. asleep in a slow fault) are cancelled. Idempotent."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._thread = self._loop = None
        self._port = None

    def stats(self) -> dict[str, Any]:
        """Counters since start or the last reset: the same JSON that ``GET /_stats`` returns."""
        return self._app.stats()

    def reset(self) -> None:
        """Clear the counters and the attempt numbers of every request seen so far."""
        self._app.reset()

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


# -- process mode ------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m harness.testing.fault_server",
        description="Fault-injecting OpenAI-compatible server on 127.0.0.1; prints its base URL when ready.",
    )
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--jitter-ms", type=float, default=0.0)
    p.add_argument("--fault", nargs=2, action="append", default=[], metavar=("FAULT", "P"),
                   help=f"probability of a fault; FAULT is one of {', '.join(f.value for f in Fault)}")
    p.add_argument("--fault-path", action="append", default=None, metavar="PATH",
                   help="path subject to --fault/--fail-first-n (repeatable; default: the completion paths)")
    p.add_argument("--fail-first-n", type=int, default=0)
    p.add_argument("--fail-first-with", default=Fault.SERVER_ERROR.value)
    p.add_argument("--always-fail", nargs=2, action="append", default=[], metavar=("PATH", "FAULT"),
                   help="fail every request to PATH ('*' for all /v1 paths)")
    p.add_argument("--retry-after", type=float, default=1.0, dest="retry_after_s")
    p.add_argument("--no-retry-after", action="store_const", const=None, dest="retry_after_s")
    p.add_argument("--retry-after-ms", type=float, default=None)
    p.add_argument("--slow-s", type=float, default=30.0)
    p.add_argument("--rule", nargs=2, action="append", default=[], metavar=("SUBSTRING", "REPLY"))
    p.add_argument("--tool-call", action="store_true")
    p.add_argument("--tool-name", default=None)
    p.add_argument("--tool-arguments", type=json.loads, default=None, metavar="JSON")
    p.add_argument("--vary-by-sample", action="store_true")
    p.add_argument("--model", action="append", default=None, dest="models")
    return p


def parse_args(argv: Sequence[str] | None = None) -> tuple[FaultConfig, int]:
    """Parse process-mode flags into (config, port)."""
    ns = _parser().parse_args(argv)
    config = FaultConfig(
        seed=ns.seed,
        latency_ms=ns.latency_ms,
        jitter_ms=ns.jitter_ms,
        fault_rates={Fault(name): float(p) for name, p in ns.fault},
        fault_paths=tuple(ns.fault_path) if ns.fault_path else DEFAULT_FAULT_PATHS,
        fail_first_n=ns.fail_first_n,
        fail_first_with=Fault(ns.fail_first_with),
        always_fail={path: Fault(name) for path, name in ns.always_fail},
        retry_after_s=ns.retry_after_s,
        retry_after_ms=ns.retry_after_ms,
        slow_s=ns.slow_s,
        rules=dict(ns.rule),
        tool_call=ns.tool_call,
        tool_name=ns.tool_name,
        tool_arguments=ns.tool_arguments,
        vary_by_sample=ns.vary_by_sample,
        models=tuple(ns.models) if ns.models else DEFAULT_MODELS,
    )
    return config, ns.port


async def _serve_until_signalled(config: FaultConfig, port: int) -> None:
    app = _App(config)
    bound = await app.listen(port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # The one line on stdout: spawn_server (or a shell script) reads the URL from it.
    print(f"http://{HOST}:{bound}/v1", flush=True)
    await stop.wait()
    await app.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    config, port = parse_args(argv)
    asyncio.run(_serve_until_signalled(config, port))
    return 0


def remote_stats(base_url: str, timeout: float = 10.0) -> dict[str, Any]:
    """``GET /_stats`` of a server given its base URL (``.../v1``), e.g. one started by ``spawn_server``."""
    with urllib.request.urlopen(_root(base_url) + "/_stats", timeout=timeout) as resp:
        return json.loads(resp.read())


def remote_reset(base_url: str, timeout: float = 10.0) -> None:
    """``POST /_reset`` of a server given its base URL."""
    request = urllib.request.Request(_root(base_url) + "/_reset", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        resp.read()


def _root(base_url: str) -> str:
    return base_url.removesuffix("/").removesuffix("/v1")


def spawn_server(
    config: FaultConfig | None = None,
    port: int = 0,
    extra_args: Sequence[str] = (),
    timeout: float = 20.0,
) -> tuple[subprocess.Popen[bytes], str]:
    """Run the server as a subprocess and wait until ``/health`` answers; return (process, base_url).

    The caller owns the process: ``proc.terminate(); proc.wait()`` stops it cleanly. ``extra_args`` are
    appended after the flags derived from ``config`` (later flags win for single-valued options).
    """
    argv = [sys.executable, "-m", "harness.testing.fault_server", "--port", str(port),
            *(config or FaultConfig()).to_cli_args(), *extra_args]
    # Make the child find this package even when it is not installed and the caller's cwd is elsewhere.
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    try:
        # Wait for the URL line without blocking past the deadline if the child hangs or dies silently.
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        line = proc.stdout.readline().decode().strip() if ready else ""
        if not line.startswith("http://"):
            raise RuntimeError(f"fault server did not print its URL (exit code {proc.poll()}): {argv}")
        # Nothing else comes on stdout; closing our end now avoids a leaked pipe when the caller forgets.
        proc.stdout.close()
        while True:
            health = _root(line) + "/health"
            with contextlib.suppress(OSError), urllib.request.urlopen(health, timeout=2) as resp:
                if resp.status == 200:
                    return proc, line
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"fault server at {line} did not answer /health (exit code {proc.poll()})")
            time.sleep(0.05)
    except BaseException:
        proc.kill()
        proc.wait()
        raise


if __name__ == "__main__":
    raise SystemExit(main())
