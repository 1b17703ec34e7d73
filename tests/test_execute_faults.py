"""The whole run (plan → execute → grade → store) against the fault server, in process.

Every trial must end exactly once, as a success after retries or as an error with its cause; the results
file must hold exactly the planned trial ids; client errors are reported with the provider's message and
never retried; a resume redoes what is worth redoing and nothing else.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.errors import HarnessError, SuiteError
from harness.pipeline import RunOptions, RunOutcome, run_suite
from harness.plan import iter_trials
from harness.stats import summarize_variants
from harness.store import RESULTS_FILE, Manifest, RunInUseError, RunLock, read_results
from harness.suite import load_suite
from harness.suite.model import Suite
from harness.testing.fault_server import Fault, FaultConfig, FaultServer


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer(FaultConfig()) as s:
        yield s


def write_suite(tmp_path: Path, base_url: str, n_cases: int, *, temperatures: str = "[0.0]", repeats: int = 1,
                retry: str = "{max_attempts: 4, base_delay: 0.001, max_delay: 0.02, outage_after: 50}",
                timeout: float = 5.0, concurrency: int = 8, failing_every: int = 0) -> Suite:
    """A suite whose answer is the case's text echoed back; every ``failing_every``-th case expects another."""
    with (tmp_path / "cases.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(n_cases):
            expected = "something else" if failing_every and i % failing_every == 0 else f"text {i}"
            fh.write(json.dumps({"id": f"c{i:04d}", "text": f"text {i}", "expected": expected}) + "\n")
    path = tmp_path / "suite.yaml"
    path.write_text(
        "suite: faults\n"
        "models:\n"
        "  - name: fault-server\n"
        f"    base_url: {base_url}\n"
        "    api_key_env: null\n"
        f"    max_concurrency: {concurrency}\n"
        f"    timeout: {timeout}\n"
        f"temperatures: {temperatures}\n"
        f"repeats: {repeats}\n"
        f"retry: {retry}\n"
        "prompts:\n  v1:\n    - {role: user, content: '{{ text }}'}\n"
        "cases:\n  - file: cases.jsonl\n"
        "graders:\n  - {type: exact, value: '{{ expected }}'}\n",
        encoding="utf-8",
    )
    return load_suite(path)


def run(suite: Suite, tmp_path: Path, run_id: str = "run", resume: bool = False) -> RunOutcome:
    options = RunOptions(reports_root=tmp_path / "reports", cassettes_root=tmp_path / "cassettes",
                         run_id=run_id, resume=resume, record="live", progress=False)
    return run_suite(suite, options)


def stored_lines(outcome: RunOutcome) -> list[dict]:
    text = outcome.results_path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]  # every line valid JSON, or this raises


def test_thousand_trials_under_mixed_faults_each_end_exactly_once(server: FaultServer, tmp_path: Path) -> None:
    server.config = FaultConfig(
        seed=3, latency_ms=1, retry_after_s=0.01, slow_s=2.0,
        fault_rates={Fault.RATE_LIMIT: 0.20, Fault.SERVER_ERROR: 0.10, Fault.DROP: 0.05, Fault.MALFORMED: 0.02,
                     Fault.SLOW: 0.02},
    )
    suite = write_suite(tmp_path, server.base_url, 250, temperatures="[0.0, 0.7]", repeats=2, timeout=1.0,
                        concurrency=16, failing_every=5)
    # The deadline is whole-attempt (connect included) and well under the slow fault's 2 s: a tighter one lets a
    # loaded machine time out attempts before they reach the server, which would break the exact count below.
    outcome = run(suite, tmp_path)

    lines = stored_lines(outcome)
    planned = {t.id for t in iter_trials(suite)}
    assert len(planned) == 1000
    assert len(lines) == 1000
    assert {r["trial_id"] for r in lines} == planned
    # Nothing sent twice or lost: the server saw exactly the attempts the records account for.
    assert server.stats()["requests_total"] == sum(r["attempts"] for r in lines)

    causes = Counter()
    for r in lines:
        assert 1 <= r["attempts"] <= 4
        if r["error"] is None:
            assert r["output"] is not None and r["passed"] is not None
        else:
            # A retryable fault only ends a trial once its retries are used up, and the record says why.
            assert r["attempts"] == 4 and r["output"] is None and r["passed"] is None
            assert r["error"]["message"]
            causes[r["error"]["kind"]] += 1
    assert set(causes) <= {"rate_limit", "server", "connection", "bad_response", "timeout"}
    assert sum(causes.values()) > 0  # 4 faults in a row happen at these rates: the test exercises errors
    assert sum(1 for r in lines if r["error"] is None and r["attempts"] > 1) > 100

    # The summary keeps errors apart from failures: error rate = errors / trials, errors count as 0 in the
    # pass rate, and an error is never an "undecided" trial.
    results = list(read_results(outcome.results_path))
    for summary in summarize_variants(results, n_resamples=200):
        trials = [t for t in results if t.variant == summary.variant]
        errors = sum(t.error is not None for t in trials)
        passes = sum(t.error is None and t.passed is True for t in trials)
        failures = sum(t.error is None and t.passed is False for t in trials)
        assert summary.n_trials == len(trials) == errors + passes + failures == 500
        assert summary.error_rate.estimate == pytest.approx(errors / 500)
        assert summary.pass_rate.estimate == pytest.approx(passes / 500)
        assert summary.undecided_trials == 0
        assert failures > 0

    manifest = Manifest.read(outcome.directory)
    assert manifest.trials_planned == 1000
    assert manifest.trials_done == 1000 - sum(causes.values())
    assert manifest.status == "incomplete"  # retryable errors remain: a resume would redo them
    assert sum(outcome.unfinished_errors.values()) == sum(causes.values())

    # The resume redoes exactly the errored trials, and the file still holds each trial once.
    server.config = FaultConfig(seed=3, latency_ms=1)
    before = server.stats()["requests_total"]
    again = run(suite, tmp_path, resume=True)
    assert server.stats()["requests_total"] - before == sum(causes.values())
    lines = stored_lines(again)
    assert len(lines) == 1000 and {r["trial_id"] for r in lines} == planned
    assert all(r["error"] is None for r in lines)
    assert Manifest.read(again.directory).status == "complete"


