"""A resume never mixes two versions of a suite, never trusts a result without its recording, and a killed run's
manifest is never believed over its results. ``harness regrade`` is the explicit way to new graders."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cli_subprocess_fixtures import harness_command, write_echo_suite

from harness.errors import EXIT_INCOMPLETE, EXIT_REPLAY_MISS, EXIT_USAGE
from harness.store import RESULTS_FILE, Manifest, read_results
from harness.testing.fault_server import FaultConfig, FaultServer

N_CASES = 6


@pytest.fixture(scope="module")
def server() -> Iterator[FaultServer]:
    with FaultServer(FaultConfig(seed=9)) as s:
        yield s


def write_suite(tmp_path: Path, server: FaultServer) -> Path:
    return write_echo_suite(tmp_path, server.base_url, suite="rule", n_cases=N_CASES, concurrency=2,
                            retry="{max_attempts: 2, base_delay: 0.01}")


def harness(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    done = subprocess.run([*harness_command(), *args], cwd=tmp_path, capture_output=True, timeout=120)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def run(tmp_path: Path, suite: Path, *args: str) -> tuple[int, str]:
    code, _, err = harness(tmp_path, "run", str(suite), "--reports", str(tmp_path / "reports"), "--quiet", *args)
    return code, err


def records(tmp_path: Path, run_id: str) -> list:
    return list(read_results(tmp_path / "reports" / "rule" / run_id / RESULTS_FILE))


def test_resume_refuses_a_changed_grader_and_regrade_makes_a_new_run(tmp_path: Path, server: FaultServer) -> None:
    suite = write_suite(tmp_path, server)
    assert run(tmp_path, suite, "--record", "record-missing", "--run-id", "old")[0] == 0
    old_dir = tmp_path / "reports" / "rule" / "old"
    before = (old_dir / RESULTS_FILE).read_bytes()
    manifest_before = (old_dir / "manifest.json").read_bytes()
    suite.write_text(suite.read_text().replace("{type: contains, value: text}", "{type: contains, value: nope}"))

    code, err = run(tmp_path, suite, "--record", "record-missing", "--resume", "old")
    assert code == EXIT_USAGE
    assert "graders changed" in err
    assert "harness run" in err and "harness regrade" in err
    assert (old_dir / RESULTS_FILE).read_bytes() == before  # the old run is untouched
    assert (old_dir / "manifest.json").read_bytes() == manifest_before

    requests = server.stats()["requests_total"]
    code, _, err = harness(tmp_path, "regrade", str(old_dir), "--run-id", "new")
    assert code == 0, err
    assert server.stats()["requests_total"] == requests  # no API call
    new = records(tmp_path, "new")
    assert len(new) == N_CASES and all(r.passed is False for r in new)  # graded by the new grader
    assert {r.output for r in new} == {r.output for r in records(tmp_path, "old")}  # the stored outputs
    assert all(r.passed is True for r in records(tmp_path, "old"))
    manifest = Manifest.read(tmp_path / "reports" / "rule" / "new")
    assert manifest.status == "complete" and manifest.settings["regraded_from"] == str(old_dir)
    # The regraded run is of the current suite: resuming it is allowed (and has nothing to do).
    assert run(tmp_path, suite, "--record", "replay", "--resume", "new")[0] == 0


def test_an_edited_case_is_never_mixed_into_the_old_run(tmp_path: Path, server: FaultServer) -> None:
    suite = write_suite(tmp_path, server)
    assert run(tmp_path, suite, "--record", "record-missing", "--run-id", "old")[0] == 0
    cases = tmp_path / "cases.jsonl"
    lines = cases.read_text().splitlines()
    lines[2] = json.dumps({"id": "c002", "text": "text edited"})
    cases.write_text("\n".join(lines) + "\n")

    code, err = run(tmp_path, suite, "--record", "record-missing", "--resume", "old")
    assert code == EXIT_USAGE
    assert "cases (their text, variables or graders) changed" in err and "cases.jsonl" in err
    assert len(records(tmp_path, "old")) == N_CASES

    code, _, err = harness(tmp_path, "regrade", str(tmp_path / "reports" / "rule" / "old"), "--run-id", "new")
    assert code == EXIT_INCOMPLETE  # one trial of the current suite has no stored output
    assert "1 trial(s) of the current suite have no stored output" in err
    assert len(records(tmp_path, "new")) == N_CASES - 1
    # Its resume runs exactly that trial, with the current suite.
    requests = server.stats()["requests_total"]
    assert run(tmp_path, suite, "--record", "record-missing", "--resume", "new")[0] == 0
    assert server.stats()["requests_total"] == requests + 1
    new = records(tmp_path, "new")
    assert len(new) == N_CASES and any(r.output == "text edited" for r in new)


def test_a_resume_records_again_what_the_cassette_lost(tmp_path: Path, server: FaultServer) -> None:
    suite = write_suite(tmp_path, server)
    assert run(tmp_path, suite, "--record", "record-missing", "--run-id", "r")[0] == 0
    cassette = tmp_path / "cassettes" / "rule" / "fault-server.json"
    data = json.loads(cassette.read_text())
    del data["interactions"][:2]  # as if a journal had been lost, or an older version had dropped them
    cassette.write_text(json.dumps(data, indent=4))

    code, out, _ = harness(tmp_path, "cassettes", str(suite))
    assert code == EXIT_REPLAY_MISS and out.count("missing: case=") == 2  # the gaps are shown

    requests = server.stats()["requests_total"]
    code, err = run(tmp_path, suite, "--record", "record-missing", "--resume", "r")
    assert code == 0, err
    assert "2 finished trial(s) had no recording" in err
    assert server.stats()["requests_total"] == requests + 2
    assert len(records(tmp_path, "r")) == N_CASES
    assert run(tmp_path, suite, "--record", "replay", "--run-id", "again")[0] == 0


def test_a_killed_runs_manifest_is_read_from_its_results(tmp_path: Path, server: FaultServer) -> None:
    server.config = FaultConfig(seed=9, latency_ms=60)
    try:
        suite = write_echo_suite(tmp_path, server.base_url, suite="rule", n_cases=60, concurrency=2,
                                 retry="{max_attempts: 2}")
        results = tmp_path / "reports" / "rule" / "k" / RESULTS_FILE
        proc = subprocess.Popen([*harness_command(), "run", str(suite), "--record", "live", "--run-id", "k",
                                 "--reports", str(tmp_path / "reports"), "--quiet"], cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if results.exists() and results.read_bytes().count(b"\n") >= 5:
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        server.config = FaultConfig(seed=9)
    run_dir = results.parent
    stored = len(list(read_results(results)))
    assert 0 < stored < 60
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "running"  # what the kill left

    manifest = Manifest.read(run_dir)
    assert (manifest.status, manifest.trials_done) == ("incomplete", stored)
    code, out, _ = harness(tmp_path, "report", str(run_dir), "--format", "json")
    assert code == 0
    report = json.loads(out)["run"]
    assert (report["status"], report["trials_done"]) == ("incomplete", stored)
    code, out, err = harness(tmp_path, "gate", str(run_dir))
    assert f"is incomplete ({stored}/60 trials)" in out + err
