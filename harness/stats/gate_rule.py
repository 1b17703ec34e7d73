"""The CI gate's decision rule (spec §8.3): BLOCK / WARN from Holm-adjusted p, labels from the 90% CI."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from harness.report.format import amount_with_unit, p_value, signed, unit_of
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


def _worst_bound(low: float, high: float, higher_is_better: bool, metric: str) -> str:
    """The bound on the "worse" side, in the metric's own direction and units (``-3.1 pts``)."""
    return signed(low if higher_is_better else -low, metric) + unit_of(metric)


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
    p_better: float | None = None,
    metric: str | None = None,
) -> GateDecision:
    """Classify one gated comparison.

    ``p_holm`` is the Holm-adjusted one-sided p for "new worse than base", already oriented by the caller;
    ``p_better`` the unadjusted one-sided p for "new better", from the same test family (the rule is
    symmetric: a gain needs the same evidence as a drop). ``low90``/``high90`` bound new - base in the
    metric's own units; for lower-is-better metrics (cost, latency) they are negated here so "worse" is
    always down. A directional verdict needs the test and the interval to agree, so a verdict never
    contradicts the interval printed beside it. ``margin`` is the positive delta in the same units. Strict
    mode (non-inferiority) BLOCKs whenever non-inferiority is not shown, and its reason warns when
    ``n_cases`` is below ``required_cases``.
    """
    if margin < 0:
        raise ValueError("margin must be non-negative")
    metric = metric or ("pass_rate" if higher_is_better else "cost")
    low, high = low90, high90
    if not higher_is_better and low is not None and high is not None:
        low, high = -high, -low
    shown_margin = amount_with_unit(margin, metric)

    def decide(verdict: Verdict, reason: str) -> GateDecision:
        if strict and n_cases is not None and required_cases is not None and n_cases < required_cases:
            reason += (
                f"; strict mode needs about {required_cases} cases to show non-inferiority, this suite "
                f"has {n_cases}, so it fails most neutral changes"
            )
        return GateDecision(verdict, reason, p_holm, low, high, margin, strict, n_cases, required_cases)

    drop_shown = high is None or high <= 0
    if p_holm < block_alpha and drop_shown:
        return decide(Verdict.BLOCK, f"significant regression (Holm p = {p_value(p_holm)} < {block_alpha:g})")
    if low is None or high is None:
        if strict:
            return decide(Verdict.BLOCK, "non-inferiority not shown: no interval (too few cases)")
        if p_holm < warn_alpha:
            return decide(Verdict.WARN, f"likely regression (Holm p = {p_value(p_holm)} < {warn_alpha:g})")
        return decide(Verdict.INCONCLUSIVE, "no interval (too few cases)")
    worst = _worst_bound(low, high, higher_is_better, metric)
    if strict and low < -margin:
        return decide(Verdict.BLOCK, f"non-inferiority not shown: the 90% bound {worst} is worse than the margin "
                                     f"{shown_margin}")
    if p_holm < warn_alpha and drop_shown:
        return decide(Verdict.WARN, f"likely regression (Holm p = {p_value(p_holm)} < {warn_alpha:g})")
    unconfirmed = ""
    if p_better is not None and p_better >= warn_alpha and low >= 0:
        unconfirmed = f"; a gain is not confirmed by the test (one-sided p = {p_value(p_better)} ≥ {warn_alpha:g})"
    if p_holm < warn_alpha:
        unconfirmed = f"; the test's Holm p = {p_value(p_holm)} is not confirmed by the 90% interval, which includes 0"
    if low > 0:
        if p_better is None or p_better < warn_alpha:
            why = "" if p_better is None else f"; one-sided p = {p_value(p_better)} for a gain"
            return decide(Verdict.IMPROVEMENT, f"the whole 90% interval is better than 0{why}")
        unconfirmed = f"; a gain is not confirmed by the test (one-sided p = {p_value(p_better)} ≥ {warn_alpha:g})"
    if low >= -margin:
        return decide(Verdict.NON_INFERIOR, f"no change worse than {shown_margin} (90% bound {worst}){unconfirmed}")
    return decide(
        Verdict.INCONCLUSIVE,
        f"suite too small to rule out a change worse than {shown_margin} (90% bound {worst}){unconfirmed}",
    )
