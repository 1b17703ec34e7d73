"""Recordings survive what results survive: SIGKILL mid-recording, then resume, then an offline replay that
reproduces the recorded results exactly; and two shard processes recording into one cassette at once.

The CLI runs in subprocesses (they are what gets killed); the fault server runs in this process on its own
thread and outlives every kill. It answers with latency, so kills land while recordings are in flight, and
varies its text per sample, so a replayed answer that came from the wrong recording would show.
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

from harness.plan import iter_trials
from harness.store import RESULTS_FILE, read_results
from harness.suite import load_suite
from harness.testing.fault_server import FaultConfig, FaultServer

N_CASES = 24


@pytest.fixture(scope="module")
def server() -> Iterator[FaultServer]:
    with FaultServer(FaultConfig(seed=3, latency_ms=25, jitter_ms=20, vary_by_sample=True)) as s:
        yield s


def write_suite(tmp_path: Path, base_url: str) -> Path:
    return write_echo_suite(tmp_path, base_url, suite="durable", n_cases=N_CASES, concurrency=3,
                            retry="{max_attempts: 3, base_delay: 0.01, max_delay: 0.05}",
                            temperatures="[0.0, 1.0]")


def harness(tmp_path: Path, suite: Path, *args: str) -> subprocess.Popen[bytes]:
    command = [*harness_command(), "run", str(suite), "--reports", str(tmp_path / "reports"), "--quiet", *args]
    return subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc: subprocess.Popen[bytes]) -> tuple[int, str]:
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err.decode()


def lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def outputs(run: Path) -> dict[str, str | None]:
    return {r.trial_id: r.output for r in read_results(run / RESULTS_FILE)}


@pytest.mark.parametrize("mode", ["record", "record-missing"])
def test_sigkill_while_recording_then_resume_then_replay_offline_reproduces_it(
    server: FaultServer, tmp_path: Path, mode: str
) -> None:
    suite = write_suite(tmp_path, server.base_url)
    planned = {t.id for t in iter_trials(load_suite(suite))}
    run = tmp_path / "reports" / "durable" / "rec"
    results = run / RESULTS_FILE
    rng = random.Random(f"kills-{mode}")
    kills = 0
    for step in range(6):
        # The first kill lands during start-up; the others right after a random number of new results,
        # the moment a result has just been stored and the next recordings are in flight.
        target = None if step == 0 else lines(results) + rng.randint(1, 6)
        args = ["--record", mode, *(["--resume", "rec"] if run.exists() else ["--run-id", "rec"])]
        proc = harness(tmp_path, suite, *args)
        started = time.monotonic()
        delay = rng.uniform(0.2, 0.8)
        while proc.poll() is None and time.monotonic() - started < 60:
            if (target is None and time.monotonic() - started >= delay) or \
                    (target is not None and lines(results) >= target):
                proc.send_signal(signal.SIGKILL)
                kills += 1
                break
            time.sleep(0.001)
        proc.communicate()
    assert kills >= 5
    assert lines(results) < len(planned), "the kills came too late to test anything"

    code, err = finish(harness(tmp_path, suite, "--record", mode, "--resume", "rec"))
    assert code == 0, err
    recorded = outputs(run)
    assert set(recorded) == planned

    requests = server.stats()["requests_total"]
    code, err = finish(harness(tmp_path, suite, "--record", "replay", "--run-id", "again"))
    assert code == 0, err  # no replay miss: every stored result has its recording
    assert server.stats()["requests_total"] == requests  # offline
    assert outputs(tmp_path / "reports" / "durable" / "again") == recorded
    cassettes = tmp_path / "cassettes" / "durable"
    assert not list(cassettes.glob("*.journal"))  # folded into the cassette by the last run


def test_two_shards_recording_into_one_cassette_at_once_keep_every_recording(
    server: FaultServer, tmp_path: Path
) -> None:
    suite = write_suite(tmp_path, server.base_url)
    planned = {t.id for t in iter_trials(load_suite(suite))}
    shards = [harness(tmp_path, suite, "--record", "record-missing", "--shard", f"{i}/2", "--run-id", f"s{i}")
              for i in (1, 2)]
    for proc in shards:
        code, err = finish(proc)
        assert code == 0, err
    cassette = tmp_path / "cassettes" / "durable" / "fault-server.json"
    assert len(json.loads(cassette.read_text())["interactions"]) == len(planned)

    requests = server.stats()["requests_total"]
    code, err = finish(harness(tmp_path, suite, "--record", "replay", "--run-id", "whole"))
    assert code == 0, err
    assert "replay miss" not in err
    assert server.stats()["requests_total"] == requests
    whole = outputs(tmp_path / "reports" / "durable" / "whole")
    assert set(whole) == planned
    sharded = {**outputs(tmp_path / "reports" / "durable" / "s1"), **outputs(tmp_path / "reports" / "durable" / "s2")}
    assert whole == sharded
