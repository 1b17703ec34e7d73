"""The CI gate's decision rule (spec §8.3): BLOCK / WARN from Holm-adjusted p, labels from the 90% CI."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from harness.stats.intervals import json_float
from harness.stats.power import BLOCK_ALPHA, WARN_ALPHA


class Verdict(str, Enum):
    BLOCK = "BLOCK"
    WARN = "WARN"
    IMPROVEMENT = "IMPROVEMENT"
    NON_INFERIOR = "NON_INFERIOR"
    INCONCLUSIVE = "INCONCLUSIVE"


@dataclass(frozen=True)
class GateDecision:
    """A verdict with the numbers behind it. ``low``/``high`` are the 90% bounds in the better-is-up scale."""

    verdict: Verdict
    reason: str
    p_holm: float
    low: float | None
    high: float | None
    margin: float
    strict: bool
    n_cases: int | None = None
    required_cases: int | None = None

    @property
    def fails(self) -> bool:
        return self.verdict is Verdict.BLOCK

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "reason": self.reason,
            "p_holm": float(self.p_holm),
            "low": json_float(self.low),
            "high": json_float(self.high),
            "margin": float(self.margin),
            "strict": self.strict,
            "n_cases": self.n_cases,
            "required_cases": self.required_cases,
        }


def gate_verdict(
    p_holm: float,
    low90: float | None,
    high90: float | None,
    margin: float = 0.05,
    *,
    higher_is_better: bool = True,
    strict: bool = False,
    n_cases: int | None = None,
    required_cases: int | None = None,
    block_alpha: float = BLOCK_ALPHA,
    warn_alpha: float = WARN_ALPHA,
) -> GateDecision:
    """Classify one gated comparison.

    ``p_holm`` is the Holm-adjusted one-sided p for "new worse than base", already oriented by the caller.
    ``low90``/``high90`` bound new - base in the metric's own units; for lower-is-better metrics (cost,
    latency) they are negated here so "worse" is always down. ``margin`` is the positive delta in the same
    units. Strict mode (non-inferiority) BLOCKs whenever non-inferiority is not shown, and its reason
    warns when ``n_cases`` is below ``required_cases``.
    """
    if margin < 0:
        raise ValueError("margin must be non-negative")
    low, high = low90, high90
    if not higher_is_better and low is not None and high is not None:
        low, high = -high, -low

    def decide(verdict: Verdict, reason: str) -> GateDecision:
        if strict and n_cases is not None and required_cases is not None and n_cases < required_cases:
            reason += (
                f"; strict mode needs about {required_cases} cases to show non-inferiority, this suite "
                f"has {n_cases}, so it fails most neutral changes"
            )
        return GateDecision(verdict, reason, p_holm, low, high, margin, strict, n_cases, required_cases)

    if p_holm < block_alpha:
        return decide(Verdict.BLOCK, f"significant regression (Holm p = {p_holm:.3g} < {block_alpha:g})")
    if low is None or high is None:
        if strict:
            return decide(Verdict.BLOCK, "non-inferiority not shown: no interval (too few cases)")
        if p_holm < warn_alpha:
            return decide(Verdict.WARN, f"likely regression (Holm p = {p_holm:.3g} < {warn_alpha:g})")
        return decide(Verdict.INCONCLUSIVE, "no interval (too few cases)")
    if strict and low < -margin:
        return decide(
            Verdict.BLOCK, f"non-inferiority not shown: 90% lower bound {low:.3g} is below -{margin:g}"
        )
    if p_holm < warn_alpha:
        return decide(Verdict.WARN, f"likely regression (Holm p = {p_holm:.3g} < {warn_alpha:g})")
    if low > 0:
        return decide(Verdict.IMPROVEMENT, f"90% lower bound {low:.3g} is above 0")
    if low >= -margin:
        return decide(Verdict.NON_INFERIOR, f"no drop larger than {margin:g} (90% lower bound {low:.3g})")
    return decide(
        Verdict.INCONCLUSIVE,
        f"suite too small to rule out a drop of {margin:g} (90% lower bound {low:.3g})",
    )
