"""Paired comparisons, one-sided tests and Holm against hand-computed values (spec §6, §7)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from harness.stats.intervals import BOUNDED_FALLBACK
from harness.stats.paired import (
    MCNEMAR_MIDP,
    ONE_SAMPLE_T,
    PAIRED_T,
    SIGN_FLIP,
    align_cases,
    bonferroni_level,
    holm_adjust,
    mcnemar_exact,
    mcnemar_midp,
    one_sided_p,
    paired_comparison,
    paired_diff_bounds,
    paired_diff_ci,
    sign_flip_test,
)


def test_all_equal_differences_use_bounded_fallback() -> None:
    ones = np.ones(30)
    ci = paired_diff_ci(ones, ones)
    assert ci.method == BOUNDED_FALLBACK and ci.estimate == 0.0
    assert (ci.low, ci.high) == pytest.approx((-0.116, 0.116), abs=5e-4)
    low, high = paired_diff_bounds(np.zeros((2, 30)))
    assert low == pytest.approx([ci.low] * 2) and high == pytest.approx([ci.high] * 2)
    assert not paired_diff_ci(np.ones(5), np.zeros(5), bounds=None).defined


def test_paired_t_interval_by_hand() -> None:
    new = np.array([0.9, 0.4, 1.0, 0.7, 0.2, 0.6, 0.8])
    base = np.array([0.8, 0.6, 0.9, 0.4, 0.3, 0.6, 0.5])
    d = new - base
    half = stats.t.ppf(0.95, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size)
    ci = paired_diff_ci(new, base, level=0.90)
    assert ci.method == PAIRED_T and ci.df == 6
    assert (ci.low, ci.high) == pytest.approx((d.mean() - half, d.mean() + half), abs=1e-12)
    assert not paired_diff_ci([0.5], [0.2]).defined


def test_mcnemar_midp_by_hand() -> None:
    # 5 regressions, 1 fix: X ~ Bin(6, 1/2); P(X >= 5) = 7/64, P(X = 5) = 6/64.
    assert mcnemar_midp(5, 1) == pytest.approx(7 / 64 - 3 / 64)
    # Two-sided: 2 * [P(X <= 1) - P(X = 1) / 2] = 2 * (7/64 - 3/64).
    assert mcnemar_midp(5, 1, "two-sided") == pytest.approx(8 / 64)
    assert mcnemar_exact(5, 1) == pytest.approx(7 / 64)
    assert mcnemar_midp(np.array([5, 0]), np.array([1, 0])) == pytest.approx([4 / 64, 0.5])
    assert mcnemar_exact(0, 0) == 1.0
    with pytest.raises(ValueError):
        mcnemar_midp(1, 1, "less")


def test_sign_flip_is_exact_enumeration_for_small_n() -> None:
    d = np.array([-0.4, -0.2, 0.1, -0.6, -0.3, 0.2, -0.1, -0.5])
    means = [np.mean(d * np.array(signs)) for signs in itertools.product([1, -1], repeat=d.size)]
    exact = np.mean(np.array(means) <= d.mean() + 1e-12)
    assert sign_flip_test(d) == pytest.approx(exact)


def test_sign_flip_on_binary_differences_equals_exact_mcnemar() -> None:
    d = np.array([-1.0] * 6 + [1.0] * 2 + [0.0] * 7)
    assert sign_flip_test(d) == pytest.approx(mcnemar_exact(6, 2))


def test_sign_flip_large_n_is_seeded() -> None:
    rng = np.random.default_rng(0)
    d = rng.normal(-0.05, 0.3, 40)
    assert sign_flip_test(d, seed=4) == sign_flip_test(d, seed=4)
    assert sign_flip_test(d, seed=4) == pytest.approx(
        stats.ttest_1samp(d, 0, alternative="less").pvalue, abs=0.03
    )


def test_one_sided_p_routes_to_the_prescribed_test() -> None:
    binary = np.array([-1.0] * 4 + [1.0] + [0.0] * 30)
    p, method = one_sided_p(binary, binary_single=True)
    assert method == MCNEMAR_MIDP and p == pytest.approx(mcnemar_midp(4, 1))
    small = np.array([-0.2, 0.0, -0.4, 0.2, -0.2, -0.6, 0.0, -0.2, 0.4, -0.4])
    p, method = one_sided_p(small, binary_single=False)
    assert method == SIGN_FLIP and p == pytest.approx(sign_flip_test(small))
    rng = np.random.default_rng(1)
    large = rng.normal(-0.02, 0.2, 60)
    p, method = one_sided_p(large, binary_single=False, tolerance=0.01)
    assert method == ONE_SAMPLE_T
    assert p == pytest.approx(stats.ttest_1samp(large + 0.01, 0, alternative="less").pvalue)
    # A tolerance makes a given drop less significant.
    assert p > one_sided_p(large, binary_single=False)[0]
    # With no spread the t statistic is undefined; the sign-flip test still answers.
    p, method = one_sided_p(np.zeros(25), binary_single=False)
    assert method == SIGN_FLIP and p == 1.0


def test_holm_against_hand_values() -> None:
    # Sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, max(0.04*1, 0.06) = 0.06.
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm_adjust([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm_adjust([0.2]) == pytest.approx([0.2])
    assert holm_adjust([]).size == 0
    assert bonferroni_level(0.95, 5) == pytest.approx(0.99)


def test_alignment_reports_cases_on_one_side_only() -> None:
    aligned = align_cases({"a": 1.0, "b": 0.0, "c": 0.5}, {"b": 1.0, "c": 0.5, "d": 0.0})
    assert aligned.case_ids == ["b", "c"]
    assert aligned.only_new == ["a"] and aligned.only_base == ["d"]
    assert aligned.differences == pytest.approx([-1.0, 0.0])


def test_paired_comparison_lists_flips_and_movers() -> None:
    base = {f"c{i}": 1.0 for i in range(30)} | {"f1": 0.0, "f2": 0.0}
    new = dict(base) | {"c3": 0.0, "c7": 0.0, "f1": 1.0, "extra": 1.0}
    result = paired_comparison(new, base, binary_single=True)
    assert result.n == 32 and result.only_new == ["extra"] and result.only_base == []
    assert result.regressions == ["c3", "c7"] and result.fixes == ["f1"]
    assert result.p_method == MCNEMAR_MIDP and result.p_value == pytest.approx(mcnemar_midp(2, 1))
    assert [m.case_id for m in result.movers] == ["c3", "c7", "f1"]
    assert result.delta == pytest.approx(-1 / 32)
    assert result.ci90.low is not None and result.ci90.high is not None
    assert result.ci90.low < result.delta < result.ci90.high


def test_paired_comparison_reports_correlation_and_variance_reduction() -> None:
    rng = np.random.default_rng(2)
    difficulty = rng.uniform(0, 1, 50)
    base = {f"c{i}": float(v) for i, v in enumerate(difficulty)}
    new = {f"c{i}": float(np.clip(v - 0.05 + rng.normal(0, 0.05), 0, 1)) for i, v in enumerate(difficulty)}
    result = paired_comparison(new, base, mover_threshold=1.0)
    assert result.correlation is not None and result.correlation > 0.9
    assert result.variance_reduction is not None and result.variance_reduction > 0.8
    assert result.movers == [] and result.regressions == []
    assert result.ci95.low < result.ci90.low < result.delta < result.ci90.high < result.ci95.high  # type: ignore[operator]


def test_sign_flip_with_fewer_than_two_cases_enumerates_by_hand() -> None:
    assert sign_flip_test([]) == 1.0
    assert sign_flip_test([0.5]) == 1.0
    assert sign_flip_test([-0.5]) == 0.5  # of the two sign patterns, only the observed one is as low
    assert sign_flip_test([-0.5], tolerance=0.5) == 1.0
