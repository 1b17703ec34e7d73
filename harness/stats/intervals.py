"""Confidence intervals for one variant: pass rates, bounded means, repeats and grouped cases (spec §3–§5).

The vectorised cores (``wilson_bounds``, ``eff_n_wilson_bounds``) take numpy arrays so the Monte-Carlo
coverage tests exercise exactly the arithmetic the product uses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from harness.stats import dist

WILSON = "Wilson"
CLOPPER_PEARSON = "Clopper-Pearson"
EFF_N_WILSON = "eff-n Wilson"
CLUSTER_EFF_N_WILSON = "cluster eff-n Wilson"
BOUNDED_FALLBACK = "bounded all-equal fallback"
CR1_T = "CR1 clustered t"
INSUFFICIENT = "insufficient data"
_ROUNDING_VARIANCE = 1e-24


def json_float(value: float | None) -> float | None:
    """A JSON-safe float: numpy scalars become floats, non-finite values become None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class Interval:
    """A point estimate with its interval and everything needed to disclose how it was made.

    ``n`` is the number of units inferred over (cases, or calls for latency quantiles); ``k`` the repeats per
    case (the largest, when it varies). ``low``/``high`` are None when no bound exists (``note`` says why).
    """

    estimate: float | None
    low: float | None
    high: float | None
    method: str
    level: float
    n: int
    k: int = 1
    df: float | None = None
    note: str | None = None

    @property
    def defined(self) -> bool:
        return self.low is not None and self.high is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimate": json_float(self.estimate),
            "low": json_float(self.low),
            "high": json_float(self.high),
            "method": self.method,
            "level": float(self.level),
            "n": int(self.n),
            "k": int(self.k),
            "df": json_float(self.df),
            "note": self.note,
        }


def z_quantile(level: float) -> float:
    return dist.norm_ppf(1.0 - (1.0 - level) / 2.0)


def undefined_interval(estimate: float | None, level: float, n: int, k: int = 1, note: str = "") -> Interval:
    return Interval(estimate, None, None, INSUFFICIENT, level, n, k, None, note or INSUFFICIENT)


def wilson_bounds(p_hat: ArrayLike, n_eff: ArrayLike, level: float = 0.95) -> tuple[NDArray, NDArray]:
    """Wilson score bounds for a (possibly fractional) number of trials; vectorised."""
    p = np.asarray(p_hat, dtype=float)
    m = np.asarray(n_eff, dtype=float)
    z = z_quantile(level)
    denom = m + z * z
    center = (p * m + z * z / 2.0) / denom
    half = z / denom * np.sqrt(np.maximum(p * (1.0 - p) * m, 0.0) + z * z / 4.0)
    return np.clip(center - half, 0.0, 1.0), np.clip(center + half, 0.0, 1.0)


def degenerate_bounds(
    c: ArrayLike, n: ArrayLike, level: float = 0.95, lower: float = 0.0, upper: float = 1.0
) -> tuple[NDArray, NDArray]:
    """Bounds for n values all equal to c on [lower, upper]; vectorised (§4 bounded fallback)."""
    c_arr = np.asarray(c, dtype=float)
    # With confidence 1 - alpha at most this fraction of the population differs from c.
    u = 1.0 - ((1.0 - level) / 2.0) ** (1.0 / np.asarray(n, dtype=float))
    return c_arr - u * (c_arr - lower), c_arr + u * (upper - c_arr)


def eff_n_wilson_bounds(
    means: ArrayLike,
    variances: ArrayLike,
    n: int,
    level: float = 0.95,
    n_max: ArrayLike | None = None,
) -> tuple[NDArray, NDArray]:
    """Effective-n Wilson bounds for means of [0,1] values (sample variance ddof=1 over n units).

    Without ``n_max`` an all-equal interior sample takes the bounded fallback; with ``n_max`` (total trials
    of clustered binary data) n_eff is clipped to [n, n_max] instead, as §5.1 prescribes.
    """
    m = np.asarray(means, dtype=float)
    var = np.asarray(variances, dtype=float)
    se2 = var / n
    spread = m * (1.0 - m)
    at_bound = spread <= 0.0
    # Identical values can leave ~1e-33 of rounding in a computed variance; that is no variance.
    no_variance = var <= _ROUNDING_VARIANCE
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = np.where(no_variance, np.inf, spread / np.where(no_variance, 1.0, se2))
    # At 0% or 100% the data carry no variance information; n Bernoulli trials is the honest floor.
    n_eff = np.where(at_bound, float(n), np.maximum(raw, float(n)))
    if n_max is not None:
        n_eff = np.minimum(n_eff, np.maximum(np.asarray(n_max, dtype=float), float(n)))
    # The variance is estimated from n units, so widen as a t quantile would.
    n_eff = n_eff * (z_quantile(level) / dist.t_ppf(1.0 - (1.0 - level) / 2.0, n - 1)) ** 2
    finite = np.isfinite(n_eff)
    low, high = wilson_bounds(m, np.where(finite, n_eff, 1.0), level)
    if not np.all(finite):
        d_low, d_high = degenerate_bounds(m, n, level)
        low = np.where(finite, low, d_low)
        high = np.where(finite, high, d_high)
    return low, high


def pass_rate_ci(x: int, n: int, level: float = 0.95, guarantee: bool = False, k: int = 1) -> Interval:
    """Hybrid interval for x passes in n cases: Wilson, Clopper-Pearson when sparse or ``guarantee``."""
    if not 0 <= x <= n:
        raise ValueError(f"need 0 <= x <= n, got x={x}, n={n}")
    if n == 0:
        return undefined_interval(None, level, 0, k, "no cases")
    exact = guarantee or min(x, n - x) < 5
    low, high = dist.binom_proportion_ci(int(x), int(n), level, "exact" if exact else "wilson")
    return Interval(x / n, low, high, CLOPPER_PEARSON if exact else WILSON, level, n, k)


