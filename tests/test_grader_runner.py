"""Combining grades into a trial's verdict, and running a case's graders on one output."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from harness.grade import Grade, GradeContext, Grader, Output, build_grader
from harness.grade.runner import combine, grade_output


def graded(passed: bool | None, score: float, weight: float = 1.0) -> Grade:
    if passed is None:
        return Grade(passed=None, score=0.0, reason="", error="could not decide", weight=weight)
    return Grade(passed=passed, score=score, reason="r", weight=weight)


def test_all_pass() -> None:
    assert combine([graded(True, 1.0), graded(True, 0.8)], None) == (True, pytest.approx(0.9))


def test_one_fail_fails_the_trial() -> None:
    passed, score = combine([graded(True, 1.0), graded(False, 0.0)], None)
    assert passed is False and score == pytest.approx(0.5)


def test_undecided_only_when_the_verdict_depends_on_the_missing_grade() -> None:
    # contains and regex failed; the judge could not answer: the case failed whatever the judge would say.
    passed, score = combine([graded(False, 0.0), graded(False, 0.0), graded(None, 0.0)], None)
    assert passed is False and score == 0.0
    passed, score = combine([graded(True, 1.0), graded(None, 0.0), graded(False, 0.5)], None)
    assert passed is False and score == pytest.approx(0.5)  # the missing grade scores its lowest, 0
    # Everything decided passed: the missing verdict decides, so the trial is undecided.
    assert combine([graded(True, 1.0), graded(None, 0.0)], None)[0] is None
    assert combine([graded(None, 0.0)], None) == (None, 0.0)


def test_threshold_undecided_only_when_the_missing_weight_could_cross_it() -> None:
    # 5 of 6 weight passed: even a 0 from the missing grader leaves 0.83 >= 0.1.
    assert combine([graded(True, 1.0, 5.0), graded(None, 0.0)], 0.1)[0] is True
    # 1 of 6 weight passed: even a 1 from the missing grader reaches only 0.33 < 0.5.
    assert combine([graded(True, 1.0, 1.0), graded(False, 0.0, 4.0), graded(None, 0.0)], 0.5)[0] is False
    # Here it could go either way: 0.33 if it scores 0, 0.67 if it scores 1, threshold 0.6.
    assert combine([graded(True, 1.0), graded(False, 0.0), graded(None, 0.0)], 0.6)[0] is None


def test_no_grades_is_undecided_not_a_pass() -> None:
    assert combine([], None) == (None, 0.0)


def test_weights_and_threshold() -> None:
    grades = [graded(True, 1.0, weight=3.0), graded(False, 0.0, weight=1.0)]
    passed, score = combine(grades, 0.7)
    assert passed is True and score == pytest.approx(0.75)
    assert combine(grades, 0.8)[0] is False
    # Without a threshold, weights change the score but every grader must still pass.
    assert combine(grades, None) == (False, pytest.approx(0.75))


def test_threshold_equal_to_the_score_passes_despite_rounding() -> None:
    grades = [graded(True, 1.0), graded(True, 1.0), graded(False, 0.0)]
    assert combine(grades, 2 / 3)[0] is True
    assert combine([graded(True, 0.7), graded(True, 0.1)], 0.4)[0] is True  # 0.8 / 2 is 0.39999...


def test_negative_weight_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        combine([graded(True, 1.0, weight=-1.0)], None)


class Raising(Grader):
    name = "raising"

    def grade(self, output: Output, ctx: GradeContext) -> Grade:
        raise RuntimeError("grader bug")


class Broken(Grader):
    name = "broken"

    def __init__(self, result: Any) -> None:
        self.result = result

    def grade(self, output: Output, ctx: GradeContext) -> Grade:
        return self.result


class Slow(Grader):
    name = "slow"

    def __init__(self, delay: float, events: list[str]) -> None:
        self.delay, self.events = delay, events

    def grade(self, output: Output, ctx: GradeContext) -> Grade:
        raise AssertionError("agrade is used")

    async def agrade(self, output: Output, ctx: GradeContext) -> Grade:
        self.events.append(f"start {self.delay}")
        await asyncio.sleep(self.delay)
        self.events.append(f"end {self.delay}")
        return Grade.ok(f"slept {self.delay}")


def run(graders: list[tuple[Grader, float]], text: str = "Paris") -> list[Grade]:
    return asyncio.run(grade_output(graders, Output(text=text), GradeContext(case_id="c", vars={})))


def test_grade_output_fills_in_grader_name_and_weight_in_order() -> None:
    grades = run(
        [(build_grader("contains", {"value": "Par"}), 2.0), (build_grader("exact", {"value": "x"}), 0.5)]
    )
    assert [(g.grader, g.weight, g.passed) for g in grades] == [
        ("contains", 2.0, True),
        ("exact", 0.5, False),
    ]


def test_a_raising_grader_is_undecided_and_the_others_still_run() -> None:
    grades = run([(Raising(), 1.0), (build_grader("contains", {"value": "Par"}), 1.0)])
    assert grades[0].passed is None and grades[0].error == "RuntimeError: grader bug"
    assert grades[0].grader == "raising"
    assert grades[1].passed is True
    assert combine(grades, None)[0] is None


@pytest.mark.parametrize(
    ("result", "message"),
    [
        ("not a grade", "returned str"),
        (Grade(passed=None, score=0.0, reason=""), "no verdict"),
        (Grade(passed=True, score=1.5, reason=""), "outside [0, 1]"),
        (Grade(passed=True, score=float("nan"), reason=""), "outside [0, 1]"),
    ],
)
def test_malformed_results_become_undecided(result: Any, message: str) -> None:
    (grade,) = run([(Broken(result), 1.0)])
    assert grade.passed is None and message in (grade.error or "")


def test_graders_run_concurrently() -> None:
    events: list[str] = []
    grades = run([(Slow(0.02, events), 1.0), (Slow(0.01, events), 1.0)])
    # Both start before either finishes; results keep the given order regardless of finishing order.
    assert events[:2] == ["start 0.02", "start 0.01"]
    assert [g.reason for g in grades] == ["slept 0.02", "slept 0.01"]