@pytest.mark.parametrize(("fault", "status", "kind", "message"), [
    (Fault.BAD_REQUEST, 400, "client", "Invalid request (injected)."),
    (Fault.UNAUTHORIZED, 401, "auth", "Incorrect API key (injected)."),
    (Fault.NOT_FOUND, 404, "not_found", "No such model (injected)."),
])
def test_client_errors_are_recorded_with_the_providers_message_and_not_retried(
    server: FaultServer, tmp_path: Path, fault: Fault, status: int, kind: str, message: str
) -> None:
    server.config = FaultConfig(seed=5, fault_rates={fault: 0.3})
    suite = write_suite(tmp_path, server.base_url, 60)
    outcome = run(suite, tmp_path)
    lines = stored_lines(outcome)
    failed = [r for r in lines if r["error"] is not None]
    assert 5 <= len(failed) <= 35
    for r in failed:
        assert r["attempts"] == 1
        # The provider's message is kept (a rejected key is also named as such: "the key ... was rejected (...)").
        assert (r["error"]["kind"], r["error"]["status"]) == (kind, status)
        assert f"HTTP {status}: {message}" in r["error"]["message"]
    assert server.stats()["requests_total"] == 60  # one request per trial: nothing retried
    assert outcome.execute.down == {}


def test_resume_redoes_retryable_errors_but_not_client_errors(server: FaultServer, tmp_path: Path) -> None:
    server.config = FaultConfig(seed=9, fault_rates={Fault.SERVER_ERROR: 0.3, Fault.BAD_REQUEST: 0.2})
    suite = write_suite(tmp_path, server.base_url, 80,
                        retry="{max_attempts: 1, base_delay: 0.001, max_delay: 0.01, outage_after: 50}")
    first = stored_lines(run(suite, tmp_path))
    server_errors = {r["trial_id"] for r in first if r["error"] and r["error"]["kind"] == "server"}
    client_errors = {r["trial_id"]: r for r in first if r["error"] and r["error"]["kind"] == "client"}
    assert server_errors and client_errors

    server.config = FaultConfig(seed=9)
    server.reset()
    again = stored_lines(run(suite, tmp_path, resume=True))
    assert server.stats()["requests_total"] == len(server_errors)
    by_id = {r["trial_id"]: r for r in again}
    assert len(by_id) == len(again) == 80
    assert all(by_id[t]["error"] is None for t in server_errors)
    assert all(by_id[t] == r for t, r in client_errors.items())  # kept untouched


