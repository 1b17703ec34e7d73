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

    The score is the weighted mean of the decided grades' scores (0 when none is decided). Without a
    threshold the trial passes when every grader passes; with one, when the score reaches it. Any
    undecided grade makes the verdict ``None``, and so does having no grades at all: an ungraded trial
    is never a silent pass.
    """
    if any(grade.weight < 0 for grade in grades):
        raise ValueError("grader weights must not be negative")
    decided = [grade for grade in grades if grade.passed is not None]
    total = sum(grade.weight for grade in decided)
    score = sum(grade.score * grade.weight for grade in decided) / total if total > 0 else 0.0
    if not grades or len(decided) < len(grades):
        return None, score
    if threshold is None:
        return all(grade.passed for grade in decided), score
    return score >= threshold - _TOLERANCE, score


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
