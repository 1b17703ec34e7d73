"""The compact record of one trial: what the statistics read, for runs too large to hold in full."""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.store.records import GradeRecord, TrialError, TrialOutcome, TrialResult
from harness.store.results import read_results


@dataclass(slots=True)
class CompactResult(TrialOutcome):
    """What the statistics read of one trial, for runs too large to hold as ``TrialResult`` (about 3 KB
    each, most of it the rendered request, the output and the grades' reasons).

    Attribute names match ``TrialResult`` so the statistics take either. Left out: the request, output,
    tool calls, finish reason, attempts and usage dicts (``tokens_in``/``tokens_out`` stand for the usage).
    Judge calibration needs more, but only of labelled trials: for those, ``grades`` holds the judge grades
    and ``output_snippet`` a preview of the output; for every other trial they are empty.
    """

    trial_id: str
    case_id: str
    prompt: str
    model: str
    temperature: float
    repeat: int
    passed: bool | None
    score: float | None
    error: TrialError | None
    cost: float | None
    latency_ms: float | None
    judge_cost: float | None
    tokens_in: float | None
    tokens_out: float | None
    group: str | None
    label: Any
    grades: tuple[GradeRecord, ...]
    output_snippet: str
    choice: int = 0
    ttft_ms: float | None = None
    tokens_cached: float | None = None
    tokens_reasoning: float | None = None
    answer: str | None = None
    batch: bool = False


TrialRecord = TrialResult | CompactResult


def compact(result: TrialResult, shared: dict[Any, Any] | None = None) -> CompactResult:
    """The compact form of a result. Strings repeated across trials (model, prompt, case id, group) are
    interned, and with ``shared`` (one dict per reading) so are errors and numbers that recur (temperatures,
    scores, token counts, costs): a run's records then cost little beyond what differs from trial to trial."""
    share = functools.partial(_share, shared) if shared is not None else _same
    labelled = result.label is not None
    judged = tuple(g for g in result.grades if g.grader == "judge") if labelled else ()
    return CompactResult(
        trial_id=result.trial_id, case_id=_intern(result.case_id), prompt=_intern(result.prompt),
        model=_intern(result.model), temperature=share(result.temperature), repeat=result.repeat,
        passed=result.passed, score=share(result.score), error=share(result.error), cost=share(result.cost),
        latency_ms=result.latency_ms, judge_cost=share(result.judge_cost), tokens_in=share(result.tokens_in),
        tokens_out=share(result.tokens_out), group=_intern(result.group), label=result.label, grades=judged,
        output_snippet=result.output_snippet if judged else "", choice=result.choice, ttft_ms=result.ttft_ms,
        tokens_cached=share(result.tokens_cached), tokens_reasoning=share(result.tokens_reasoning),
        answer=_intern(result.answer), batch=result.batch,
    )  # fmt: skip


def read_compact_results(path: Path) -> Iterator[CompactResult]:
    """``read_results`` in compact form: what a report or a gate over a large run keeps in memory."""
    shared: dict[Any, Any] = {}
    for record in read_results(path):
        yield compact(record, shared)


def _intern(value: Any) -> Any:
    return sys.intern(value) if type(value) is str else value


def _same(value: Any) -> Any:
    return value


def _share(shared: dict[Any, Any], value: Any) -> Any:
    """The first equal value seen, for floats and errors. -0.0 equals 0.0 but prints differently, and NaN
    equals nothing: both are kept as they are."""
    if type(value) is float:
        if value != value or (value == 0.0 and math.copysign(1.0, value) < 0):
            return value
    elif type(value) is not TrialError:
        return value
    try:
        return shared.setdefault(value, value)
    except TypeError:  # an error whose message is not a string (a hand-edited file) is not hashable
        return value
