"""``harness run`` interrupted (SIGINT, SIGTERM) and facing an outage, through the real CLI in a subprocess.

The fault server runs in this process on its own thread; only the harness process gets signals.
"""

from __future__ import annotations

import json
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cli_subprocess_fixtures import harness_command, write_echo_suite

from harness.errors import EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_OK
from harness.plan import iter_trials
from harness.store import RESULTS_FILE, Manifest
from harness.suite import load_suite
from harness.testing.fault_server import Fault, FaultConfig, FaultServer

RUN_ID = "sig"


def with_default_sigint(command: list[str]) -> list[str]:
    # A shell running pytest in the background hands SIGINT down as ignored, and Python then never raises
    # KeyboardInterrupt. Restore the default before exec'ing the real CLI (exec keeps SIG_DFL).
    code = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
            "os.execv(sys.argv[1], sys.argv[1:])")
    if command[0] == sys.executable:
        return [sys.executable, "-c", code, *command]
    return [sys.executable, "-c", code, command[0], *command[1:]]


@pytest.fixture(scope="module")
def server() -> Iterator[FaultServer]:
    with FaultServer(FaultConfig(seed=2, latency_ms=20, retry_after_s=0.02,
                                 fault_rates={Fault.RATE_LIMIT: 0.1})) as s:
        yield s


def write_suite(tmp_path: Path, base_url: str, n_cases: int = 80, outage_after: int = 4) -> Path:
    return write_echo_suite(
        tmp_path, base_url, suite="signals", n_cases=n_cases, concurrency=2,
        retry=f"{{max_attempts: 8, base_delay: 0.01, max_delay: 0.1, outage_after: {outage_after}}}",
    )


def run_args(suite: Path, tmp_path: Path) -> list[str]:
    return ["run", str(suite), "--record", "live", "--reports", str(tmp_path / "reports"), "--run-id", RUN_ID]


def wait_for_lines(results: Path, n: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if results.exists() and results.read_bytes().count(b"\n") >= n:
            return
        time.sleep(0.005)
    raise AssertionError(f"the run ended or stalled before storing {n} trials")


def printed_resume_command(stderr: str) -> list[str]:
    lines = [line.strip() for line in stderr.splitlines() if line.strip().startswith("harness run ")]
    assert lines, f"no resume command in:\n{stderr}"
    words = shlex.split(lines[-1])
    assert words[words.index("--resume") + 1] == RUN_ID
    return [*harness_command(), *words[1:]]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_saves_the_manifest_prints_how_to_resume_and_exits_130(
    server: FaultServer, tmp_path: Path, sig: signal.Signals
) -> None:
    suite_path = write_suite(tmp_path, server.base_url)
    run_dir = tmp_path / "reports" / "signals" / RUN_ID
    results = run_dir / RESULTS_FILE
    proc = subprocess.Popen(with_default_sigint([*harness_command(), *run_args(suite_path, tmp_path)]),
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for_lines(results, 20, proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    stderr = err.decode()
    assert proc.returncode == EXIT_INTERRUPTED, stderr
    assert "Traceback" not in stderr
    manifest = Manifest.read(run_dir)
    assert manifest.status == "interrupted"
    records = [json.loads(line) for line in results.read_bytes().splitlines()]  # whole lines only
    assert results.read_bytes().endswith(b"\n")
    assert 20 <= len(records) < 80 == manifest.trials_planned
    assert manifest.trials_done == len(records)
    assert all(r["error"] is None for r in records)  # in-flight calls were cancelled, not stored as errors

    resume = subprocess.run(printed_resume_command(stderr), cwd=tmp_path, capture_output=True, timeout=120)
    assert resume.returncode == EXIT_OK, resume.stderr.decode()
    ids = [json.loads(line)["trial_id"] for line in results.read_bytes().splitlines()]
    assert len(ids) == len(set(ids))
    assert set(ids) == {t.id for t in iter_trials(load_suite(suite_path))}
    assert Manifest.read(run_dir).status == "complete"


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"  # bound, then closed without listening: connections are refused


def test_outage_ends_promptly_with_exit_4_and_resumes_when_the_endpoint_is_back(
    server: FaultServer, tmp_path: Path
) -> None:
    suite_path = write_suite(tmp_path, closed_port_url(), outage_after=4)
    started = time.monotonic()
    proc = subprocess.run([*harness_command(), *run_args(suite_path, tmp_path)], cwd=tmp_path,
                          capture_output=True, timeout=120)
    elapsed = time.monotonic() - started
    stderr = proc.stderr.decode()
    assert proc.returncode == EXIT_INCOMPLETE, stderr
    assert elapsed < 30, f"an outage took {elapsed:.1f}s to end: the retry budget is not bounded"
    assert "model fault-server unreachable" in stderr and "refused" in stderr.lower()
    assert "Traceback" not in stderr
    run_dir = tmp_path / "reports" / "signals" / RUN_ID
    manifest = Manifest.read(run_dir)
    assert manifest.status == "incomplete" and manifest.trials_done == 0

    # The endpoint comes back (the suite now points at a live server): the printed command finishes the run.
    suite_path.write_text(suite_path.read_text(encoding="utf-8").replace(
        next(line for line in suite_path.read_text(encoding="utf-8").splitlines() if "base_url" in line),
        f"    base_url: {server.base_url}"), encoding="utf-8")
    resume = subprocess.run(printed_resume_command(stderr), cwd=tmp_path, capture_output=True, timeout=120)
    assert resume.returncode == EXIT_OK, resume.stderr.decode()
    lines = (run_dir / RESULTS_FILE).read_bytes().splitlines()
    assert len(lines) == len({json.loads(line)["trial_id"] for line in lines}) == 80
    assert Manifest.read(run_dir).status == "complete"
