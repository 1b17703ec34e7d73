"""Judge calibration statistics against hand-computed values, and the `harness calibrate` command."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.stats.calibration import Pair, agreement, calibration_from_results, human_label, vote_agreement
from harness.stats.intervals import CLUSTER_EFF_N_WILSON, pass_rate_ci
from harness.stats.kappa import (
    KAPPA_FALLBACK,
    KAPPA_METHOD,
    chance_agreement,
    cohen_kappa,
    kappa_interval,
    quadratic_weights,
)
from harness.store import RESULTS_FILE, GradeRecord, Manifest, ResultsWriter, TrialResult

PF_KEY = "judge-a · pass_fail · rubric 00000000"


def trial(case: str, label: Any, passed: bool | None, *, verdict: Any = None, key: str = PF_KEY,
          scale: dict[str, Any] | None = None, threshold: float = 0.5, repeat: int = 0, model: str = "m",
          reason: str = "because") -> TrialResult:
    details = {"judge": key, "model": "judge-a", "scale": scale or {"kind": "pass_fail"}, "threshold": threshold,
               "verdict": verdict if verdict is not None else ("PASS" if passed else "FAIL"), "reason": reason}
    grade = GradeRecord(grader="judge", passed=passed, score=1.0 if passed else 0.0,
                        reason=f"judge judge-a: … — {reason}", error=None if passed is not None else "unparseable",
                        details=details)
    return TrialResult(trial_id=f"{case}-{model}-{repeat}", case_id=case, prompt="v1", model=model, temperature=0.0,
                       repeat=repeat, output=f"output of {case}", grades=[grade], passed=passed, label=label)


def pairs_from_table(table: list[list[int]], categories: list[str]) -> list[Pair]:
    pairs = []
    for i, human in enumerate(categories):
        for j, judged in enumerate(categories):
            pairs += [Pair(f"c{len(pairs) + n:04d}", human, judged) for n in range(table[i][j])]
    return pairs


def fce_se(table: np.ndarray) -> float:
    """Fleiss, Cohen & Everitt (1969) large-sample SE of kappa, written out independently for comparison."""
    n = table.sum()
    p = table / n
    rows, cols = p.sum(axis=1), p.sum(axis=0)
    po, pe = np.trace(p), float(rows @ cols)
    kappa = (po - pe) / (1 - pe)
    k = len(table)
    a = sum(p[i, i] * (1 - (rows[i] + cols[i]) * (1 - kappa)) ** 2 for i in range(k))
    b = (1 - kappa) ** 2 * sum(p[i, j] * (cols[i] + rows[j]) ** 2 for i in range(k) for j in range(k) if i != j)
    return math.sqrt((a + b - (kappa - pe * (1 - kappa)) ** 2) / (n * (1 - pe) ** 2))


# --- kappa by hand ---------------------------------------------------------------------------------------


def test_cohen_kappa_hand_computed() -> None:
    # po = 35/50 = .7; margins rows (25, 25), columns (30, 20): pe = (25·30 + 25·20)/50² = .5; κ = .2/.5.
    assert cohen_kappa([[20, 5], [10, 15]]) == pytest.approx(0.4)
    assert chance_agreement([[20, 5], [10, 15]]) == pytest.approx(0.5)
    assert cohen_kappa([[10, 0], [0, 5]]) == pytest.approx(1.0)
    # Systematic disagreement: po = 0, pe = .5 → κ = -1.
    assert cohen_kappa([[0, 5], [5, 0]]) == pytest.approx(-1.0)
    assert cohen_kappa([[10, 0], [0, 0]]) is None  # one category for both raters: undefined


def test_weighted_kappa_hand_computed() -> None:
    table = [[5, 1, 0], [1, 4, 1], [0, 1, 7]]
    # Unweighted: po = 16/20 = .8; margins .3, .3, .4 both ways: pe = .09 + .09 + .16 = .34; κ = .46/.66.
    assert cohen_kappa(table) == pytest.approx(0.46 / 0.66)
    # Quadratic weights 1, .75, 0: po_w = .8 + .75·4/20 = .95; pe_w = .34 + .75·(.09+.09+.12+.12) = .655.
    assert quadratic_weights(3).tolist() == [[1, 0.75, 0], [0.75, 1, 0.75], [0, 0.75, 1]]
    assert cohen_kappa(table, quadratic_weights(3)) == pytest.approx(0.295 / 0.345)


def test_agreement_matches_hand_values_and_pass_rate_intervals() -> None:
    result = agreement(pairs_from_table([[20, 5], [10, 15]], ["pass", "fail"]), ["pass", "fail"], seed=1)
    assert result.confusion == ((20, 5), (10, 15)) and result.pairs == 50 and result.cases == 50
    assert result.accuracy == pass_rate_ci(35, 50)
    assert result.kappa.estimate == pytest.approx(0.4) and result.kappa.method == KAPPA_METHOD
    assert result.kappa.low < 0.4 < result.kappa.high
    assert result.per_category["pass"] == pass_rate_ci(20, 25)
    assert result.per_category["fail"] == pass_rate_ci(15, 25)
    assert result.weighted_kappa is None


def test_kappa_interval_agrees_with_the_analytic_se_at_large_n() -> None:
    table = np.array([[700, 300], [300, 700]])  # κ = .4 over 2,000 cases
    pairs = pairs_from_table(table.tolist(), ["pass", "fail"])
    result = agreement(pairs, ["pass", "fail"], seed=3)
    half_width = (result.kappa.high - result.kappa.low) / 2
    assert result.kappa.estimate == pytest.approx(0.4)
    assert half_width == pytest.approx(1.96 * fce_se(table), rel=0.1)


def test_kappa_interval_is_seeded() -> None:
    tables = np.zeros((30, 2, 2))
    rng = random.Random(5)
    for case in range(30):
        tables[case, rng.randrange(2), rng.randrange(2)] = 1
    a, b = kappa_interval(tables, seed=11), kappa_interval(tables, seed=11)
    assert a == b and a.n == 30 and a.method == KAPPA_METHOD
    assert kappa_interval(tables, seed=12).low != a.low


def test_perfect_agreement_gets_a_fallback_interval_that_is_not_zero_width() -> None:
    pairs = pairs_from_table([[6, 0], [0, 4]], ["pass", "fail"])
    result = agreement(pairs, ["pass", "fail"])
    assert result.kappa.estimate == 1.0 and result.kappa.method == KAPPA_FALLBACK and result.kappa.high == 1.0
    # Clopper–Pearson lower bound for 10/10 is 0.025^(1/10); chance agreement .6² + .4² = .52.
    expected_low = (0.025 ** 0.1 - 0.52) / 0.48
    assert result.kappa.low == pytest.approx(expected_low, abs=1e-9)
    assert "same kappa" in (result.kappa.note or "")


def test_undefined_kappa_is_reported_not_invented() -> None:
    result = agreement(pairs_from_table([[7, 0], [0, 0]], ["pass", "fail"]), ["pass", "fail"])
    assert result.kappa.estimate is None and not result.kappa.defined and "undefined" in (result.kappa.note or "")
    assert result.accuracy == pass_rate_ci(7, 7)


def test_repeats_make_cases_the_unit() -> None:
    pairs = [Pair("a", "pass", "pass"), Pair("a", "pass", "fail"), Pair("b", "fail", "fail"),
             Pair("b", "fail", "fail"), Pair("c", "pass", "pass"), Pair("c", "pass", "pass")]
    result = agreement(pairs, ["pass", "fail"])
    assert result.pairs == 6 and result.cases == 3
    assert result.accuracy.method == CLUSTER_EFF_N_WILSON and result.accuracy.n == 3
    assert result.accuracy.estimate == pytest.approx((0.5 + 1 + 1) / 3)
    assert result.kappa.n == 3 and result.kappa.k == 2


# --- human labels ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("label, scale, expected", [
    ("pass", {"kind": "pass_fail"}, ("pass", None)),
    ("FAIL", {"kind": "pass_fail"}, ("fail", None)),
    (True, {"kind": "pass_fail"}, ("pass", None)),
    (0, {"kind": "pass_fail"}, ("fail", None)),
    (2, {"kind": "pass_fail"}, None),
    ("maybe", {"kind": "pass_fail"}, None),
    (4, {"kind": "range", "low": 1, "high": 5}, ("pass", "4")),
    ("2", {"kind": "range", "low": 1, "high": 5}, ("fail", "2")),
    (3, {"kind": "range", "low": 1, "high": 5}, ("pass", "3")),
    (3.5, {"kind": "range", "low": 1, "high": 5}, None),
    (6, {"kind": "range", "low": 1, "high": 5}, None),
    ("pass", {"kind": "range", "low": 1, "high": 5}, ("pass", None)),
    ("Partial", {"kind": "choices", "choices": {"right": 1.0, "partial": 0.5, "wrong": 0.0}}, ("pass", "partial")),
    (0.0, {"kind": "choices", "choices": {"right": 1.0, "partial": 0.5, "wrong": 0.0}}, ("fail", "wrong")),
    ("meh", {"kind": "choices", "choices": {"right": 1.0, "wrong": 0.0}}, None),
])
def test_human_labels(label: Any, scale: dict[str, Any], expected: Any) -> None:
    assert human_label(label, scale, 3.0 if scale["kind"] == "range" else 0.5) == expected


# --- from results ----------------------------------------------------------------------------------------


def sample_results() -> list[TrialResult]:
    return [
        trial("a", "pass", True), trial("b", "pass", True), trial("c", "pass", False, reason="too short"),
        trial("d", "fail", False), trial("e", "fail", True, reason="looks fine"), trial("f", "fail", False),
        trial("g", None, True),  # unlabelled: not part of calibration
        trial("h", "maybe", True),  # a label the judge's scale does not have
        trial("i", "pass", None),  # the judge could not decide
    ]


def test_calibration_from_results() -> None:
    calibration = calibration_from_results(sample_results())
    assert calibration is not None
    (judge,) = calibration.judges
    assert (judge.judge, judge.model, judge.labelled, judge.undecided) == (PF_KEY, "judge-a", 7, 1)
    assert judge.unusable_labels == ("h: 'maybe'",)
    assert judge.pass_fail is not None and judge.scale is None
    assert judge.pass_fail.confusion == ((2, 1), (1, 2))
    assert judge.pass_fail.accuracy == pass_rate_ci(4, 6)
    # po = 4/6; margins (3, 3) and (3, 3): pe = .5; κ = (2/3 - 1/2) / (1/2) = 1/3.
    assert judge.pass_fail.kappa.estimate == pytest.approx(1 / 3)
    assert [(d.case_id, d.human, d.judge, d.reason) for d in judge.disagreements] == [
        ("c", "pass", "fail", "too short"), ("e", "fail", "pass", "looks fine")]
    assert judge.disagreements[0].output == "output of c" and judge.disagreements[0].variant == "m · v1 · T=0"


def test_calibration_is_deterministic_whatever_the_order() -> None:
    results = sample_results()
    first = calibration_from_results(results)
    shuffled = results[:]
    random.Random(1).shuffle(shuffled)
    second = calibration_from_results(shuffled)
    assert first is not None and second is not None and first.to_dict() == second.to_dict()


def test_each_judge_configuration_is_calibrated_separately_and_scales_at_their_level() -> None:
    five = {"kind": "range", "low": 1, "high": 5}
    key = "judge-b · 1-5 · rubric 11111111"
    results = [*sample_results()[:3]] + [
        trial("a", 5, True, verdict=5, key=key, scale=five, threshold=3),
        trial("b", 4, True, verdict=3, key=key, scale=five, threshold=3),
        trial("c", 2, False, verdict=2, key=key, scale=five, threshold=3),
        trial("d", 1, False, verdict=2, key=key, scale=five, threshold=3),
        trial("e", "fail", True, verdict=4, key=key, scale=five, threshold=3),
    ]
    calibration = calibration_from_results(results)
    assert calibration is not None
    assert [j.judge for j in calibration.judges] == [PF_KEY, key]
    ranged = calibration.judges[1]
    assert ranged.pass_fail is not None and ranged.pass_fail.pairs == 5
    assert ranged.pass_fail.confusion == ((2, 0), (1, 2))
    assert ranged.scale is not None and ranged.scale.categories == ("1", "2", "3", "4", "5")
    assert ranged.scale.pairs == 4  # the "fail" label has no scale value
    assert ranged.scale.accuracy.estimate == pytest.approx(2 / 4)
    assert ranged.scale.weighted_kappa is not None
    # Disagreements are shown at the finest level both sides have.
    assert [(d.case_id, d.human, d.judge) for d in ranged.disagreements] == [("b", "4", "3"), ("d", "1", "2"),
                                                                               ("e", "fail", "pass")]


def test_renderings() -> None:
    calibration = calibration_from_results(sample_results())
    assert calibration is not None
    data = json.loads(json.dumps(calibration.to_dict()))
    entry = data["judges"][PF_KEY]
    assert entry["pass_fail"]["confusion"] == {"human pass": {"judge pass": 2, "judge fail": 1},
                                               "human fail": {"judge pass": 1, "judge fail": 2}}
    assert entry["pass_fail"]["kappa"]["method"] == KAPPA_METHOD and len(entry["disagreements"]) == 2
    markdown = calibration.markdown()
    assert markdown.startswith(f"### judge calibration: {PF_KEY}")
    assert "| accuracy" in markdown and "Cohen's kappa" in markdown and "| human pass |" in markdown
    assert "66.7%" in markdown and "too short" in markdown
    table = calibration.table()
    assert "confusion matrix (rows: human label, columns: judge verdict)" in table and "|" not in table


def test_no_labels_no_calibration() -> None:
    assert calibration_from_results([trial("a", None, True)]) is None
    assert calibration_from_results([]) is None


def test_vote_agreement_needs_no_labels() -> None:
    def voted(case: str, verdicts: list[Any], agreement: float) -> TrialResult:
        result = trial(case, None, True)
        details = {**result.grades[0].details, "votes": [{"verdict": v} for v in verdicts], "agreement": agreement}
        grade = GradeRecord(grader="judge", passed=True, score=1.0, reason="", details=details)
        return TrialResult(**{**vars(result), "grades": [grade]})

    results = [voted("a", ["PASS"] * 3, 1.0), voted("b", ["PASS", "FAIL", "PASS"], 2 / 3),
               voted("c", ["PASS", None, None], 1.0), trial("d", "pass", True)]
    (summary,) = vote_agreement(results)
    assert (summary.judge, summary.trials, summary.split) == (PF_KEY, 2, 1)
    assert summary.mean_agreement == pytest.approx(5 / 6)
    assert "split on 1 of 2 trials" in summary.line() and "83.3%" in summary.line()


# --- the command -----------------------------------------------------------------------------------------


def write_run(folder: Path, results: list[TrialResult]) -> Path:
    run = folder / "reports" / "s" / "run-1"
    Manifest(suite="s", run_id="run-1", suite_file="s.yaml", suite_hash="h", harness_version="0", record_mode="replay",
             models=["m"], prompts=["v1"], temperatures=[0.0], repeats=1, trials_planned=len(results),
             started_at=time.time(), status="complete").write(run)
    with ResultsWriter(run / RESULTS_FILE) as writer:
        for result in results:
            writer.write(result)
    return run


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=60)


def test_calibrate_command(tmp_path: Path) -> None:
    run = write_run(tmp_path, sample_results())
    done = harness("calibrate", str(run), "--format", "json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data.pop("votes") == {}  # single-vote judges
    assert data == calibration_from_results(sample_results()).to_dict()  # type: ignore[union-attr]
    table = harness("calibrate", str(run / RESULTS_FILE))
    assert table.returncode == 0 and "Cohen's kappa" in table.stdout and "disagreements (2)" in table.stdout
    empty = write_run(tmp_path / "empty", [trial("a", None, True)])
    refused = harness("calibrate", str(empty))
    assert refused.returncode == 2 and "nothing to calibrate" in refused.stderr and "Traceback" not in refused.stderr
