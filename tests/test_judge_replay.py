"""Judge calls through the pipeline: own cassette, offline re-grading, and a clear miss on a changed rubric.

The endpoint is the in-process fault server on 127.0.0.1 with fixed replies (``test_judge_fixtures.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_judge_fixtures import JUDGE_RULES, write_judged_suite

from harness.cli.output import print_run_summary
from harness.errors import EXIT_OK, EXIT_REPLAY_MISS
from harness.pipeline import RunOptions, run_suite
from harness.store import TrialResult, read_results
from harness.suite import load_suite
from harness.testing.fault_server import FaultConfig, FaultServer


def write_suite(folder: Path, rubric: str = "Names the right capital.") -> Path:
    return write_judged_suite(folder, "${JUDGE_TEST_URL}", rubric=rubric, answerer_price=True, labelled=True)


def run(suite_file: Path, tmp: Path, record: str, run_id: str) -> tuple[int, list[TrialResult]]:
    options = RunOptions(reports_root=tmp / "reports", cassettes_root=tmp / "cassettes", run_id=run_id,
                         record=record, progress=False)
    outcome = run_suite(load_suite(suite_file), options)
    code = print_run_summary(outcome, [])
    return code, sorted(read_results(outcome.results_path), key=lambda r: r.case_id)


def grades(results: list[TrialResult]) -> list[tuple[str, Any, Any, Any, Any]]:
    return [(r.case_id, g.passed, g.score, g.reason, g.error) for r in results for g in r.grades]


def test_record_replay_offline_and_a_rubric_change_misses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    suite_file = write_suite(tmp_path)
    with FaultServer(FaultConfig(rules=JUDGE_RULES)) as server:
        monkeypatch.setenv("JUDGE_TEST_URL", server.base_url)
        code, recorded = run(suite_file, tmp_path, "record", "rec")
    assert code == EXIT_OK
    assert grades(recorded) == [
        ("france", True, 1.0, "judge strict-judge: PASS — Paris is right.", None),
        ("spain", False, 0.0, "judge strict-judge: FAIL — Berlin is not in Spain.", None),
    ]
    # The judge's spend is kept apart from the graded model's.
    for result in recorded:
        assert result.usage and result.judge_usage and result.judge_usage != result.usage
        assert result.judge_cost == pytest.approx(3.0 * sum(result.judge_usage.values()) / 1e6)
    # The judge has its own cassette, keyed by its own sample keys.
    judge_cassette = tmp_path / "cassettes" / "judged" / "strict-judge.judge.json"
    assert judge_cassette.is_file() and (tmp_path / "cassettes" / "judged" / "answerer.json").is_file()
    interactions = json.loads(judge_cassette.read_text())["interactions"]
    assert [i["request"]["headers"]["x-harness-sample"] for i in interactions] == [["judge:r0:v0"]] * 2

    # The server is gone: replay re-grades identically from the cassettes alone.
    monkeypatch.setenv("JUDGE_TEST_URL", "http://127.0.0.1:9/v1")
    code, replayed = run(suite_file, tmp_path, "replay", "again")
    assert code == EXIT_OK and grades(replayed) == grades(recorded)
    assert [r.judge_usage for r in replayed] == [r.judge_usage for r in recorded]

    # A changed rubric changes every judge request: a clear miss, never a stale verdict.
    capsys.readouterr()
    code, changed = run(write_suite(tmp_path, "Names the capital, in French."), tmp_path, "replay", "changed")
    assert code == EXIT_REPLAY_MISS
    for result in changed:
        (grade,) = result.grades
        assert grade.passed is None and result.passed is None
        assert grade.error.startswith("replay miss: judge 'strict-judge' request is not recorded")
        assert "record-missing" in grade.error
    err = capsys.readouterr().err
    assert "replay miss: 2 judge grade(s) have no recorded judge call" in err
    assert "case france" in err and "--record record-missing" in err and "--resume" not in err