def proportion_upper_bound(f: int, n: int, level: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound on a failure rate after f failures in n cases."""
    if not 0 <= f <= n or n == 0:
        raise ValueError(f"need 0 <= f <= n and n > 0, got f={f}, n={n}")
    if f == n:
        return 1.0
    return dist.beta_ppf(level, f + 1, n - f)


def bounded_degenerate_ci(
    c: float, n: int, level: float = 0.95, lower: float = 0.0, upper: float = 1.0, k: int = 1
) -> Interval:
    """Interval when all n values equal c and values live in [lower, upper]: never zero width."""
    if n < 1:
        return undefined_interval(None, level, n, k, "no cases")
    low, high = degenerate_bounds(c, n, level, lower, upper)
    return Interval(float(c), float(low), float(high), BOUNDED_FALLBACK, level, n, k)


def bounded_mean_ci(
    values: ArrayLike, level: float = 0.95, bounds: tuple[float, float] = (0.0, 1.0), k: int = 1
) -> Interval:
    """Effective-n Wilson interval for the mean of values on ``bounds`` (rescaled to [0,1] inside)."""
    lo, hi = bounds
    x = np.asarray(values, dtype=float)
    n = x.size
    if n == 0:
        return undefined_interval(None, level, 0, k, "no cases")
    if np.any((x < lo) | (x > hi)):
        raise ValueError(f"values outside {bounds}")
    unit = (x - lo) / (hi - lo)
    mean = float(unit.mean())
    estimate = lo + mean * (hi - lo)
    if n == 1:
        return undefined_interval(estimate, level, 1, k, "one case: no interval")
    variance = float(unit.var(ddof=1)) if np.ptp(unit) > 0 else 0.0
    if variance == 0.0 and 0.0 < mean < 1.0:
        return bounded_degenerate_ci(estimate, n, level, lo, hi, k)
    low, high = eff_n_wilson_bounds(mean, variance, n, level)
    return Interval(
        estimate, lo + float(low) * (hi - lo), lo + float(high) * (hi - lo), EFF_N_WILSON, level, n, k, n - 1
    )


def clustered_proportion_ci(case_means: ArrayLike, ks: ArrayLike, level: float = 0.95) -> Interval:
    """Pass rate from binary repeats: eff-n Wilson over case pass rates, n_eff clipped to [n, sum k]."""
    means = np.asarray(case_means, dtype=float)
    k_arr = np.asarray(ks, dtype=int)
    if means.shape != k_arr.shape:
        raise ValueError("case_means and ks differ in length")
    n = means.size
    k_max = int(k_arr.max()) if n else 1
    if n == 0:
        return undefined_interval(None, level, 0, 1, "no cases")
    mean = float(means.mean())
    if n == 1:
        return undefined_interval(mean, level, 1, k_max, "one case: no interval")
    low, high = eff_n_wilson_bounds(mean, float(means.var(ddof=1)), n, level, n_max=int(k_arr.sum()))
    return Interval(mean, float(low), float(high), CLUSTER_EFF_N_WILSON, level, n, k_max, n - 1)


def grouped_se(values: ArrayLike, groups: Sequence[str]) -> tuple[float, int]:
    """CR1 cluster-robust SE of the plain mean of ``values`` with group labels, and the number of groups.

    SE^2 = G/(G-1) * sum_g (sum_{i in g} (x_i - mean))^2 / n^2 (Miller's clustered SE with inspect_ai's
    finite-cluster correction), applied to case-level values so each case keeps equal weight.
    """
    x = np.asarray(values, dtype=float)
    if x.size != len(groups):
        raise ValueError("values and groups differ in length")
    if x.size == 0:
        return math.nan, 0
    _, group_index = np.unique(np.asarray([str(g) for g in groups], dtype=object), return_inverse=True)
    n_groups = int(group_index.max()) + 1
    if n_groups < 2:
        return math.nan, n_groups
    group_sums = np.bincount(group_index, weights=x - x.mean(), minlength=n_groups)
    return math.sqrt(n_groups / (n_groups - 1) * float(np.sum(group_sums**2))) / x.size, n_groups


def grouped_mean_ci(
    case_means: ArrayLike,
    groups: Sequence[str],
    level: float = 0.95,
    bounds: tuple[float, float] | None = (0.0, 1.0),
    k: int = 1,
) -> Interval:
    """Mean of case means with the CR1 SE over G groups and a t quantile with G - 1 df."""
    x = np.asarray(case_means, dtype=float)
    n = x.size
    se, n_groups = grouped_se(x, groups)
    if n == 0:
        return undefined_interval(None, level, 0, k, "no cases")
    mean = float(x.mean())
    if n_groups < 2:
        return undefined_interval(mean, level, n, k, "fewer than 2 groups: no interval")
    note = f"G={n_groups} groups" + (" (< 20: interval may be unreliable)" if n_groups < 20 else "")
    if se == 0.0:
        if bounds is None:
            return undefined_interval(mean, level, n, k, "all group deviations zero: no bound")
        low, high = degenerate_bounds(mean, n_groups, level, bounds[0], bounds[1])
        return Interval(mean, float(low), float(high), BOUNDED_FALLBACK, level, n, k, None, note)
    half = dist.t_ppf(1.0 - (1.0 - level) / 2.0, n_groups - 1) * se
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return Interval(mean, low, high, CR1_T, level, n, k, n_groups - 1, note)
