"""The fault server as a separate process: its entry point, ``spawn_server``, and its control endpoints."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .config import HOST, FaultConfig, parse_args
from .server import App


async def _serve_until_signalled(config: FaultConfig, port: int) -> None:
    app = App(config)
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
    # Make the child find this package even when it is not installed and the caller's cwd is elsewhere:
    # the directory holding ``harness``, three levels above this file's folder.
    package_root = str(Path(__file__).resolve().parents[3])
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
