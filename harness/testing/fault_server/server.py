"""The fault server's state and request loop (``App``), and ``FaultServer`` running it on a background thread."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter, OrderedDict
from types import TracebackType
from typing import Any

from .batches import BatchStore
from .config import HOST, SAMPLE_HEADER, Fault, FaultConfig
from .http1 import MAX_HEAD, HttpError, Request, read_request, write_response, write_trickle
from .replies import choose_fault, digest, error_body, respond, unit
from .sse import write_stream

# Attempt numbers are kept per distinct request; a long benchmark must not grow them without limit.
_MAX_TRACKED_REQUESTS = 200_000


class App:
    """The server's state and request handling, independent of which thread or process runs the loop."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        # Handlers run on the loop thread while stats()/reset() may come from a test thread.
        self._lock = threading.Lock()
        self._attempts: OrderedDict[bytes, int] = OrderedDict()
        self._connections: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None
        self.batches = BatchStore()
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
                "batches": self.batches.stats(),
            }

    def reset(self) -> None:
        with self._lock:
            self._attempts.clear()
            self.batches.reset()
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
            self._serve_connection, HOST, port, limit=MAX_HEAD, backlog=1024
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

    # -- connections and routing ---------------------------------------------------------------------------

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            while True:
                try:
                    request = await read_request(reader, writer)
                except HttpError as exc:
                    write_response(writer, exc.status, error_body(exc.message, "invalid_request_error"), False)
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

    async def _dispatch(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; return whether the connection may carry another."""
        path, method = request.path, request.method
        if path.startswith(("/v1/files", "/v1/batches")):
            status, body, content_type, headers = self.batches.handle(self.config, request)
            write_response(writer, status, body, request.keep_alive, content_type, headers)
            await writer.drain()
            return request.keep_alive
        if path.startswith("/v1/"):
            return await self._api(request, writer)
        status = 200
        if path == "/health" and method in ("GET", "HEAD"):
            body = b'{"status":"ok"}'
        elif path == "/_stats" and method == "GET":
            body = json.dumps(self.stats()).encode()
        elif path == "/_reset" and method == "POST":
            self.reset()
            body = b'{"status":"reset"}'
        else:
            status = 404
            body = error_body(f"no route for {method} {path}", "invalid_request_error", "unknown_url")
        write_response(writer, status, body, request.keep_alive)
        await writer.drain()
        return request.keep_alive

    async def _api(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        config = self.config  # one snapshot per request, even if the config is swapped meanwhile
        sample = request.headers.get(SAMPLE_HEADER, "")
        key = digest(request.method.encode(), request.path.encode(), request.body, sample.encode())
        attempt = self._next_attempt(key)
        fault = choose_fault(config, request.path, key, attempt)
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
                delay += config.jitter_ms * unit(b"jitter", str(config.seed).encode(), key, str(attempt).encode())
            if fault is Fault.SLOW:
                delay += config.slow_s * 1000.0
            if delay > 0:
                await asyncio.sleep(delay / 1000.0)
            status, body, content_type, headers = respond(config, request, fault, key, sample)
            streamed = content_type == "text/event-stream"
            if fault is Fault.DROP or (fault is Fault.STREAM_BREAK and not streamed):
                return False  # the caller closes the socket without a byte of response
        finally:
            with self._lock:
                self._in_flight -= 1
        headers.append(("x-harness-attempt", str(attempt)))
        if fault is not None:
            headers.append(("x-harness-fault", fault.value))
        # Count before writing: a client that has its answer may ask for stats before this thread runs again.
        with self._lock:
            self._responses += 1
            self._by_status[status] += 1
        if streamed:
            events = [event + b"\n\n" for event in body.split(b"\n\n") if event]
            return await write_stream(writer, events, request.keep_alive, headers, config, fault)
        if fault is Fault.SLOW_LORIS:
            await write_trickle(writer, status, body, content_type, headers, config.trickle_s)
            return False
        write_response(writer, status, body, request.keep_alive, content_type, headers)
        await writer.drain()
        return request.keep_alive


class FaultServer:
    """The fault server on a background thread with its own event loop; a context manager.

    ``config`` may be replaced (``server.config = FaultConfig(...)``) or mutated at any time; each request
    reads it once on arrival. Attempt numbers (for ``fail_first_n`` and the fault draws) survive a config
    change: call ``reset()`` to start counting afresh.
    """

    def __init__(self, config: FaultConfig | None = None, port: int = 0) -> None:
        self._app = App(config or FaultConfig())
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
