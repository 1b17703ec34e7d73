"""Paired comparison of two variants on the same cases, one-sided tests and Holm (spec §6, §7)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from harness.report.format import p_value as shown_p
from harness.stats import dist
from harness.stats.intervals import (
    BOUNDED_FALLBACK,
    Interval,
    degenerate_bounds,
    json_float,
    undefined_interval,
)

PAIRED_T = "paired t"
MCNEMAR_MIDP = "mid-p McNemar"
SIGN_FLIP = "sign-flip permutation"
ONE_SAMPLE_T = "paired t (one-sided)"
SIGN_FLIP_MIN_CASES = 20
# Every sign pattern is enumerated below SIGN_FLIP_MIN_CASES (2**19 sums: a few MB and milliseconds), so the
# sign-flip p is exact wherever the gate uses it; larger samples (an explicit call) draw seeded patterns.
SIGN_FLIP_EXACT_MAX_CASES = SIGN_FLIP_MIN_CASES - 1
SIGN_FLIP_RESAMPLES = 99_999


@dataclass(frozen=True)
class Alignment:
    """Per-case values of two variants over their shared cases, plus the cases only one side has."""

    case_ids: list[str]
    new: NDArray
    base: NDArray
    only_new: list[str]
    only_base: list[str]

    @property
    def differences(self) -> NDArray:
        return self.new - self.base


def align_cases(new: Mapping[str, float], base: Mapping[str, float]) -> Alignment:
    shared = sorted(set(new) & set(base))
    return Alignment(
        case_ids=shared,
        new=np.array([new[c] for c in shared], dtype=float),
        base=np.array([base[c] for c in shared], dtype=float),
        only_new=sorted(set(new) - set(base)),
        only_base=sorted(set(base) - set(new)),
    )


def paired_diff_bounds(
    differences: ArrayLike, level: float = 0.95, bounds: tuple[float, float] | None = (-1.0, 1.0)
) -> tuple[NDArray, NDArray]:
    """Paired t bounds on the mean of each row of differences, with the bounded all-equal fallback.

    Rows whose differences are all equal get the §4 fallback on ``bounds`` (NaN when ``bounds`` is None).
    """
    d = np.atleast_2d(np.asarray(differences, dtype=float))
    n = d.shape[1]
    mean = d.mean(axis=1)
    sd = d.std(axis=1, ddof=1)
    half = dist.t_ppf(1.0 - (1.0 - level) / 2.0, n - 1) * sd / math.sqrt(n)
    low, high = mean - half, mean + half
    constant = np.ptp(d, axis=1) == 0.0
    if np.any(constant):
        if bounds is None:
            f_low = f_high = np.full_like(mean, np.nan)
        else:
            f_low, f_high = degenerate_bounds(mean, n, level, bounds[0], bounds[1])
        low, high = np.where(constant, f_low, low), np.where(constant, f_high, high)
    return low, high


def paired_diff_ci(
    new: ArrayLike,
    base: ArrayLike,
    level: float = 0.95,
    bounds: tuple[float, float] | None = (-1.0, 1.0),
    k: int = 1,
) -> Interval:
    """Interval for mean(new - base) over aligned cases: ``ttest_rel``'s interval or the bounded fallback."""
    x_new = np.asarray(new, dtype=float)
    x_base = np.asarray(base, dtype=float)
    n = x_new.size
    if n == 0:
        return undefined_interval(None, level, 0, k, "no shared cases")
    d = x_new - x_base
    delta = float(d.mean())
    if n == 1:
        return undefined_interval(delta, level, 1, k, "one shared case: no interval")
    if np.all(d == d[0]):
        if bounds is None:
            return undefined_interval(delta, level, n, k, "all differences equal: no bound for this metric")
        low, high = degenerate_bounds(delta, n, level, bounds[0], bounds[1])
        return Interval(delta, float(low), float(high), BOUNDED_FALLBACK, level, n, k)
    from scipy import stats

    ci = stats.ttest_rel(x_new, x_base).confidence_interval(level)
    low, high = float(ci.low), float(ci.high)
    note = None
    if bounds is not None and (low < bounds[0] or high > bounds[1]):
        # A difference of [0,1] values lives in [-1, 1]; the t interval knows nothing of that.
        low, high = max(low, bounds[0]), min(high, bounds[1])
        note = f"clipped to [{bounds[0]:g}, {bounds[1]:g}]"
    return Interval(delta, low, high, PAIRED_T, level, n, k, n - 1, note)


def mcnemar_midp(regressions: ArrayLike, fixes: ArrayLike, alternative: str = "greater") -> NDArray | float:
    """Mid-p McNemar p-value; ``greater`` tests "new worse" (more pass->fail than fail->pass). Vectorised."""
    from scipy import stats

    n01 = np.asarray(regressions)
    m = n01 + np.asarray(fixes)
    if alternative == "greater":
        p = stats.binom.sf(n01 - 1, m, 0.5) - 0.5 * stats.binom.pmf(n01, m, 0.5)
    elif alternative == "two-sided":
        low = np.minimum(n01, m - n01)
        p = np.minimum(1.0, 2.0 * (stats.binom.cdf(low, m, 0.5) - 0.5 * stats.binom.pmf(low, m, 0.5)))
    else:
        raise ValueError(f"alternative must be 'greater' or 'two-sided', got {alternative!r}")
    return float(p) if np.ndim(p) == 0 else p


