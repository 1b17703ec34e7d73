"""Running a case's graders on one output and combining their grades into the trial's verdict."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence

from harness.grade._common import clip_plain, is_fraction
from harness.grade.base import Grade, GradeContext, Grader, Output

# Weighted means of scores like 2/3 land a rounding error below the threshold a user wrote as 0.6667;
# far smaller than any meaningful score difference.
_TOLERANCE = 1e-9


def combine(grades: Sequence[Grade], threshold: float | None = None) -> tuple[bool | None, float]:
    """The trial's verdict and score from its graders' grades.

    Without a threshold the trial passes when every grader passes; with one, when the weighted mean score
    reaches it. The verdict is ``None`` (undecided) only when it truly depends on a grade that is missing:
    a decided failure fails the trial whatever an undecided judge would have said, and with a threshold the
    trial is decided when the missing weights, scored anywhere in [0, 1], cannot move the score across it.
    Having no grades at all is undecided: an ungraded trial is never a silent pass. The score counts an
    undecided grade as 0 (its lowest possible value), so a missing verdict never makes a trial look better.
    """
    if any(grade.weight < 0 for grade in grades):
        raise ValueError("grader weights must not be negative")
    if not grades:
        return None, 0.0
    decided = [grade for grade in grades if grade.passed is not None]
    missing = sum(grade.weight for grade in grades if grade.passed is None)
    total = sum(grade.weight for grade in grades)
    earned = sum(grade.score * grade.weight for grade in decided)
    score = earned / total if total > 0 else 0.0
    if threshold is None:
        if any(not grade.passed for grade in decided):
            return False, score
        return (True if len(decided) == len(grades) else None), score
    if total <= 0:
        return None, score
    lowest, highest = earned / total, (earned + missing) / total
    if lowest >= threshold - _TOLERANCE:
        return True, score
    if highest < threshold - _TOLERANCE:
        return False, score
    return None, score


def _checked(grade: object) -> Grade:
    """Turn a grader's broken result into an undecided grade rather than a wrong verdict."""
    if not isinstance(grade, Grade):
        return Grade.undecided(f"grader returned {type(grade).__name__}, not a Grade")
    if grade.passed is None and not grade.error:
        return Grade.undecided(grade.reason or "grader returned no verdict and no error")
    if grade.passed is not None and not is_fraction(grade.score):
        return Grade.undecided(f"grader returned score {grade.score!r}, outside [0, 1]")
    return grade


async def _run_one(grader: Grader, weight: float, output: Output, ctx: GradeContext) -> Grade:
    try:
        grade = _checked(await grader.agrade(output, ctx))
    except Exception as exc:  # noqa: BLE001 - one broken grader must not lose the trial or the other grades
        grade = Grade.undecided(f"{type(exc).__name__}: {clip_plain(str(exc))}")
    return dataclasses.replace(grade, grader=grader.name, weight=weight)


async def grade_output(
    graders: Sequence[tuple[Grader, float]], output: Output, ctx: GradeContext
) -> list[Grade]:
    """Every ``(grader, weight)`` pair's grade of ``output``, in the order given.

    Graders run concurrently, so judges waiting on the network overlap. A grader that raises yields an
    undecided grade; cancellation still propagates.
    """
    return list(await asyncio.gather(*(_run_one(grader, weight, output, ctx) for grader, weight in graders)))
