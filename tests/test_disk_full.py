"""A full disk while writing results or recordings: a clear message, exit 4, nothing half-written, a manifest that
does not say "running", and a resume that completes once there is space again.

Two ways: a real tiny tmpfs (the CLI in a subprocess; needs permission to mount, as root in CI containers), and
ENOSPC injected in-process at the write of one chosen file (always runs).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_cli_subprocess_fixtures import harness_command, write_echo_suite

from harness.errors import EXIT_INCOMPLETE, StorageError
from harness.execute.cassette import Cassette
from harness.pipeline import RunOptions, run_suite
from harness.store import RESULTS_FILE, Manifest, read_results
from harness.suite import load_suite
from harness.testing.fault_server import FaultConfig, FaultServer

N_CASES = 40


@pytest.fixture(scope="module")
def server() -> Iterator[FaultServer]:
    with FaultServer(FaultConfig(seed=11)) as s:
        yield s


def write_suite(tmp_path: Path, server: FaultServer, n_cases: int = N_CASES, text: str = "text {i}") -> Path:
    return write_echo_suite(tmp_path, server.base_url, suite="full", n_cases=n_cases, concurrency=2,
                            retry="{max_attempts: 2, base_delay: 0.01}", case_text=text)


def fail_writes_to(name: str, after: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``os.write`` to files called ``name`` fail with ENOSPC after ``after`` successful ones."""
    real_write = os.write
    count = {"n": 0}

    def write(fd: int, data: bytes) -> int:  # type: ignore[override]
        target = ""
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
        if target.endswith(name):
            count["n"] += 1
            if count["n"] > after:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)


def options(tmp_path: Path, resume: bool, record: str = "record-missing") -> RunOptions:
    return RunOptions(reports_root=tmp_path / "reports", run_id="r", resume=resume, record=record, progress=False)


@pytest.mark.parametrize("target", [RESULTS_FILE, "fault-server.json.journal"])
def test_enospc_on_results_or_journal_stops_cleanly_and_resume_completes(
    tmp_path: Path, server: FaultServer, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    suite = load_suite(write_suite(tmp_path, server))
    fail_writes_to(target, after=7, monkeypatch=monkeypatch)
    with pytest.raises(StorageError, match="No space left on device") as raised:
        run_suite(suite, options(tmp_path, resume=False))
    assert raised.value.exit_code == EXIT_INCOMPLETE
    monkeypatch.undo()
    run = tmp_path / "reports" / "full" / "r"
    raw = (run / RESULTS_FILE).read_bytes()
    assert not raw or raw.endswith(b"\n")  # no half line
    stored = [json.loads(line) for line in raw.splitlines()]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "incomplete" and manifest["trials_done"] == len(stored)
    journal = tmp_path / "cassettes" / "full" / "fault-server.json.journal"
    if journal.exists():
        assert all(json.loads(line)["key"] for line in journal.read_bytes().splitlines())
    if target == RESULTS_FILE:
        assert len(stored) <= 7  # one write per result: the eighth failed
    else:
        # Recordings are written in groups, several to a write: what counts is that no result was stored
        # without its recording (in the journal, or the cassette it was folded into), and that the run
        # stopped at the failed write.
        recorded = Cassette(tmp_path / "cassettes" / "full" / "fault-server.json")
        assert len(stored) <= len(recorded) < N_CASES
    assert not list(run.glob(".reserve"))

    outcome = run_suite(suite, options(tmp_path, resume=True))
    assert Manifest.read(outcome.directory).status == "complete"
    assert len(list(read_results(run / RESULTS_FILE))) == N_CASES
    replay = run_suite(suite, RunOptions(reports_root=tmp_path / "reports", run_id="again", record="replay",
                                         progress=False))
    assert not replay.execute.replay_misses  # every stored result kept its recording


@contextlib.contextmanager
def tiny_disk(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


def test_a_real_full_disk_exits_4_and_a_resume_completes_once_space_is_back(
    tmp_path: Path, server: FaultServer
) -> None:
    suite = write_suite(tmp_path, server, n_cases=150, text="text {i} " + "padding " * 60)
    with tiny_disk(tmp_path / "disk", "2m") as disk:
        ballast = disk / "ballast"
        ballast.write_bytes(bytes(1900 * 1024))  # about 100 KiB left: the run fills it
        run: Callable[..., subprocess.CompletedProcess[bytes]] = lambda *extra: subprocess.run(  # noqa: E731
            [*harness_command(), "run", str(suite), "--record", "record-missing", "--quiet",
             "--reports", str(disk / "reports"), "--cassettes", str(disk / "cassettes"), *extra],
            cwd=tmp_path, capture_output=True, timeout=120)
        first = run("--run-id", "r")
        err = first.stderr.decode()
        assert first.returncode == EXIT_INCOMPLETE, err
        assert "No space left on device" in err and "Traceback" not in err
        folder = disk / "reports" / "full" / "r"
        assert json.loads((folder / "manifest.json").read_text())["status"] != "running"
        raw = (folder / RESULTS_FILE).read_bytes()
        assert raw.endswith(b"\n") and 0 < raw.count(b"\n") < 150

        ballast.unlink()
        second = run("--resume", "r")
        assert second.returncode == 0, second.stderr.decode()
        assert len(list(read_results(folder / RESULTS_FILE))) == 150
        third = subprocess.run(
            [*harness_command(), "run", str(suite), "--record", "replay", "--quiet", "--run-id", "again",
             "--reports", str(disk / "reports"), "--cassettes", str(disk / "cassettes")],
            cwd=tmp_path, capture_output=True, timeout=120)
        assert third.returncode == 0, third.stderr.decode()
