"""Within-case variance ("flakiness") and the one-way variance decomposition of repeats (spec §5.2)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.stats.intervals import Interval, json_float, pass_rate_ci

PROJECTED_REPEATS: tuple[float, ...] = (1, 3, 5, 10, math.inf)


@dataclass(frozen=True)
class FlakyCase:
    case_id: str
    mean: float
    spread: float  # mean squared deviation of its repeats; p(1 - p) for binary scores
    repeats: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "mean": float(self.mean),
            "spread": float(self.spread),
            "repeats": int(self.repeats),
        }


@dataclass(frozen=True)
class VarianceComponents:
    """Miller's Var(s) = Var(x) + E[sigma_i^2], estimated from per-case repeats.

    ``within_var`` is None when no case has two repeats (flakiness unobserved); the derived numbers are then
    None too. ``se_by_repeats`` maps k' ("1", "3", "5", "10", "inf") to the projected SE of the mean.
    """

    n_cases: int
    k_min: int
    k_max: int
    k_harmonic: float
    within_var: float | None
    within_sd: float | None
    between_var: float | None
    icc: float | None
    noise_share: float | None
    se_by_repeats: dict[str, float | None]
    flaky_cases: int
    flaky_rate: Interval
    flakiest: list[FlakyCase] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_cases": self.n_cases,
            "k_min": self.k_min,
            "k_max": self.k_max,
            "k_harmonic": float(self.k_harmonic),
            "within_var": json_float(self.within_var),
            "within_sd": json_float(self.within_sd),
            "between_var": json_float(self.between_var),
            "icc": json_float(self.icc),
            "noise_share": json_float(self.noise_share),
            "se_by_repeats": {key: json_float(value) for key, value in self.se_by_repeats.items()},
            "flaky_cases": self.flaky_cases,
            "flaky_rate": self.flaky_rate.to_dict(),
            "flakiest": [case.to_dict() for case in self.flakiest],
        }


def _repeats_key(k: float) -> str:
    return "inf" if math.isinf(k) else str(int(k))


def variance_components(
    case_scores: Mapping[str, Sequence[float]], level: float = 0.95, top: int = 5
) -> VarianceComponents:
    """Decompose repeat scores per case into within-case (noise) and between-case (difficulty) variance."""
    items = [(case_id, np.asarray(scores, dtype=float)) for case_id, scores in case_scores.items()]
    items = [(case_id, scores) for case_id, scores in items if scores.size > 0]
    n = len(items)
    if n == 0:
        raise ValueError("no case has a score")
    ks = np.array([scores.size for _, scores in items])
    means = np.array([scores.mean() for _, scores in items])
    # ddof=0 gives p(1-p) for 0/1 scores; identical repeats are exactly 0, not rounding noise.
    spreads = np.array([scores.var() if np.ptp(scores) > 0 else 0.0 for _, scores in items])
    from scipy import stats  # only runs with repeats get here

    k_harmonic = float(stats.hmean(ks))

    within_df = int(np.sum(ks - 1))
    within_var = float(np.sum(spreads * ks) / within_df) if within_df > 0 else None
    between_var: float | None = None
    icc = noise_share = None
    se_by_repeats: dict[str, float | None] = {_repeats_key(k): None for k in PROJECTED_REPEATS}
    if within_var is not None and n >= 2:
        between_var = max(0.0, float(means.var(ddof=1)) - within_var / k_harmonic)
        total = between_var + within_var
        icc = between_var / total if total > 0 else None
        current = between_var + within_var / k_harmonic
        noise_share = (within_var / k_harmonic) / current if current > 0 else None
        for k in PROJECTED_REPEATS:
            se_by_repeats[_repeats_key(k)] = math.sqrt((between_var + within_var / k) / n)

    # A case is flaky when its repeats disagree; one repeat cannot disagree, so only k >= 2 cases count.
    repeated = ks >= 2
    flaky = repeated & (spreads > 0.0)
    flaky_rate = pass_rate_ci(int(flaky.sum()), int(repeated.sum()), level, k=int(ks.max()))
    order = np.argsort(-spreads, kind="stable")
    flakiest = [
        FlakyCase(items[i][0], float(means[i]), float(spreads[i]), int(ks[i]))
        for i in order[:top]
        if flaky[i]
    ]
    return VarianceComponents(
        n_cases=n,
        k_min=int(ks.min()),
        k_max=int(ks.max()),
        k_harmonic=k_harmonic,
        within_var=within_var,
        within_sd=math.sqrt(within_var) if within_var is not None else None,
        between_var=between_var,
        icc=icc,
        noise_share=noise_share,
        se_by_repeats=se_by_repeats,
        flaky_cases=int(flaky.sum()),
        flaky_rate=flaky_rate,
        flakiest=flakiest,
    )
