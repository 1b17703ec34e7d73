"""Faults that used to escape: slow-loris answers, huge answers, Retry-After of minutes, bad recordings replayed,
rejected keys, exhausted quotas, errors inside a 200, and runs where every trial failed.

Each runs the real CLI in a subprocess against the fault server on its own thread in this process.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cli_subprocess_fixtures import harness_command, write_echo_suite

from harness.errors import EXIT_INCOMPLETE, EXIT_REPLAY_MISS
from harness.store import RESULTS_FILE, read_results
from harness.testing.fault_server import Fault, FaultConfig, FaultServer


@pytest.fixture()
def server() -> Iterator[FaultServer]:
    with FaultServer(FaultConfig(seed=5)) as s:
        yield s


def suite(tmp_path: Path, server: FaultServer, n_cases: int = 3, model_extra: str = "",
          retry: str = "{max_attempts: 2, base_delay: 0.01, max_delay: 0.02}") -> Path:
    path = write_echo_suite(tmp_path, server.base_url, suite="escapes", n_cases=n_cases, concurrency=2, retry=retry)
    if model_extra:
        text = path.read_text()
        path.write_text(text.replace("    timeout: 5\n", f"    timeout: 5\n{model_extra}"))
    return path


def run(tmp_path: Path, suite_path: Path, *args: str, env: dict[str, str] | None = None,
        run_id: str = "r") -> tuple[int, str]:
    command = [*harness_command(), "run", str(suite_path), "--reports", str(tmp_path / "reports"), "--quiet",
               "--run-id", run_id, *args]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, timeout=120,
                          env={**os.environ, **(env or {})})
    return done.returncode, done.stderr.decode()


def results(tmp_path: Path, run_id: str = "r") -> list:
    return list(read_results(tmp_path / "reports" / "escapes" / run_id / RESULTS_FILE))


def test_timeout_is_a_total_deadline_against_a_slow_loris(tmp_path: Path, server: FaultServer) -> None:
    # Each byte comes quickly (0.3 s < the read timeout), the whole answer would take well over a minute.
    server.config = FaultConfig(always_fail={"*": Fault.SLOW_LORIS}, trickle_s=0.3)
    path = suite(tmp_path, server, n_cases=1, model_extra="", retry="{max_attempts: 1}")
    path.write_text(path.read_text().replace("    timeout: 5\n", "    timeout: 1\n"))
    code, err = run(tmp_path, path, "--record", "live")
    [result] = results(tmp_path)
    assert result.error is not None and result.error.kind == "timeout", err
    assert "within the 1 s timeout" in result.error.message
    assert code == EXIT_INCOMPLETE


def test_a_retry_after_of_ten_minutes_is_cut_to_the_budget(tmp_path: Path, server: FaultServer) -> None:
    server.config = FaultConfig(fail_first_n=1, fail_first_with=Fault.RATE_LIMIT, retry_after_s=600)
    path = suite(tmp_path, server, n_cases=2,
                 retry="{max_attempts: 6, base_delay: 0.01, max_retry_after: 0.05, trial_budget: 5}")
    code, err = run(tmp_path, path, "--record", "live")
    assert code == 0, err
    assert [r.attempts for r in results(tmp_path)] == [2, 2]  # waited the cut 0.05 s once, then got through
    # A trial budget smaller than one wait: the trial stops at once and says why (a resume redoes it).
    path = suite(tmp_path, server, n_cases=2, retry="{max_attempts: 6, max_retry_after: 600, trial_budget: 1}")
    server.reset()
    code, err = run(tmp_path, path, "--record", "live", run_id="budget")
    assert code == EXIT_INCOMPLETE
    assert all("retry.trial_budget = 1 s" in r.error.message for r in results(tmp_path, "budget"))


def test_an_answer_over_the_size_cap_is_a_trial_error_and_never_stored(tmp_path: Path, server: FaultServer) -> None:
    server.config = FaultConfig(always_fail={"*": Fault.HUGE}, huge_bytes=3_000_000)
    path = suite(tmp_path, server, n_cases=2, model_extra="    max_response_bytes: 1000000\n")
    code, err = run(tmp_path, path, "--record", "record-missing")
    stored = results(tmp_path)
    assert [r.error.kind for r in stored] == ["too_large", "too_large"], err
    assert all(r.output is None and r.attempts == 1 for r in stored)  # not retried: it would only repeat
    assert "max_response_bytes = 1,000,000 bytes" in stored[0].error.message
    assert (tmp_path / "reports" / "escapes" / "r" / RESULTS_FILE).stat().st_size < 20_000
    cassette = tmp_path / "cassettes" / "escapes" / "fault-server.json"
    assert not cassette.exists() or "xxxx" not in cassette.read_text()
    assert code == EXIT_INCOMPLETE and "every trial of this run failed" in err


@pytest.mark.parametrize("damage", ["not json", "500"])
def test_a_replay_of_a_bad_recording_fails_at_once_naming_the_cassette(
    tmp_path: Path, server: FaultServer, damage: str
) -> None:
    path = suite(tmp_path, server, n_cases=2)
    assert run(tmp_path, path, "--record", "record-missing")[0] == 0
    cassette = tmp_path / "cassettes" / "escapes" / "fault-server.json"
    data = json.loads(cassette.read_text())
    response = data["interactions"][0]["response"]
    if damage == "500":
        response["status"] = {"code": 500, "message": "Internal Server Error"}
    else:
        response["body"]["string"] = "<html>gateway error</html>"
    cassette.write_text(json.dumps(data, indent=4))
    requests = server.stats()["requests_total"]
    code, err = run(tmp_path, path, "--record", "replay", run_id="again")
    assert code == EXIT_REPLAY_MISS, err
    assert str(cassette) in err and ("not JSON" in err or "HTTP 500" in err)
    assert "case=c000 " in err or "case=c001 " in err  # which trial
    assert server.stats()["requests_total"] == requests
    assert len(results(tmp_path, "again")) == 1  # the good one; the bad one is left for a re-recording


def test_a_rejected_key_says_so_and_names_its_variable(tmp_path: Path, server: FaultServer) -> None:
    server.config = FaultConfig(always_fail={"*": Fault.UNAUTHORIZED})
    path = suite(tmp_path, server, n_cases=10)
    path.write_text(path.read_text().replace("api_key_env: null", "api_key_env: ESCAPES_KEY"))
    code, err = run(tmp_path, path, "--record", "live", env={"ESCAPES_KEY": "wrong"})
    assert code == EXIT_INCOMPLETE
    assert "the key in ESCAPES_KEY was rejected" in err
    assert "unreachable" not in err and "wrong" not in err


def test_an_exhausted_quota_stops_at_once_without_retries(tmp_path: Path, server: FaultServer) -> None:
    server.config = FaultConfig(always_fail={"*": Fault.QUOTA})
    path = suite(tmp_path, server, n_cases=10, retry="{max_attempts: 6, base_delay: 0.01}")
    path.write_text(path.read_text().replace("api_key_env: null", "api_key_env: ESCAPES_KEY"))
    code, err = run(tmp_path, path, "--record", "live", env={"ESCAPES_KEY": "k"})
    assert code == EXIT_INCOMPLETE
    assert "quota exhausted for the key in ESCAPES_KEY" in err
    assert server.stats()["requests_total"] <= 2  # the in-flight calls of two workers, no retries
    assert results(tmp_path) == []  # nothing stored: a resume runs them once the quota is back


def test_an_error_inside_a_200_keeps_the_providers_message(tmp_path: Path, server: FaultServer) -> None:
    server.config = FaultConfig(always_fail={"*": Fault.ERROR_200})
    code, _ = run(tmp_path, suite(tmp_path, server, n_cases=1), "--record", "live")
    [result] = results(tmp_path)
    assert "The upstream model is overloaded (injected)." in result.error.message
    assert code == EXIT_INCOMPLETE


def test_a_run_where_every_trial_got_a_400_is_not_green(tmp_path: Path, server: FaultServer) -> None:
    server.config = FaultConfig(always_fail={"*": Fault.BAD_REQUEST})
    code, err = run(tmp_path, suite(tmp_path, server, n_cases=4), "--record", "live")
    assert code == EXIT_INCOMPLETE
    assert "every trial of this run failed" in err and "Invalid request (injected)" in err
    assert {r.error.kind for r in results(tmp_path)} == {"client"}
