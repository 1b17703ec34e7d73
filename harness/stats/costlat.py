"""Cost per case, latency quantiles and the cost-quality Pareto summary (spec §9)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from harness.stats import dist
from harness.stats.intervals import Interval, undefined_interval
from harness.stats.paired import align_cases, paired_diff_ci
from harness.stats.seeding import derive_seed

BOOTSTRAP_T = "bootstrap-t"
BOOTSTRAP_T_SUPPORT = "bootstrap-t, percentile lower bound"
ORDER_STATISTIC = "order-statistic"
CASE_BOOTSTRAP_QUANTILE = "case bootstrap percentile"
RATIO_BCA = "paired bootstrap BCa"
PAIRED_QUANTILE_BOOTSTRAP = "paired case bootstrap percentile"
DEFAULT_RESAMPLES = 9999
# Bound the resample matrix held in memory at once (rows x cases).
_CHUNK_CELLS = 1_000_000


def _chunks(total: int, width: int) -> list[int]:
    size = max(1, _CHUNK_CELLS // max(width, 1))
    return [min(size, total - start) for start in range(0, total, size)]


def studentized_bootstrap_ci(
    values: ArrayLike,
    level: float = 0.95,
    seed: int = 0,
    n_resamples: int = DEFAULT_RESAMPLES,
    k: int = 1,
    nonnegative: bool = False,
) -> Interval:
    """Bootstrap-t interval for a mean over cases (Hall 1988): scipy's bootstrap has no studentized one.

    With ``nonnegative`` (costs) the interval respects the support: where the bootstrap-t lower bound would
    fall below 0 (a few very expensive cases among cheap ones), the lower bound is the percentile bootstrap's
    from the same resamples, which is a mean of non-negative values and so never below 0.
    """
    x = np.asarray(values, dtype=float)
    if nonnegative and np.any(x < 0):
        raise ValueError("a non-negative interval needs non-negative values")
    n = x.size
    if n == 0:
        return undefined_interval(None, level, 0, k, "no cases")
    mean = float(x.mean())
    if n == 1:
        return undefined_interval(mean, level, 1, k, "one case: no interval")
    sd = float(x.std(ddof=1)) if np.ptp(x) > 0 else 0.0
    if sd == 0.0:
        return undefined_interval(mean, level, n, k, "all values equal: no sampling spread observed")
    rng = np.random.default_rng(seed)
    t_parts, mean_parts = [], []
    for rows in _chunks(n_resamples, n):
        sample = x[rng.integers(0, n, size=(rows, n))]
        spread = sample.std(axis=1, ddof=1)
        means = sample.mean(axis=1)
        mean_parts.append(means)
        # A resample of one repeated value has no scale to studentize by; it carries no t information.
        keep = np.ptp(sample, axis=1) > 0
        t_parts.append((means[keep] - mean) / (spread[keep] / math.sqrt(n)))
    t_star = np.concatenate(t_parts)
    alpha = 1.0 - level
    q_low, q_high = (float(v) for v in np.quantile(t_star, [alpha / 2.0, 1.0 - alpha / 2.0]))
    se = sd / math.sqrt(n)
    notes = []
    cv = sd / abs(mean) if mean != 0 else math.inf
    if cv > 1.0 and n <= 50:
        notes.append(f"right-skewed values (CV {cv:.1f}) with {n} cases: every interval method under-covers here")
    low, high, method = mean - q_high * se, mean - q_low * se, BOOTSTRAP_T
    if nonnegative and low < 0.0:
        low = float(np.quantile(np.concatenate(mean_parts), alpha / 2.0))
        method = BOOTSTRAP_T_SUPPORT
        notes.append("bootstrap-t lower bound fell below 0: the percentile bootstrap's lower bound is shown")
    return Interval(mean, low, high, method, level, n, k, n - 1, "; ".join(notes) or None)


def ratio_ci(
    numerator: ArrayLike,
    denominator: ArrayLike,
    level: float = 0.95,
    seed: int = 0,
    n_resamples: int = DEFAULT_RESAMPLES,
) -> Interval:
    """sum(numerator)/sum(denominator) (e.g. cost per passing case) with a paired case bootstrap (BCa)."""
    num = np.asarray(numerator, dtype=float)
    den = np.asarray(denominator, dtype=float)
    n = num.size
    total = float(den.sum())
    estimate = float(num.sum()) / total if total != 0 else None
    if n < 2 or estimate is None:
        return undefined_interval(estimate, level, n, 1, "too few cases or a zero denominator")
    from scipy import stats

    result = stats.bootstrap(
        (num, den),
        lambda a, b, axis: a.sum(axis=axis) / b.sum(axis=axis),
        paired=True,
        vectorized=True,
        method="BCa",
        n_resamples=n_resamples,
        confidence_level=level,
        rng=np.random.default_rng(seed),
    )
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    if not (math.isfinite(low) and math.isfinite(high)):
        return undefined_interval(estimate, level, n, 1, "bootstrap degenerate: no interval")
    return Interval(estimate, low, high, RATIO_BCA, level, n)


def calls_needed_for_upper_bound(q: float, level: float = 0.95) -> int:
    """Smallest number of calls for which the order-statistic upper bound of quantile q exists."""
    return math.ceil(math.log((1.0 - level) / 2.0) / math.log(q))


def calls_needed_for_lower_bound(q: float, level: float = 0.95) -> int:
    """Smallest number of calls for which the order-statistic lower bound of quantile q exists."""
    return math.ceil(math.log((1.0 - level) / 2.0) / math.log(1.0 - q))


def quantile_ci(values: ArrayLike, q: float, level: float = 0.95) -> Interval:
    """Distribution-free order-statistic interval for the q-quantile of i.i.d. values.

    A bound that does not exist at this many calls stays None (never a made-up 0), and the note says how
    many calls it needs.
    """
    x = np.asarray(values, dtype=float)
    n = x.size
    if n == 0:
        return undefined_interval(None, level, 0, 1, "no values")
    estimate = float(np.quantile(x, q))
    ci_low, ci_high = dist.order_statistic_ci(np.sort(x), q, level)
    low = ci_low if math.isfinite(ci_low) else None
    high = ci_high if math.isfinite(ci_high) else None
    missing = []
    if low is None:
        missing.append(f"no lower bound: need ≥ {calls_needed_for_lower_bound(q, level)} calls")
    if high is None:
        missing.append(f"no upper bound: need ≥ {calls_needed_for_upper_bound(q, level)} calls")
    note = "; ".join(missing) or None
    return Interval(estimate, low, high, ORDER_STATISTIC, level, n, 1, None, note)


def cluster_quantile_cis(
    values_by_case: Sequence[ArrayLike],
    qs: Sequence[float],
    level: float = 0.95,
    seed: int = 0,
    n_resamples: int = DEFAULT_RESAMPLES,
) -> list[Interval]:
    """Quantiles over all calls when a case has several correlated calls: resample cases, percentile CIs.

    All quantiles come from the same case resamples, which costs one pass instead of one per quantile.
    """
    groups = [np.asarray(v, dtype=float) for v in values_by_case if np.size(v) > 0]
    n_cases = len(groups)
    if n_cases < 2:
        return [undefined_interval(None, level, n_cases, 1, "fewer than 2 cases: no interval") for _ in qs]
    calls = np.concatenate(groups)
    case_of_call = np.repeat(np.arange(n_cases), [g.size for g in groups])
    order = np.argsort(calls, kind="stable")
    sorted_calls, sorted_case = calls[order], case_of_call[order]
    k_max = max(g.size for g in groups)
    rng = np.random.default_rng(seed)
    replicates: list[list[NDArray]] = [[] for _ in qs]
    for rows in _chunks(n_resamples, calls.size):
        counts = rng.multinomial(n_cases, np.full(n_cases, 1.0 / n_cases), size=rows).astype(np.int32)
        # Each call is weighted by how often its case was drawn; the weighted inverted-CDF quantile is the
        # first sorted call whose cumulative weight reaches q of the total.
        cumulative = np.cumsum(counts[:, sorted_case], axis=1, dtype=np.int32)
        for out, q in zip(replicates, qs, strict=True):
            out.append(sorted_calls[np.argmax(cumulative >= q * cumulative[:, -1:], axis=1)])
    note = "calls clustered by case"
    if n_cases < 100:
        note += f"; only {n_cases} cases (< 100): bootstrap quantile intervals may under-cover"
    intervals = []
    for parts, q in zip(replicates, qs, strict=True):
        low, high = _percentile_bounds(np.concatenate(parts), level)
        estimate = float(np.quantile(calls, q, method="inverted_cdf"))
        intervals.append(
            Interval(estimate, low, high, CASE_BOOTSTRAP_QUANTILE, level, n_cases, k_max, None, note)
        )
    return intervals


def cluster_quantile_ci(
    values_by_case: Sequence[ArrayLike],
    q: float,
    level: float = 0.95,
    seed: int = 0,
    n_resamples: int = DEFAULT_RESAMPLES,
) -> Interval:
    """One quantile over clustered calls; see ``cluster_quantile_cis``."""
    return cluster_quantile_cis(values_by_case, [q], level, seed, n_resamples)[0]


def _percentile_bounds(replicates: NDArray, level: float) -> tuple[float, float]:
    low, high = np.quantile(replicates, [(1.0 - level) / 2.0, 1.0 - (1.0 - level) / 2.0])
    return float(low), float(high)


def pareto_front(quality: Sequence[float], cost: Sequence[float]) -> list[bool]:
    """True for points not dominated by another with quality >= and cost <= (one strictly better)."""
    qual = np.asarray(quality, dtype=float)
    price = np.asarray(cost, dtype=float)
    no_worse = (qual[None, :] >= qual[:, None]) & (price[None, :] <= price[:, None])
    better = (qual[None, :] > qual[:, None]) | (price[None, :] < price[:, None])
    return [not bool(row.any()) for row in no_worse & better]


def significantly_dominated(
    quality: Mapping[str, Mapping[str, float]],
    cost: Mapping[str, Mapping[str, float]],
    margin: float = 0.05,
    level: float = 0.95,
    seed: int = 0,
    n_resamples: int = DEFAULT_RESAMPLES,
) -> dict[str, list[str]]:
    """For each variant, the variants that are non-inferior in quality and significantly cheaper (§9.3).

    ``quality`` and ``cost`` map variant -> case id -> per-case mean; differences are paired on case id.
    """
    names = list(quality)
    flagged: dict[str, list[str]] = {name: [] for name in names}
    for loser in names:
        for winner in names:
            if loser == winner or loser not in cost or winner not in cost:
                continue
            q_pair = align_cases(quality[winner], quality[loser])
            q_ci = paired_diff_ci(q_pair.new, q_pair.base, level)
            if q_ci.low is None or q_ci.low < -margin:
                continue
            c_pair = align_cases(cost[winner], cost[loser])
            c_ci = studentized_bootstrap_ci(
                c_pair.differences, level, derive_seed(seed, "dominance", loser, winner), n_resamples
            )
            if c_ci.high is not None and c_ci.high < 0.0:
                flagged[loser].append(winner)
    return flagged


def cost_summary(case_costs: ArrayLike) -> dict[str, float | None]:
    """Median and p90 per-case cost: the spread a skewed mean hides."""
    x = np.asarray(case_costs, dtype=float)
    if x.size == 0:
        return {"median": None, "p90": None}
    median, p90 = np.quantile(x, [0.5, 0.9])
    return {"median": float(median), "p90": float(p90)}


def paired_quantile_diff_cis(
    new: ArrayLike,
    base: ArrayLike,
    q: float = 0.95,
    levels: Sequence[float] = (0.95,),
    seed: int = 0,
    n_resamples: int = DEFAULT_RESAMPLES,
) -> list[Interval]:
    """q-quantile(new) - q-quantile(base) over paired cases, with paired case bootstrap percentile CIs
    (one set of resamples serves every level)."""
    x_new = np.asarray(new, dtype=float)
    x_base = np.asarray(base, dtype=float)
    n = x_new.size
    if n < 2:
        return [undefined_interval(None, lv, n, 1, "fewer than 2 shared cases: no interval") for lv in levels]
    estimate = float(np.quantile(x_new, q) - np.quantile(x_base, q))
    rng = np.random.default_rng(seed)
    parts = []
    for rows in _chunks(n_resamples, n):
        idx = rng.integers(0, n, size=(rows, n))
        parts.append(np.quantile(x_new[idx], q, axis=1) - np.quantile(x_base[idx], q, axis=1))
    replicates = np.concatenate(parts)
    note = None if n >= 100 else f"only {n} cases (< 100): bootstrap quantile intervals may under-cover"
    return [
        Interval(
            estimate, *_percentile_bounds(replicates, lv), PAIRED_QUANTILE_BOOTSTRAP, lv, n, 1, None, note
        )
        for lv in levels
    ]


def paired_quantile_diff_ci(
    new: ArrayLike,
    base: ArrayLike,
    q: float = 0.95,
    level: float = 0.95,
    seed: int = 0,
    n_resamples: int = DEFAULT_RESAMPLES,
) -> Interval:
    return paired_quantile_diff_cis(new, base, q, [level], seed, n_resamples)[0]


def paired_quantile_test(
    new: ArrayLike,
    base: ArrayLike,
    q: float = 0.95,
    tolerance: float = 0.0,
    seed: int = 0,
    n_resamples: int = DEFAULT_RESAMPLES,
) -> float:
    """One-sided p for "new's q-quantile is above base's by more than tolerance", swapping within pairs."""
    x_new = np.asarray(new, dtype=float) - tolerance
    x_base = np.asarray(base, dtype=float)
    if x_new.size < 2:
        return 1.0
    from scipy import stats

    result = stats.permutation_test(
        (x_new, x_base),
        lambda a, b, axis: np.quantile(a, q, axis=axis) - np.quantile(b, q, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=n_resamples,
        alternative="greater",
        rng=np.random.default_rng(seed),
    )
    return float(result.pvalue)
