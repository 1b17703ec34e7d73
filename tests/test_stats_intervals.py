"""Closed-form and hand-computed checks of the single-variant intervals (spec §3-§5)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from harness.stats.intervals import (
    BOUNDED_FALLBACK,
    CLOPPER_PEARSON,
    CLUSTER_EFF_N_WILSON,
    CR1_T,
    EFF_N_WILSON,
    INSUFFICIENT,
    WILSON,
    bounded_degenerate_ci,
    bounded_mean_ci,
    clustered_proportion_ci,
    grouped_mean_ci,
    pass_rate_ci,
    proportion_upper_bound,
    wilson_bounds,
)

Z95 = stats.norm.ppf(0.975)


def hand_wilson(x: float, n: float, z: float = Z95) -> tuple[float, float]:
    center = (x + z * z / 2) / (n + z * z)
    half = z / (n + z * z) * math.sqrt(x * (n - x) / n + z * z / 4)
    return center - half, center + half


@pytest.mark.parametrize(
    ("x", "n", "low", "high", "method"),
    [
        (48, 50, 0.863, 0.995, CLOPPER_PEARSON),
        (40, 50, 0.670, 0.888, WILSON),
        (50, 50, 0.929, 1.000, CLOPPER_PEARSON),
        (17, 20, 0.621, 0.968, CLOPPER_PEARSON),
    ],
)
def test_pass_rate_matches_spec_examples(x: int, n: int, low: float, high: float, method: str) -> None:
    ci = pass_rate_ci(x, n)
    assert ci.method == method
    assert ci.low == pytest.approx(low, abs=5e-4)
    assert ci.high == pytest.approx(high, abs=5e-4)
    assert ci.estimate == pytest.approx(x / n)
    assert (ci.n, ci.k) == (n, 1)


def test_wilson_branch_equals_closed_form() -> None:
    ci = pass_rate_ci(40, 50)
    low, high = hand_wilson(40, 50)
    assert ci.low == pytest.approx(low, abs=1e-9)
    assert ci.high == pytest.approx(high, abs=1e-9)
    w_low, w_high = wilson_bounds(0.8, 50)
    assert float(w_low) == pytest.approx(low, abs=1e-9)
    assert float(w_high) == pytest.approx(high, abs=1e-9)


def test_clopper_pearson_branch_equals_beta_quantiles() -> None:
    ci = pass_rate_ci(3, 40)
    assert ci.low == pytest.approx(stats.beta.ppf(0.025, 3, 38), abs=1e-9)
    assert ci.high == pytest.approx(stats.beta.ppf(0.975, 4, 37), abs=1e-9)


def test_guarantee_mode_always_uses_clopper_pearson() -> None:
    plain, guaranteed = pass_rate_ci(40, 50), pass_rate_ci(40, 50, guarantee=True)
    assert guaranteed.method == CLOPPER_PEARSON
    assert guaranteed.low < plain.low and guaranteed.high > plain.high


def test_all_fail_and_single_case_are_never_zero_width() -> None:
    none_pass = pass_rate_ci(0, 30)
    assert none_pass.low == 0.0 and none_pass.high == pytest.approx(1 - 0.025 ** (1 / 30))
    one = pass_rate_ci(1, 1)
    assert one.low == pytest.approx(0.025) and one.high == 1.0


def test_no_cases_gives_an_undefined_interval() -> None:
    ci = pass_rate_ci(0, 0)
    assert ci.estimate is None and not ci.defined and ci.method == INSUFFICIENT
    assert json.loads(json.dumps(ci.to_dict()))["low"] is None


def test_pass_rate_rejects_impossible_counts() -> None:
    with pytest.raises(ValueError):
        pass_rate_ci(5, 4)


def test_rule_of_three() -> None:
    assert proportion_upper_bound(0, 30) == pytest.approx(1 - 0.05 ** (1 / 30), abs=1e-12)
    assert proportion_upper_bound(0, 30) == pytest.approx(0.095, abs=5e-4)
    assert proportion_upper_bound(0, 100) < 0.030
    assert proportion_upper_bound(0, 300) == pytest.approx(3 / 300, rel=0.01)
    assert proportion_upper_bound(2, 50) == pytest.approx(stats.beta.ppf(0.95, 3, 48))
    assert proportion_upper_bound(7, 7) == 1.0


def test_bounded_degenerate_interval_paired_all_equal() -> None:
    ci = bounded_degenerate_ci(0.0, 30, lower=-1.0, upper=1.0)
    assert ci.low == pytest.approx(-0.116, abs=5e-4) and ci.high == pytest.approx(0.116, abs=5e-4)
    inner = bounded_degenerate_ci(0.7, 10)
    u = 1 - 0.025 ** (1 / 10)
    assert (inner.low, inner.high) == pytest.approx((0.7 - 0.7 * u, 0.7 + 0.3 * u))
    assert inner.method == BOUNDED_FALLBACK


def test_bounded_mean_matches_hand_computed_effective_n_wilson() -> None:
    x = np.array([0.2, 0.5, 0.9, 0.7, 0.6, 0.95, 0.4, 0.8])
    n, m, s2 = x.size, x.mean(), x.var(ddof=1)
    n_eff = max(m * (1 - m) / (s2 / n), n) * (Z95 / stats.t.ppf(0.975, n - 1)) ** 2
    low, high = hand_wilson(m * n_eff, n_eff)
    ci = bounded_mean_ci(x)
    assert ci.method == EFF_N_WILSON and ci.df == n - 1
    assert (ci.low, ci.high) == pytest.approx((low, high), abs=1e-9)


def test_bounded_mean_of_binary_values_is_t_adjusted_wilson() -> None:
    x = np.array([1.0] * 30 + [0.0] * 10)
    n_eff = 40 * (Z95 / stats.t.ppf(0.975, 39)) ** 2  # s^2 of 0/1 data is below p(1-p), so n_eff = n
    low, high = hand_wilson(0.75 * n_eff, n_eff)
    ci = bounded_mean_ci(x)
    assert (ci.low, ci.high) == pytest.approx((low, high), abs=1e-9)


def test_bounded_mean_all_equal_cases() -> None:
    interior = bounded_mean_ci([0.6] * 12)
    assert interior.method == BOUNDED_FALLBACK
    assert interior.low < 0.6 < interior.high
    all_pass = bounded_mean_ci([1.0] * 12)
    n_eff = 12 * (Z95 / stats.t.ppf(0.975, 11)) ** 2
    assert all_pass.high == 1.0
    assert all_pass.low == pytest.approx(hand_wilson(n_eff, n_eff)[0], abs=1e-9)


def test_bounded_mean_single_case_and_rescaling() -> None:
    single = bounded_mean_ci([0.4])
    assert single.estimate == 0.4 and not single.defined
    five_point = bounded_mean_ci([1, 3, 5, 4, 4, 2], bounds=(1.0, 5.0))
    unit = bounded_mean_ci([0.0, 0.5, 1.0, 0.75, 0.75, 0.25])
    assert five_point.low == pytest.approx(1 + 4 * unit.low)
    assert five_point.high == pytest.approx(1 + 4 * unit.high)
    with pytest.raises(ValueError):
        bounded_mean_ci([0.5, 1.2])


def test_clustered_proportion_matches_hand_formula() -> None:
    ks = np.array([5, 5, 3, 5, 4, 5, 5, 2])
    passes = np.array([5, 4, 1, 5, 2, 0, 3, 2])
    means = passes / ks
    n, m = means.size, means.mean()
    n_eff = min(max(m * (1 - m) / (means.var(ddof=1) / n), n), ks.sum())
    n_eff *= (Z95 / stats.t.ppf(0.975, n - 1)) ** 2
    low, high = hand_wilson(m * n_eff, n_eff)
    ci = clustered_proportion_ci(means, ks)
    assert ci.method == CLUSTER_EFF_N_WILSON and ci.k == 5
    assert (ci.low, ci.high) == pytest.approx((low, high), abs=1e-9)


def test_clustered_proportion_clips_effective_n() -> None:
    # Identical case means carry no between-case variance: n_eff is capped at the total number of trials.
    even = clustered_proportion_ci(np.full(20, 0.6), np.full(20, 5))
    n_eff = 100 * (Z95 / stats.t.ppf(0.975, 19)) ** 2
    assert (even.low, even.high) == pytest.approx(hand_wilson(0.6 * n_eff, n_eff), abs=1e-9)
    # At 100% it falls back to n cases, never to a zero-width interval.
    perfect = clustered_proportion_ci(np.ones(20), np.full(20, 5))
    n_eff = 20 * (Z95 / stats.t.ppf(0.975, 19)) ** 2
    assert perfect.high == 1.0 and perfect.low == pytest.approx(hand_wilson(n_eff, n_eff)[0], abs=1e-9)
    assert not clustered_proportion_ci([1.0], [3]).defined


def test_grouped_mean_with_singleton_groups_equals_t_interval() -> None:
    x = np.array([0.1, 0.4, 0.35, 0.8, 0.6, 0.55, 0.9, 0.2])
    ci = grouped_mean_ci(x, [f"g{i}" for i in range(x.size)])
    t_ci = stats.ttest_1samp(x, 0).confidence_interval(0.95)
    assert ci.method == CR1_T and ci.df == x.size - 1
    assert (ci.low, ci.high) == pytest.approx((t_ci.low, t_ci.high), abs=1e-12)


def test_grouped_mean_hand_computed_cr1() -> None:
    x = np.array([0.2, 0.4, 0.9, 1.0, 0.5, 0.7])
    groups = ["a", "a", "b", "b", "c", "c"]
    m = x.mean()
    sums = np.array([x[:2].sum() - 2 * m, x[2:4].sum() - 2 * m, x[4:].sum() - 2 * m])
    se = math.sqrt(3 / 2 * np.sum(sums**2)) / 6
    half = stats.t.ppf(0.975, 2) * se
    ci = grouped_mean_ci(x, groups, bounds=None)
    assert ci.df == 2 and "G=3" in (ci.note or "") and "< 20" in (ci.note or "")
    assert (ci.low, ci.high) == pytest.approx((m - half, m + half), abs=1e-12)
    assert grouped_mean_ci(x, groups).low == max(0.0, m - half)
    assert not grouped_mean_ci(x, ["a"] * 6).defined