def mcnemar_exact(regressions: int, fixes: int, alternative: str = "greater") -> float:
    """Exact conditional McNemar p-value (conservative; reported, not used for decisions)."""
    m = regressions + fixes
    if m == 0:
        return 1.0
    from scipy import stats

    return float(stats.binomtest(regressions, m, 0.5, alternative=alternative).pvalue)


def _sign_flip_sums(d: NDArray) -> NDArray:
    """The sum of d under each of the 2**n sign patterns (built by doubling: 2**19 floats is 4 MB)."""
    sums = np.zeros(1)
    for value in d:
        sums = np.concatenate((sums + value, sums - value))
    return sums


def sign_flip_test(
    differences: ArrayLike,
    tolerance: float = 0.0,
    seed: int = 0,
    n_resamples: int | None = None,
    alternative: str = "less",
) -> float:
    """One-sided p for mean(d) < -tolerance (``less``) or mean(d) > 0 (``greater``) by flipping signs.

    Exact by enumerating every sign pattern up to ``SIGN_FLIP_EXACT_MAX_CASES`` cases (or whenever 2**n is
    within ``n_resamples``); beyond that ``n_resamples`` seeded random patterns (default 99,999).
    """
    if alternative not in ("less", "greater"):
        raise ValueError(f"alternative must be 'less' or 'greater', got {alternative!r}")
    d = np.asarray(differences, dtype=float) + tolerance
    if d.size == 0:
        return 1.0  # no paired case: no evidence of a change
    if alternative == "greater":
        d = -d
    observed = float(d.sum())
    # Sums that equal the observed one up to rounding count as ties (as scipy's permutation_test does).
    slack = 1e-9 * max(1.0, float(np.abs(d).sum()))
    exact_limit = SIGN_FLIP_EXACT_MAX_CASES if n_resamples is None else max(
        SIGN_FLIP_EXACT_MAX_CASES, int(math.log2(max(n_resamples, 1))))
    if d.size <= exact_limit:
        return float(np.count_nonzero(_sign_flip_sums(d) <= observed + slack)) / 2.0**d.size
    from scipy import stats

    result = stats.permutation_test(
        (d,),
        lambda x, axis: np.sum(x, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=n_resamples or SIGN_FLIP_RESAMPLES,
        alternative="less",
        rng=np.random.default_rng(seed),
    )
    return float(result.pvalue)


def smallest_p(n: int, method: str) -> float:
    """The smallest one-sided p the test can give with n cases: a discrete test may never reach a level."""
    if n < 1:
        return 1.0
    if method == MCNEMAR_MIDP:
        return 0.5 ** (n + 1)  # every case discordant, all one way: P(X = n) / 2
    if method == SIGN_FLIP:
        return 0.5**n
    return 0.0


def one_sided_p(
    differences: ArrayLike,
    binary_single: bool,
    tolerance: float = 0.0,
    seed: int = 0,
    alternative: str = "less",
) -> tuple[float, str]:
    """p-value for H1: mean difference < -tolerance (``less``, "new worse") or > 0 (``greater``, "new
    better"), with the test the gate rule (§8.3) prescribes; the same test family serves both directions."""
    d = np.asarray(differences, dtype=float)
    n = d.size
    if alternative == "greater":
        tolerance = 0.0
    if n == 0:
        return 1.0, "no shared cases"
    if binary_single and tolerance == 0.0:
        worse, better = int(np.sum(d < 0)), int(np.sum(d > 0))
        if alternative == "greater":
            worse, better = better, worse
        return float(mcnemar_midp(worse, better)), MCNEMAR_MIDP
    # The t statistic is undefined with no spread; the sign-flip test handles that exactly.
    if n < SIGN_FLIP_MIN_CASES or np.all(d == d[0]):
        return sign_flip_test(d, tolerance, seed, alternative=alternative), SIGN_FLIP
    from scipy import stats

    return float(stats.ttest_1samp(d + tolerance, 0.0, alternative=alternative).pvalue), ONE_SAMPLE_T


def agree_with_tests(interval: Interval, p_worse: float | None, p_better: float | None) -> Interval:
    """Widen a two-sided interval to reach 0 when it excludes 0 on a side its one-sided test does not
    confirm at the matching level ((1 - level)/2), so an interval never claims a change the verdict's
    test does not: a wider interval covers at least as often."""
    if interval.low is None or interval.high is None:
        return interval
    alpha = (1.0 - interval.level) / 2.0
    low, high = interval.low, interval.high
    reasons = []
    if high < 0.0 and p_worse is not None and p_worse >= alpha:
        high = 0.0
        reasons.append(f"upper bound raised to 0: the test does not confirm a drop (p = {shown_p(p_worse)})")
    if low > 0.0 and p_better is not None and p_better >= alpha:
        low = 0.0
        reasons.append(f"lower bound lowered to 0: the test does not confirm a gain (p = {shown_p(p_better)})")
    if not reasons:
        return interval
    note = "; ".join([*([interval.note] if interval.note else []), *reasons])
    return Interval(interval.estimate, low, high, interval.method, interval.level, interval.n, interval.k,
                    interval.df, note)


def holm_adjust(pvalues: Sequence[float] | ArrayLike) -> NDArray:
    """Holm step-down adjusted p-values (family-wise error control under any dependence)."""
    p = np.asarray(pvalues, dtype=float)
    m = p.size
    order = np.argsort(p, kind="stable")
    stepped = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(stepped)
    return adjusted


def bonferroni_level(level: float, m: int) -> float:
    """Per-interval confidence level giving simultaneous coverage ``level`` over m intervals."""
    return 1.0 - (1.0 - level) / max(m, 1)


@dataclass(frozen=True)
class Mover:
    case_id: str
    base: float
    new: float

    @property
    def change(self) -> float:
        return self.new - self.base

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "base": float(self.base),
            "new": float(self.new),
            "change": float(self.change),
        }


