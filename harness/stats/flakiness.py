"""Within-case variance ("flakiness") and the one-way variance decomposition of repeats (spec §5.2)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.stats.intervals import Interval, json_float, pass_rate_ci, undefined_interval

PROJECTED_REPEATS: tuple[float, ...] = (1, 3, 5, 10, math.inf)
# Below this many cases the split into between- and within-case variance is too rough to show intervals for
# or to project the SE from: the report says "too few cases" instead of an ICC of exactly 0 from 10 cases.
MIN_CASES = 20
# A [0,1] outcome's variance is at most 1/4 (p(1 - p) at p = 1/2): the largest within-case variance possible.
MAX_UNIT_VARIANCE = 0.25
CASE_BOOTSTRAP = "case bootstrap percentile"
FLAKINESS_RESAMPLES = 1999


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
    icc_interval: Interval | None = None
    within_sd_interval: Interval | None = None

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
            "icc_interval": None if self.icc_interval is None else self.icc_interval.to_dict(),
            "within_sd_interval": None if self.within_sd_interval is None else self.within_sd_interval.to_dict(),
        }


def _repeats_key(k: float) -> str:
    return "inf" if math.isinf(k) else str(int(k))


def _components(
    spreads_k: np.ndarray, within_df: np.ndarray, means: np.ndarray, ks: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Within-case variance (pooled, k/(k-1)-corrected, capped at 1/4) and ICC for each row of case indices."""
    within = np.minimum(spreads_k.sum(axis=-1) / within_df.sum(axis=-1), MAX_UNIT_VARIANCE)
    k_harmonic = ks.shape[-1] / np.sum(1.0 / ks, axis=-1)
    between = np.maximum(0.0, means.var(axis=-1, ddof=1) - within / k_harmonic)
    total = between + within
    with np.errstate(invalid="ignore", divide="ignore"):
        icc = np.where(total > 0, between / np.where(total > 0, total, 1.0), np.nan)
    return within, icc


def _intervals(
    spreads: np.ndarray, means: np.ndarray, ks: np.ndarray, level: float, seed: int, k_max: int
) -> tuple[Interval, Interval]:
    """Case-bootstrap percentile intervals for the ICC and the within-case sd (cases are the unit)."""
    n = means.size
    if n < MIN_CASES:
        note = f"too few cases for an interval ({n} < {MIN_CASES})"
        return (undefined_interval(None, level, n, k_max, note), undefined_interval(None, level, n, k_max, note))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(FLAKINESS_RESAMPLES, n))
    within, icc = _components((spreads * ks)[idx], (ks - 1)[idx], means[idx], ks[idx].astype(float))
    alpha = (1.0 - level) / 2.0
    sd_low, sd_high = np.sqrt(np.quantile(within, [alpha, 1.0 - alpha]))
    icc = icc[np.isfinite(icc)]
    out_icc = (undefined_interval(None, level, n, k_max, "no variance in any resample") if icc.size == 0 else
               Interval(None, *(float(v) for v in np.quantile(icc, [alpha, 1.0 - alpha])), CASE_BOOTSTRAP, level,
                        n, k_max))  # fmt: skip
    return out_icc, Interval(None, float(sd_low), float(sd_high), CASE_BOOTSTRAP, level, n, k_max)


def variance_components(
    case_scores: Mapping[str, Sequence[float]],
    level: float = 0.95,
    top: int = 5,
    seed: int = 0,
    intervals: bool = True,
) -> VarianceComponents:
    """Decompose repeat scores per case into within-case (noise) and between-case (difficulty) variance.

    The within-case variance pools each case's p(1 - p) (binary) or variance with the k/(k - 1) correction,
    which is unbiased for the mean within-case variance but can exceed the 1/4 a [0,1] outcome allows when
    repeats are few (one pass and one fail estimate 0.5); it is capped at 1/4, so the within-case sd is at
    most 0.5. With ``intervals``, the ICC and the within-case sd get case-bootstrap intervals (seeded), and
    with fewer than ``MIN_CASES`` cases neither intervals nor SE projections are given.
    """
    items = [(case_id, np.asarray(scores, dtype=float)) for case_id, scores in case_scores.items()]
    items = [(case_id, scores) for case_id, scores in items if scores.size > 0]
    n = len(items)
    if n == 0:
        raise ValueError("no case has a score")
    ks = np.array([scores.size for _, scores in items])
    means = np.array([scores.mean() for _, scores in items])
    # ddof=0 gives p(1-p) for 0/1 scores; identical repeats are exactly 0, not rounding noise.
    spreads = np.array([scores.var() if np.ptp(scores) > 0 else 0.0 for _, scores in items])
    k_harmonic = float(n / np.sum(1.0 / ks))

    within_df = int(np.sum(ks - 1))
    within_var = min(float(np.sum(spreads * ks) / within_df), MAX_UNIT_VARIANCE) if within_df > 0 else None
    between_var: float | None = None
    icc = noise_share = None
    se_by_repeats: dict[str, float | None] = {_repeats_key(k): None for k in PROJECTED_REPEATS}
    icc_interval = within_sd_interval = None
    if within_var is not None and n >= 2:
        between_var = max(0.0, float(means.var(ddof=1)) - within_var / k_harmonic)
        total = between_var + within_var
        icc = between_var / total if total > 0 else None
        current = between_var + within_var / k_harmonic
        noise_share = (within_var / k_harmonic) / current if current > 0 else None
        if n >= MIN_CASES:
            for k in PROJECTED_REPEATS:
                se_by_repeats[_repeats_key(k)] = math.sqrt((between_var + within_var / k) / n)
        if intervals:
            icc_interval, within_sd_interval = _intervals(spreads, means, ks, level, seed, int(ks.max()))
            icc_interval = dataclasses.replace(icc_interval, estimate=icc)
            within_sd_interval = dataclasses.replace(within_sd_interval, estimate=math.sqrt(within_var))
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
        icc_interval=icc_interval,
        within_sd_interval=within_sd_interval,
    )
