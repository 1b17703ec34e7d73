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

Endpoints: ``POST /v1/chat/completions``, ``POST /v1/completions``, ``POST /v1/moderations`` (see
``features`` for tool round trips, legacy function calls and images), ``GET /v1/models``, ``GET /health``,
``GET /_stats`` (counters as JSON) and ``POST /_reset`` (clears counters and attempt numbers); and the Files and
Batches endpoints the SDK's batch calls use, with a simulated batch engine (``batches``, ``BatchFaults``).

Modules: ``config`` (FaultConfig, Fault, command-line flags both ways), ``http1`` (the HTTP/1.1 layer),
``replies`` (OpenAI-shaped replies and fault choice), ``batches`` and ``batch_faults`` (Files and Batches
endpoints), ``server`` (state, routing, FaultServer),
``process`` (process mode: main, spawn_server, remote_stats, remote_reset).
"""

from .config import DEFAULT_FAULT_PATHS, DEFAULT_MODELS, HOST, SAMPLE_HEADER, Fault, FaultConfig, parse_args
from .process import main, remote_reset, remote_stats, spawn_server
from .replies import sample_suffix
from .server import FaultServer

# The name this helper had when the server was one module; tests still import it under it.
_sample_suffix = sample_suffix

__all__ = [
    "DEFAULT_FAULT_PATHS",
    "DEFAULT_MODELS",
    "HOST",
    "SAMPLE_HEADER",
    "Fault",
    "FaultConfig",
    "FaultServer",
    "main",
    "parse_args",
    "remote_reset",
    "remote_stats",
    "sample_suffix",
    "spawn_server",
]
