"""``harness run`` killed with SIGKILL at random points, then resumed: exactly the planned trials, once each.

The CLI runs in a subprocess (it is the process killed); the fault server runs in this process on its own
thread and outlives every kill. Kill points come from a seeded RNG: a number of stored trials to wait for,
or a moment during start-up, before any trial is stored.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cli_subprocess_fixtures import harness_command, write_echo_suite

from harness.pipeline import RunOptions, RunOutcome, run_suite
from harness.plan import iter_trials
from harness.store import RESULTS_FILE, Manifest, TrialResult, finished_ids
from harness.suite import load_suite
from harness.testing.fault_server import Fault, FaultConfig, FaultServer

RUN_ID = "killed"
N_CASES = 120


# Slow enough that a kill lands mid-run, with faults so that kills also land during retries.
KILL_CONFIG = FaultConfig(seed=1, latency_ms=15, jitter_ms=10, retry_after_s=0.02,
                          fault_rates={Fault.RATE_LIMIT: 0.15, Fault.SERVER_ERROR: 0.05, Fault.DROP: 0.02})
FAST_CONFIG = FaultConfig(seed=1, latency_ms=1)


@pytest.fixture(scope="module")
def server() -> Iterator[FaultServer]:
    with FaultServer(FAST_CONFIG) as s:
        yield s


def write_suite(tmp_path: Path, base_url: str) -> Path:
    # Ten attempts at these fault rates: a trial that still fails is a one-in-a-billion event.
    return write_echo_suite(tmp_path, base_url, suite="kills", n_cases=N_CASES, concurrency=4,
                            retry="{max_attempts: 10, base_delay: 0.005, max_delay: 0.05, outage_after: 20}",
                            case_text="text {i} ✓", temperatures="[0.0, 1.0]")


def start(suite: Path, tmp_path: Path, resume: bool) -> subprocess.Popen[bytes]:
    args = ["run", str(suite), "--record", "live", "--reports", str(tmp_path / "reports"), "--format", "table"]
    args += ["--resume", RUN_ID] if resume else ["--run-id", RUN_ID]
    return subprocess.Popen([*harness_command(), *args], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def stored(results: Path) -> int:
    try:
        return results.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def kill_when(proc: subprocess.Popen[bytes], results: Path, target: int | None, delay: float) -> bool:
    """SIGKILL ``proc`` once ``results`` holds ``target`` lines (or after ``delay`` s); False if it ended first."""
    deadline = time.monotonic() + 60
    started = time.monotonic()
    while proc.poll() is None and time.monotonic() < deadline:
        if (target is None and time.monotonic() - started >= delay) or \
                (target is not None and stored(results) >= target):
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
            return True
        time.sleep(0.002)
    proc.communicate()
    return False


def test_sigkill_at_random_points_then_resume_gives_exactly_the_plan(server: FaultServer, tmp_path: Path) -> None:
    server.config = KILL_CONFIG
    suite_path = write_suite(tmp_path, server.base_url)
    planned = {t.id for t in iter_trials(load_suite(suite_path))}
    assert len(planned) == 2 * N_CASES
    run_dir = tmp_path / "reports" / "kills" / RUN_ID
    results = run_dir / RESULTS_FILE
    rng = random.Random(20240601)

    kills = 0
    resume = False
    # One kill during start-up, before any trial is stored; then kills after a random number of trials.
    plan: list[tuple[int | None, float]] = [(None, rng.uniform(0.05, 0.4))]
    plan += [(rng.randint(8, 30), 0.0) for _ in range(5)]
    for step, (extra, delay) in enumerate(plan):
        before = stored(results)
        target = None if extra is None else before + extra
        proc = start(suite_path, tmp_path, resume)
        if kill_when(proc, results, target, delay):
            kills += 1
        resume = resume or run_dir.exists()  # from the first moment the folder exists, a rerun is a resume
        assert stored(results) < len(planned), f"kill {step} came too late: the run had finished"
    assert kills >= 5

    missing = len(planned - finished_ids(results))
    assert missing > 0
    final = start(suite_path, tmp_path, resume=True)
    out, err = final.communicate(timeout=120)
    assert final.returncode == 0, err.decode()
    # The resume ran exactly the missing trials (its progress counts them), and no others.
    assert f"[harness] {missing}/{missing} trials" in err.decode()

    raw = results.read_bytes()
    assert raw.endswith(b"\n")
    records = [TrialResult.from_dict(json.loads(line)) for line in raw.splitlines()]  # all valid JSON
    ids = [r.trial_id for r in records]
    assert len(ids) == len(set(ids)), "a trial was stored twice"
    assert set(ids) == planned
    assert all(r.error is None and r.passed is True for r in records)
    manifest = Manifest.read(run_dir)
    assert (manifest.status, manifest.trials_done, manifest.trials_planned) == ("complete", 240, 240)
    assert not list(run_dir.glob(".*.tmp"))


def run_in_process(suite_path: Path, tmp_path: Path, resume: bool) -> RunOutcome:
    options = RunOptions(reports_root=tmp_path / "reports", run_id=RUN_ID, resume=resume, record="live",
                         progress=False)
    return run_suite(load_suite(suite_path), options)


def test_a_torn_last_line_is_detected_and_redone(server: FaultServer, tmp_path: Path) -> None:
    server.config = FAST_CONFIG
    suite_path = write_suite(tmp_path, server.base_url)
    planned = {t.id for t in iter_trials(load_suite(suite_path))}
    results = run_in_process(suite_path, tmp_path, resume=False).results_path
    # As if killed while writing the 31st line: 30 whole lines, then part of one, cut inside a multi-byte
    # character (the outputs end in "✓").
    lines = results.read_bytes().splitlines(keepends=True)
    victim = json.loads(lines[30])
    cut = lines[30].index("✓".encode()) + 1
    results.write_bytes(b"".join(lines[:30]) + lines[30][:cut])

    requests = server.stats()["requests_total"]
    outcome = run_in_process(suite_path, tmp_path, resume=True)
    assert outcome.skipped_done == 30
    records = [json.loads(line) for line in results.read_bytes().splitlines()]
    ids = [r["trial_id"] for r in records]
    assert len(ids) == len(set(ids)) and set(ids) == planned
    assert victim["trial_id"] in ids[30:]  # redone by the resume, not kept from the torn bytes
    assert server.stats()["requests_total"] - requests >= len(planned) - 30


def test_resume_of_a_finished_run_runs_nothing(server: FaultServer, tmp_path: Path) -> None:
    server.config = FAST_CONFIG
    suite_path = write_suite(tmp_path, server.base_url)
    results = run_in_process(suite_path, tmp_path, resume=False).results_path
    before = results.read_bytes()
    requests = server.stats()["requests_total"]
    outcome = run_in_process(suite_path, tmp_path, resume=True)
    assert results.read_bytes() == before
    assert server.stats()["requests_total"] == requests
    assert Manifest.read(outcome.directory).status == "complete"
