"""Seeded Monte-Carlo checks that each interval method covers the truth at its nominal level (spec §10),
and that the gate's one-sided test fails an unchanged variant at most at its nominal rate.

Each check averages coverage over a small grid of settings (the spec's "grid-mean") and allows about three
Monte-Carlo standard errors around the band the spec reports for the method.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from harness.stats.gate_rule import Verdict, gate_verdict
from harness.stats.intervals import eff_n_wilson_bounds, pass_rate_ci
from harness.stats.paired import holm_adjust, one_sided_p, paired_diff_bounds

LEVEL = 0.95
TRUE_DELTA = -0.05


def mc_se(p: float, draws: int) -> float:
    return math.sqrt(p * (1.0 - p) / draws)


def test_pass_rate_hybrid_covers_binary_truth() -> None:
    rng = np.random.default_rng(20240601)
    reps = 10000
    coverages = []
    for n in (20, 50, 200):
        # Bounds for every possible count once, then look up each simulated count.
        table = [pass_rate_ci(x, n) for x in range(n + 1)]
        lows = np.array([ci.low for ci in table])
        highs = np.array([ci.high for ci in table])
        for p in np.linspace(0.04, 0.96, 10):
            x = rng.binomial(n, p, size=reps)
            coverages.append(np.mean((lows[x] <= p) & (p <= highs[x])))
    grid_mean = float(np.mean(coverages))
    slack = 3 * mc_se(LEVEL, reps * len(coverages))
    # §10 A: the hybrid's grid mean is 95.0-96.2% for n >= 20 (Clopper-Pearson makes it conservative).
    assert 0.95 - slack <= grid_mean <= 0.965 + slack
    # No cell may show the deep boundary dips of plain Wilson (84-90%).
    assert min(coverages) >= 0.92 - 3 * mc_se(0.92, reps)


def _scores(kind: str, rng: np.random.Generator, shape: tuple[int, int]) -> tuple[NDArray, float]:
    if kind == "beta(2,2)":
        return rng.beta(2, 2, shape), 0.5
    if kind == "beta(8,1.5)":
        return rng.beta(8, 1.5, shape), 8 / 9.5
    if kind == "judge 5-pt":
        levels, probs = np.array([0, 0.25, 0.5, 0.75, 1]), np.array([0.05, 0.03, 0.07, 0.15, 0.70])
        return rng.choice(levels, size=shape, p=probs), float(levels @ probs)
    zero = rng.random(shape) < 0.15
    return np.where(zero, 0.0, rng.beta(5, 2, shape)), 0.85 * 5 / 7


def test_eff_n_wilson_covers_bounded_score_means() -> None:
    rng = np.random.default_rng(7)
    reps = 5000
    coverages = []
    for kind in ("beta(2,2)", "beta(8,1.5)", "judge 5-pt", "zero-inflated"):
        for n in (30, 100):
            x, truth = _scores(kind, rng, (reps, n))
            low, high = eff_n_wilson_bounds(x.mean(axis=1), x.var(axis=1, ddof=1), n, LEVEL)
            coverages.append(np.mean((low <= truth) & (truth <= high)))
    grid_mean = float(np.mean(coverages))
    slack = 3 * mc_se(LEVEL, reps * len(coverages))
    assert 0.94 - slack <= grid_mean <= 0.96 + slack
    assert min(coverages) >= 0.93 - 3 * mc_se(0.93, reps)


def test_cluster_eff_n_wilson_covers_pass_rate_with_repeats() -> None:
    rng = np.random.default_rng(11)
    reps, n, k = 5000, 50, 5
    coverages = []
    naive = []
    for icc in (0.2, 0.6):
        for mu in (0.2, 0.5, 0.9):
            # Per-case difficulty p_i ~ Beta with mean mu and intra-class correlation icc.
            total = (1.0 - icc) / icc
            p = rng.beta(mu * total, (1.0 - mu) * total, size=(reps, n))
            case_means = rng.binomial(k, p) / k
            low, high = eff_n_wilson_bounds(
                case_means.mean(axis=1), case_means.var(axis=1, ddof=1), n, LEVEL, n_max=n * k
            )
            coverages.append(np.mean((low <= mu) & (mu <= high)))
            # Treating the n*k samples as independent trials is what the product must not do.
            pooled = case_means.mean(axis=1)
            z = stats.norm.ppf(0.975)
            half = z * np.sqrt(pooled * (1 - pooled) / (n * k))
            naive.append(np.mean((pooled - half <= mu) & (mu <= pooled + half)))
    grid_mean = float(np.mean(coverages))
    slack = 3 * mc_se(LEVEL, reps * len(coverages))
    assert 0.94 - slack <= grid_mean <= 0.96 + slack
    assert min(coverages) >= 0.925 - 3 * mc_se(0.925, reps)
    assert np.mean(naive) < 0.90  # the control: pooling repeats under-covers badly


def _latent_pair(
    rng: np.random.Generator, mu_base: float, mu_new: float, shape: tuple[int, int], k: int
) -> tuple[NDArray, NDArray]:
    """Per-case means of k binary samples for two correlated variants (the spec's §10 D model)."""
    scale = math.sqrt(1.0 + 1.5**2)  # E[Phi(a + 1.5 Z)] = Phi(a / scale) sets the marginal mean exactly
    a_base, a_new = stats.norm.ppf(mu_base) * scale, stats.norm.ppf(mu_new) * scale
    u, v = rng.standard_normal(shape), rng.standard_normal(shape)
    p_base = stats.norm.cdf(a_base + 1.5 * u)
    p_new = stats.norm.cdf(a_new + 1.5 * (0.8 * u + 0.6 * v))
    return rng.binomial(k, p_new) / k, rng.binomial(k, p_base) / k


def test_paired_t_with_fallback_covers_true_difference() -> None:
    rng = np.random.default_rng(3)
    reps = 5000
    coverages = []
    for k in (1, 5):
        for mu_base in (0.5, 0.9):
            for n in (20, 50):
                new, base = _latent_pair(rng, mu_base, mu_base + TRUE_DELTA, (reps, n), k)
                low, high = paired_diff_bounds(new - base, LEVEL)
                coverages.append(np.mean((low <= TRUE_DELTA) & (high >= TRUE_DELTA)))
    grid_mean = float(np.mean(coverages))
    slack = 3 * mc_se(LEVEL, reps * len(coverages))
    assert 0.94 - slack <= grid_mean <= 0.96 + slack
    assert min(coverages) >= 0.935 - 3 * mc_se(0.935, reps)


def _false_fail_rate(rng: np.random.Generator, mu: float, n: int, k: int, reps: int) -> float:
    new, base = _latent_pair(rng, mu, mu, (reps, n), k)
    fails = 0
    for row_new, row_base in zip(new, base, strict=True):
        p, _ = one_sided_p(row_new - row_base, binary_single=k == 1)
        low, high = paired_diff_bounds(row_new - row_base, 0.90)
        verdict = gate_verdict(p, float(low[0]), float(high[0]))
        fails += verdict.verdict in (Verdict.BLOCK, Verdict.WARN)
    return fails / reps


def test_gate_fails_unchanged_variant_at_most_nominal_rate() -> None:
    rng = np.random.default_rng(5)
    reps = 3000
    rates = [
        _false_fail_rate(rng, mu, n, k, reps) for k, mu, n in ((1, 0.7, 50), (1, 0.95, 200), (5, 0.85, 30))
    ]
    # WARN or BLOCK means one-sided p < 0.05: an unchanged variant may trip it at most 5% of the time.
    assert max(rates) <= 0.05 + 3 * mc_se(0.05, reps)
    # A sensible test is not trivially silent either: the pooled rate is near nominal, not near zero.
    assert np.mean(rates) >= 0.02


def test_holm_keeps_family_false_fail_rate_for_five_unchanged_suites() -> None:
    rng = np.random.default_rng(9)
    reps, suites, n = 2000, 5, 200
    pvalues = np.empty((reps, suites))
    for s in range(suites):
        new, base = _latent_pair(rng, 0.85, 0.85, (reps, n), 1)
        d = new - base
        pvalues[:, s] = [one_sided_p(row, binary_single=True)[0] for row in d]
    any_raw = np.mean(np.any(pvalues < 0.05, axis=1))
    any_holm = np.mean([np.any(holm_adjust(row) < 0.05) for row in pvalues])
    assert any_holm <= 0.05 + 3 * mc_se(0.05, reps)
    assert any_raw > any_holm  # §10 E: 16% unadjusted vs 2.7% with Holm