def test_a_crash_while_grading_one_trial_is_that_trials_error(
    server: FaultServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import harness.pipeline as pipeline

    real = pipeline.grade_output

    async def flaky(specs, output, ctx):  # type: ignore[no-untyped-def]
        if ctx.case_id == "c0003":
            raise ZeroDivisionError("bug in grading")
        return await real(specs, output, ctx)

    monkeypatch.setattr(pipeline, "grade_output", flaky)
    suite = write_suite(tmp_path, server.base_url, 10)
    outcome = run(suite, tmp_path)
    by_case = {r["case_id"]: r for r in stored_lines(outcome)}
    assert len(by_case) == 10
    broken = by_case["c0003"]
    assert broken["error"] == {"kind": "grading", "message": "ZeroDivisionError: bug in grading", "status": None}
    assert broken["output"] == "text 3"  # what the model said is kept for debugging
    assert broken["passed"] is None
    assert all(r["error"] is None for c, r in by_case.items() if c != "c0003")


def test_a_harness_error_while_grading_stops_the_run_and_keeps_the_manifest(
    server: FaultServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import harness.pipeline as pipeline

    async def refuse(specs, output, ctx):  # type: ignore[no-untyped-def]
        raise HarnessError("judge model 'j': environment variable J_KEY is not set")

    monkeypatch.setattr(pipeline, "grade_output", refuse)
    suite = write_suite(tmp_path, server.base_url, 10)
    with pytest.raises(HarnessError, match="J_KEY"):
        run(suite, tmp_path)
    manifest = Manifest.read(tmp_path / "reports" / "faults" / "run")
    assert manifest.status == "incomplete" and manifest.finished_at is not None


def test_a_repeated_temperature_is_refused_at_load(server: FaultServer, tmp_path: Path) -> None:
    # 0.0 and 0 are one temperature: running it twice would store each trial twice.
    with pytest.raises(SuiteError) as err:
        write_suite(tmp_path, server.base_url, 5, temperatures="[0.0, 0]")
    assert err.value.location.field == "temperatures" and "non-unique" in err.value.message


def test_resume_with_a_case_filter_keeps_other_cases_records(server: FaultServer, tmp_path: Path) -> None:
    suite = write_suite(tmp_path, server.base_url, 6, temperatures="[0.0, 0.5]")
    first = run(suite, tmp_path)
    assert Manifest.read(first.directory).status == "complete"
    # Two records turn into timeouts: one of a case the resume covers, one of a case it does not.
    path = first.directory / RESULTS_FILE
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    timeout = {"kind": "timeout", "message": "request timed out", "status": None}
    inside = next(r for r in records if r["case_id"] == "c0001")
    outside = next(r for r in records if r["case_id"] == "c0004")
    for r in (inside, outside):
        r.update(error=timeout, output=None, passed=None)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")

    options = RunOptions(reports_root=tmp_path / "reports", run_id="run", resume=True, record="live",
                         progress=False, cases=["c0001", "c0002"])
    again = run_suite(suite, options)
    by_id = {r["trial_id"]: r for r in stored_lines(again)}
    assert len(by_id) == 12
    assert by_id[inside["trial_id"]]["error"] is None  # redone
    assert by_id[outside["trial_id"]]["error"] == timeout  # not in this resume's plan: kept for a later one
    manifest = Manifest.read(again.directory)
    assert (manifest.trials_planned, manifest.trials_done, manifest.status) == (4, 4, "complete")
    assert again.skipped_done == 3


def test_a_second_process_cannot_resume_a_run_that_is_still_going(server: FaultServer, tmp_path: Path) -> None:
    suite = write_suite(tmp_path, server.base_url, 4)
    first = run(suite, tmp_path)
    before = first.results_path.read_bytes()
    with RunLock(first.directory), pytest.raises(RunInUseError):
        run(suite, tmp_path, resume=True)
    assert first.results_path.read_bytes() == before


def test_an_endpoint_dying_mid_run_ends_the_run_and_a_resume_finishes_it(tmp_path: Path) -> None:
    import threading

    server = FaultServer(FaultConfig(latency_ms=5)).start()
    port = server.port
    suite = write_suite(tmp_path, server.base_url, 200, concurrency=4,
                        retry="{max_attempts: 3, base_delay: 0.01, max_delay: 0.05, outage_after: 6}")
    results = tmp_path / "reports" / "faults" / "run" / RESULTS_FILE

    def kill_server_after(n: int) -> None:
        while not results.exists() or results.read_bytes().count(b"\n") < n:
            threading.Event().wait(0.002)
        server.stop()

    killer = threading.Thread(target=kill_server_after, args=(40,))
    killer.start()
    try:
        outcome = run(suite, tmp_path)
    finally:
        killer.join()
        server.stop()
    assert "fault-server" in outcome.execute.down
    assert "after" in outcome.execute.down["fault-server"] and "succeeded" in outcome.execute.down["fault-server"]
    stored = stored_lines(outcome)
    assert 40 <= len(stored) < 200
    assert outcome.execute.skipped_down == 200 - len(stored)
    assert Manifest.read(outcome.directory).status == "incomplete"

    with FaultServer(FaultConfig(), port=port):
        again = run(suite, tmp_path, resume=True)
    lines = stored_lines(again)
    assert len(lines) == len({r["trial_id"] for r in lines}) == 200
    assert all(r["error"] is None for r in lines)
    assert Manifest.read(again.directory).status == "complete"


def test_errors_left_after_retries_make_the_cli_exit_4_and_say_how_to_rerun_them(
    server: FaultServer, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from harness.cli import cli

    server.config = FaultConfig(seed=4, fault_rates={Fault.SERVER_ERROR: 0.5})
    suite = write_suite(tmp_path, server.base_url, 20,
                        retry="{max_attempts: 1, base_delay: 0.001, max_delay: 0.01, outage_after: 50}")
    reports = tmp_path / "reports"
    args = ["run", str(suite.path), "--record", "live", "--run-id", "cli", "--reports", str(reports), "--quiet"]
    result = CliRunner().invoke(cli, args, standalone_mode=False)
    assert result.exception is None, result.stderr
    assert result.return_value == 4
    errors = sum(1 for r in read_results(reports / "faults" / "cli" / RESULTS_FILE) if r.error is not None)
    assert f"{errors} trial(s) ended in an error worth retrying (server {errors})" in result.stderr
    assert f"--resume cli --record live --reports {reports}" in result.stderr
    assert Manifest.read(reports / "faults" / "cli").status == "incomplete"
