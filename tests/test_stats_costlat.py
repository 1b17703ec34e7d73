"""Cost and latency intervals and the Pareto summary (spec §9)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from harness.stats.costlat import (
    BOOTSTRAP_T,
    BOOTSTRAP_T_SUPPORT,
    ORDER_STATISTIC,
    calls_needed_for_upper_bound,
    cluster_quantile_ci,
    pareto_front,
    quantile_ci,
    ratio_ci,
    significantly_dominated,
    studentized_bootstrap_ci,
)


def order_statistic_ranks(n: int, q: float, level: float) -> tuple[int | None, int | None]:
    """1-based ranks per §9.2: largest l with F(l-1) <= a/2, smallest u with 1 - F(u-1) <= a/2."""
    half_alpha = (1 - level) / 2
    cdf = stats.binom.cdf(np.arange(n + 1), n, q)
    lows = [r for r in range(1, n + 1) if cdf[r - 1] <= half_alpha]
    highs = [r for r in range(1, n + 1) if 1 - cdf[r - 1] <= half_alpha]
    return (max(lows) if lows else None), (min(highs) if highs else None)


@pytest.mark.parametrize(("n", "q"), [(200, 0.95), (200, 0.5), (1000, 0.95), (51, 0.5)])
def test_quantile_ci_uses_the_order_statistics(n: int, q: float) -> None:
    x = np.sort(np.random.default_rng(n).lognormal(0, 0.5, n))
    lo_rank, hi_rank = order_statistic_ranks(n, q, 0.95)
    assert lo_rank is not None and hi_rank is not None
    ci = quantile_ci(x, q)
    assert ci.method == ORDER_STATISTIC and ci.n == n
    assert (ci.low, ci.high) == (x[lo_rank - 1], x[hi_rank - 1])
    cover = stats.binom.cdf(hi_rank - 1, n, q) - stats.binom.cdf(lo_rank - 1, n, q)
    assert cover >= 0.95


def test_p95_upper_bound_needs_72_calls() -> None:
    assert calls_needed_for_upper_bound(0.95) == 72
    assert calls_needed_for_upper_bound(0.99) == 368
    x = np.arange(1.0, 72.0)
    short = quantile_ci(x, 0.95)
    assert short.high is None and short.note == "no upper bound: need ≥ 72 calls"
    assert short.to_dict()["high"] is None
    assert quantile_ci(np.arange(1.0, 73.0), 0.95).high == 72.0
    tiny = quantile_ci([0.3], 0.5)
    # A bound that does not exist is None (null in JSON, "?" in text), never 0, and says what it needs.
    assert tiny.low is None and tiny.high is None and tiny.to_dict()["low"] is None
    assert tiny.note == "no lower bound: need ≥ 6 calls; no upper bound: need ≥ 6 calls"


def test_bootstrap_t_is_seeded_and_sensible() -> None:
    x = np.random.default_rng(1).lognormal(-6, 0.5, 80)
    a, b = studentized_bootstrap_ci(x, seed=3), studentized_bootstrap_ci(x, seed=3)
    assert a == b and a.method == BOOTSTRAP_T
    other = studentized_bootstrap_ci(x, seed=4)
    assert other.low != a.low and other.low == pytest.approx(a.low, rel=0.02)
    t_ci = stats.ttest_1samp(x, 0).confidence_interval(0.95)
    # For mildly skewed data bootstrap-t is close to t, shifted towards the long right tail.
    assert a.low == pytest.approx(t_ci.low, rel=0.05) and a.high == pytest.approx(t_ci.high, rel=0.05)
    assert a.high - x.mean() > x.mean() - a.low


def test_bootstrap_t_degenerate_and_skew_note() -> None:
    assert not studentized_bootstrap_ci([0.01]).defined
    flat = studentized_bootstrap_ci([0.02] * 10)
    assert not flat.defined and "equal" in (flat.note or "")
    skewed = studentized_bootstrap_ci(np.random.default_rng(2).lognormal(0, 1.5, 30), n_resamples=999)
    assert skewed.note is not None and "CV" in skewed.note


def test_bootstrap_t_coverage_for_moderately_skewed_costs() -> None:
    rng = np.random.default_rng(12)
    reps, n, sigma = 2000, 40, 0.5
    truth = math.exp(sigma**2 / 2)
    hits = 0
    for row in rng.lognormal(0, sigma, (reps, n)):
        ci = studentized_bootstrap_ci(row, seed=int(rng.integers(2**31)), n_resamples=999)
        hits += ci.low <= truth <= ci.high  # type: ignore[operator]
    # §10 F: 94.7-95.3% at CV 0.5; 2000 reps give an MC s.e. of about 0.5 points.
    assert 0.95 - 3 * math.sqrt(0.95 * 0.05 / reps) <= hits / reps <= 0.975


def test_cluster_quantile_matches_inverted_cdf_and_widens_for_correlated_calls() -> None:
    rng = np.random.default_rng(5)
    case_effect = rng.lognormal(0, 0.6, 150)
    calls = [eff * rng.lognormal(0, 0.1, 3) for eff in case_effect]
    ci = cluster_quantile_ci(calls, 0.95, seed=1, n_resamples=1999)
    flat = np.concatenate(calls)
    assert ci.estimate == pytest.approx(np.quantile(flat, 0.95, method="inverted_cdf"))
    assert ci.low < ci.estimate < ci.high  # type: ignore[operator]
    assert ci.n == 150 and ci.k == 3
    assert cluster_quantile_ci(calls, 0.95, seed=1, n_resamples=1999) == ci
    # Three nearly identical calls per case are worth about one: the interval is wider than the naive one.
    naive = quantile_ci(flat, 0.95)
    assert ci.high - ci.low > naive.high - naive.low  # type: ignore[operator]


def test_ratio_ci_cost_per_passing_case() -> None:
    rng = np.random.default_rng(8)
    cost = rng.lognormal(-6, 0.4, 100)
    passed = rng.binomial(1, 0.8, 100).astype(float)
    ci = ratio_ci(cost, passed, seed=2, n_resamples=1999)
    assert ci.estimate == pytest.approx(cost.sum() / passed.sum())
    assert ci.low < ci.estimate < ci.high  # type: ignore[operator]
    assert not ratio_ci([1.0, 2.0], [0.0, 0.0]).defined


def test_pareto_front_by_hand() -> None:
    quality = [0.90, 0.85, 0.80, 0.95, 0.80]
    cost = [0.010, 0.004, 0.006, 0.020, 0.004]
    # 2 is beaten by 1 (better and cheaper), 4 ties 1 on cost but is worse; 0, 1 and 3 trade off.
    assert pareto_front(quality, cost) == [True, True, False, True, False]


def test_significantly_dominated_needs_non_inferior_quality_and_cheaper_cost() -> None:
    rng = np.random.default_rng(3)
    n = 120
    base_quality = rng.uniform(0.3, 1.0, n)
    ids = [f"c{i}" for i in range(n)]
    quality = {
        "pricey": dict(zip(ids, base_quality, strict=True)),
        "cheap": dict(zip(ids, np.clip(base_quality + rng.normal(0, 0.02, n), 0, 1), strict=True)),
        "bad": dict(zip(ids, base_quality * 0.5, strict=True)),
    }
    base_cost = rng.lognormal(-6, 0.3, n)
    cost = {
        "pricey": dict(zip(ids, base_cost * 2, strict=True)),
        "cheap": dict(zip(ids, base_cost, strict=True)),
        "bad": dict(zip(ids, base_cost * 0.5, strict=True)),
    }
    flags = significantly_dominated(quality, cost, margin=0.05, seed=1, n_resamples=1999)
    assert flags == {"pricey": ["cheap"], "cheap": [], "bad": []}


def test_cost_interval_never_goes_below_zero() -> None:
    # A few expensive cases among cheap ones: the plain bootstrap-t lower bound falls below $0.
    x = np.array([1e-5] * 5 + [8e-4] * 2)
    plain = studentized_bootstrap_ci(x, seed=1, n_resamples=1999)
    assert plain.low is not None and plain.low < 0
    kept = studentized_bootstrap_ci(x, seed=1, n_resamples=1999, nonnegative=True)
    assert kept.method == BOOTSTRAP_T_SUPPORT and kept.low is not None and kept.high == plain.high
    assert 0 < kept.low < kept.estimate < kept.high  # type: ignore[operator]
    assert "percentile" in (kept.note or "")
    # Where bootstrap-t stays in the support nothing changes.
    y = np.random.default_rng(1).lognormal(-6, 0.5, 80)
    assert studentized_bootstrap_ci(y, seed=3, nonnegative=True) == studentized_bootstrap_ci(y, seed=3)
    with pytest.raises(ValueError, match="non-negative"):
        studentized_bootstrap_ci([-1.0, 2.0], nonnegative=True)


def test_cost_differences_equal_but_for_rounding_have_no_spread() -> None:
    """Costs that all rose by 3 cents, computed in floats: no MDE of $0.00000000000000003, no 17-digit Δ."""
    from harness.stats.cases import CaseTable
    from harness.stats.cost_timing_compare import cost_fields

    base = {f"c{i}": [0.1 * (i + 1)] for i in range(8)}
    cand = {k: [v[0] + 0.03] for k, v in base.items()}
    diffs = [cand[k][0] - base[k][0] for k in base]
    assert len(set(diffs)) > 1  # the floats do differ in their last bits
    out = cost_fields(CaseTable(base), CaseTable(cand), 0.0, seed=1)
    assert out["sd_diff"] == 0.0
    assert "mde_warn" not in out and any("same amount" in note for note in out["notes"])
    assert abs(out["ci95"].estimate - 0.03) < 1e-12
    assert out["ci95"].low is None and out["ci95"].high is None  # no sampling spread: no interval
    spread = {k: [v[0] + 0.03 + 0.001 * i] for i, (k, v) in enumerate(base.items())}
    real = cost_fields(CaseTable(base), CaseTable(spread), 0.0, seed=1)
    assert real["sd_diff"] > 0 and real["ci95"].low is not None  # a real spread is still measured
