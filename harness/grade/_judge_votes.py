"""Combining a judge's votes into one verdict, and how much the votes disagreed.

A vote that produced no usable verdict (unparseable reply, failed call) is never counted as a pass or a
fail: it is left out, and the grade is decided only when more than half of the votes are usable (a quorum).
With one vote that means an unusable reply is a grader error.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.grade._judge_parse import Scale, Verdict

Aggregate = Literal["majority", "mean"]
_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Vote:
    """One judge sample: a verdict, or the error that kept it from having one."""

    verdict: Verdict | None
    reason: str = ""
    parse: str = ""  # how the verdict was read: json, json-embedded, verdict-line, bare
    error: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    structured: bool = False
    replay_miss: bool = False
    batch: bool = False  # answered by a batch job: billed at the batch rate
    unanswered: bool = False  # the call itself failed (refused, timed out, 5xx after retries)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"verdict": self.verdict, "reason": self.reason, "parse": self.parse,
                               "structured": self.structured}
        if self.error:
            out["error"] = self.error
        return out


@dataclass(frozen=True)
class Outcome:
    """The combined verdict. ``error`` set means undecided (``passed`` is then None)."""

    passed: bool | None
    score: float
    verdict: Verdict | None
    agreement: float | None  # share of usable votes that gave the most common verdict
    usable: int
    error: str | None = None
    mean: float | None = None  # mean verdict on a range scale, in scale units
    spread: float | None = None  # standard deviation of the votes on a range scale, in scale units


def combine_votes(votes: Sequence[Vote], scale: Scale, how: Aggregate, threshold: float) -> Outcome:
    usable = [v for v in votes if v.verdict is not None]
    misses = [v for v in votes if v.replay_miss]
    if misses:
        # A replay miss must reach the user as one, whatever the other votes said.
        return Outcome(None, 0.0, None, None, len(usable), misses[0].error)
    if 2 * len(usable) <= len(votes):
        failed = [v for v in votes if v.verdict is None]
        what = failed[0].error or "no verdict"
        prefix = "" if len(votes) == 1 else f"{len(failed)} of {len(votes)} judge votes had no usable verdict; first: "
        return Outcome(None, 0.0, None, None, len(usable), prefix + what)
    verdicts = [v.verdict for v in usable if v.verdict is not None]
    counts = Counter(verdicts)
    top, top_count = _mode(counts, scale)
    agreement = top_count / len(verdicts)
    values = [int(v) for v in verdicts] if scale.kind == "range" else None
    mean_value = statistics.fmean(values) if values else None
    spread = statistics.stdev(values) if values and len(values) > 1 else (0.0 if values else None)
    if how == "majority":
        tied = [v for v, c in counts.items() if c == top_count]
        if len(tied) > 1:
            shown = ", ".join(f"{v} ×{counts[v]}" for v in scale.labels() if v in tied)
            return Outcome(None, 0.0, None, agreement, len(usable),
                           f"judge votes tied ({shown}); use an odd number of votes or aggregate: mean",
                           mean_value, spread)
        score = scale.score(top)
        passed = top == "PASS" if scale.kind == "pass_fail" else _reaches(top, score, scale, threshold)
        return Outcome(passed, score, top, agreement, len(usable), None, mean_value, spread)
    score = statistics.fmean(scale.score(v) for v in verdicts)
    if scale.kind == "range":
        assert mean_value is not None
        passed = mean_value >= threshold - _TOLERANCE
        verdict: Verdict = int(math.floor(mean_value + 0.5))
    else:
        passed = score >= threshold - _TOLERANCE
        verdict = _nearest(score, scale) if scale.kind == "choices" else ("PASS" if passed else "FAIL")
    return Outcome(passed, score, verdict, agreement, len(usable), None, mean_value, spread)


def _mode(counts: Counter[Verdict], scale: Scale) -> tuple[Verdict, int]:
    # Ties resolve in scale order so the reported verdict is deterministic.
    order = {label: i for i, label in enumerate(scale.labels())}
    return min(counts.items(), key=lambda item: (-item[1], order.get(item[0], 0)))


def _reaches(verdict: Verdict, score: float, scale: Scale, threshold: float) -> bool:
    value = float(verdict) if scale.kind == "range" else score
    return value >= threshold - _TOLERANCE


def _nearest(score: float, scale: Scale) -> str:
    return min(scale.choices, key=lambda item: abs(item[1] - score))[0]