@dataclass(frozen=True)
class PairedAnalysis:
    """Everything §6 asks to report for one paired comparison (new - base, natural direction)."""

    n: int
    delta: float | None
    ci95: Interval
    ci90: Interval
    p_value: float
    p_method: str
    p_better: float
    sd_diff: float | None
    correlation: float | None
    variance_reduction: float | None
    only_new: list[str]
    only_base: list[str]
    regressions: list[str] = field(default_factory=list)  # pass -> fail (binary, one sample per case)
    fixes: list[str] = field(default_factory=list)  # fail -> pass
    movers: list[Mover] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "delta": json_float(self.delta),
            "ci95": self.ci95.to_dict(),
            "ci90": self.ci90.to_dict(),
            "p_value": float(self.p_value),
            "p_method": self.p_method,
            "p_better": float(self.p_better),
            "sd_diff": json_float(self.sd_diff),
            "correlation": json_float(self.correlation),
            "variance_reduction": json_float(self.variance_reduction),
            "only_new": list(self.only_new),
            "only_base": list(self.only_base),
            "regressions": list(self.regressions),
            "fixes": list(self.fixes),
            "movers": [m.to_dict() for m in self.movers],
        }


def paired_comparison(
    new: Mapping[str, float],
    base: Mapping[str, float],
    *,
    binary_single: bool = False,
    tolerance: float = 0.0,
    seed: int = 0,
    bounds: tuple[float, float] | None = (-1.0, 1.0),
    mover_threshold: float = 0.25,
    k: int = 1,
) -> PairedAnalysis:
    """Align on case id and analyse d_i = new_i - base_i (higher is better for the test's direction)."""
    aligned = align_cases(new, base)
    d = aligned.differences
    n = d.size
    p_value, p_method = one_sided_p(d, binary_single, tolerance, seed)
    p_better, _ = one_sided_p(d, binary_single, 0.0, seed, "greater")
    p_worse = p_value if tolerance == 0.0 else one_sided_p(d, binary_single, 0.0, seed)[0]
    ci95 = agree_with_tests(paired_diff_ci(aligned.new, aligned.base, 0.95, bounds, k), p_worse, p_better)
    ci90 = agree_with_tests(paired_diff_ci(aligned.new, aligned.base, 0.90, bounds, k), p_worse, p_better)
    sd_diff = (float(d.std(ddof=1)) if np.ptp(d) > 0 else 0.0) if n >= 2 else None
    correlation = variance_reduction = None
    if n >= 3 and np.ptp(aligned.new) > 0 and np.ptp(aligned.base) > 0:
        from scipy import stats

        correlation = float(stats.pearsonr(aligned.new, aligned.base).statistic)
    if n >= 2:
        total = float(aligned.new.var(ddof=1) + aligned.base.var(ddof=1))
        variance_reduction = 1.0 - float(d.var(ddof=1)) / total if total > 0 else None
    ids = np.array(aligned.case_ids, dtype=object)
    regressions = fixes = []
    if binary_single:
        regressions = [str(c) for c in ids[(aligned.base == 1) & (aligned.new == 0)]]
        fixes = [str(c) for c in ids[(aligned.base == 0) & (aligned.new == 1)]]
    order = np.argsort(d, kind="stable")
    movers = [
        Mover(str(ids[i]), float(aligned.base[i]), float(aligned.new[i]))
        for i in order
        if abs(d[i]) > mover_threshold
    ]
    return PairedAnalysis(
        n=n,
        delta=float(d.mean()) if n else None,
        ci95=ci95,
        ci90=ci90,
        p_value=p_value,
        p_method=p_method,
        p_better=p_better,
        sd_diff=sd_diff,
        correlation=correlation,
        variance_reduction=variance_reduction,
        only_new=aligned.only_new,
        only_base=aligned.only_base,
        regressions=regressions,
        fixes=fixes,
        movers=movers,
    )
