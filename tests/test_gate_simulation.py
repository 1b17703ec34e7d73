"""Monte-Carlo check of the gate's error rates (docs/gating.md), seeded and vectorised.

Per-case outcomes come from a latent model: case i passes with probability p_i ~ Beta(mean μ, a + b = 2), so
cases differ a lot in difficulty (outcomes of two variants on a case are correlated, as in real suites).
Under "unchanged" both variants draw from the same p_i; a regression scales every p_i down. The one-sided p
and the 90% interval are computed for all replicates at once with the functions the gate uses, then each
replicate's family goes through the gate's own decision function (Holm + the §8.3 rule).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from test_gate_fixtures import write_run

from harness.gate import gate_runs, judge_family
from harness.stats.gate_rule import Verdict
from harness.stats.paired import mcnemar_midp, one_sided_p, paired_diff_bounds

SEED = 8_2024
MARGIN = 0.05
BLOCK, WARN = Verdict.BLOCK.value, Verdict.WARN.value


def outcomes(rng: np.random.Generator, shape: tuple[int, ...], n: int, k: int, mu: float,
             drop: np.ndarray | float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-case mean scores (base, new), shape (*shape, n): k Bernoulli draws per case and variant."""
    p = rng.beta(mu * 2.0, (1.0 - mu) * 2.0, size=(*shape, n))
    shift = np.broadcast_to(np.asarray(drop, dtype=float), shape)[..., None]
    q = p * (mu - shift) / mu
    base = rng.binomial(k, p) / k
    new = rng.binomial(k, q) / k
    return base, new


def family_p_and_ci(
    base: np.ndarray, new: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The gate's one-sided p for a drop and for a gain (the same test both ways) and the 90% paired bounds
    for every (replicate, suite), vectorised."""
    d = new - base
    if k == 1:
        worse, better = (d < 0).sum(axis=-1), (d > 0).sum(axis=-1)
        p, p_better = mcnemar_midp(worse, better), mcnemar_midp(better, worse)
    else:
        p = stats.ttest_1samp(d, 0.0, axis=-1, alternative="less").pvalue
        p_better = stats.ttest_1samp(d, 0.0, axis=-1, alternative="greater").pvalue
        still = np.ptp(d, axis=-1) == 0  # no spread: nothing moved
        p, p_better = np.where(still, 1.0, p), np.where(still, 1.0, p_better)
    flat = d.reshape(-1, d.shape[-1])
    low, high = paired_diff_bounds(flat, 0.90)
    low, high = low.reshape(d.shape[:-1]), high.reshape(d.shape[:-1])
    # The gate widens an interval to 0 on a side its test does not confirm (paired.agree_with_tests).
    high = np.where((high < 0) & (p >= 0.05), 0.0, high)
    low = np.where((low > 0) & (p_better >= 0.05), 0.0, low)
    return np.asarray(p, dtype=float), np.asarray(p_better, dtype=float), low, high


def verdicts(p: np.ndarray, p_better: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Each replicate's family through the gate's decision function; shape (reps, suites) of verdict names."""
    reps, m = p.shape
    out = np.empty((reps, m), dtype="<U12")
    for r in range(reps):
        decisions = judge_family(p[r], low[r].tolist(), high[r].tolist(), [MARGIN] * m, [True] * m, [False] * m,
                                 p_better=p_better[r].tolist())
        out[r] = [d.verdict.value for d in decisions]
    return out


def mc_bound(rate: float, reps: int, z: float = 2.5) -> float:
    """Upper tolerance for an observed rate whose truth is ``rate``: 2.5 Monte-Carlo standard errors."""
    return rate + z * math.sqrt(rate * (1.0 - rate) / reps)


@pytest.mark.parametrize(
    ("n", "k", "suites", "reps", "mu"),
    [
        (200, 1, 5, 4000, 0.85),  # five unchanged suites gated in one CI run
        (50, 1, 1, 4000, 0.85),  # one small suite
        (100, 3, 3, 2000, 0.7),  # repeats: the paired t path
    ],
)
def test_unchanged_suites_rarely_block_or_warn(n: int, k: int, suites: int, reps: int, mu: float) -> None:
    rng = np.random.default_rng([SEED, n, k, suites])
    base, new = outcomes(rng, (reps, suites), n, k, mu)
    v = verdicts(*family_p_and_ci(base, new, k))
    any_block = np.mean((v == BLOCK).any(axis=1))
    any_alarm = np.mean(((v == BLOCK) | (v == WARN)).any(axis=1))
    assert any_block <= mc_bound(0.01, reps), f"false BLOCK rate {any_block:.4f}"
    assert any_alarm <= mc_bound(0.05, reps), f"false WARN-or-BLOCK rate {any_alarm:.4f}"
    # Calibrated, not silent: a gate that never fires would also pass the lines above.
    assert any_alarm > 0.005
    # Symmetric: a gain needs the same evidence as a drop, so an unchanged suite is rarely an IMPROVEMENT.
    improvement = np.mean(v == Verdict.IMPROVEMENT.value)
    assert improvement <= mc_bound(0.05, reps * suites), f"false IMPROVEMENT rate {improvement:.4f}"
    assert improvement > 0.005


def test_a_large_regression_is_caught() -> None:
    reps, n = 2000, 200
    rng = np.random.default_rng([SEED, 1])
    # Alone, and as one of five suites gated together (the other four unchanged).
    base, new = outcomes(rng, (reps, 1), n, 1, 0.85, drop=0.20)
    alone = verdicts(*family_p_and_ci(base, new, 1))[:, 0]
    drops = np.zeros((reps, 5))
    drops[:, 0] = 0.20
    base5, new5 = outcomes(rng, (reps, 5), n, 1, 0.85, drop=drops)
    v5 = verdicts(*family_p_and_ci(base5, new5, 1))
    assert np.mean(alone == BLOCK) >= 0.95
    assert np.mean(v5[:, 0] == BLOCK) >= 0.95
    assert np.mean((v5[:, 1:] == BLOCK).any(axis=1)) <= mc_bound(0.01, reps)


def test_a_five_point_drop_on_200_cases_is_caught_about_as_often_as_the_spec_predicts() -> None:
    # §10 E: R1 at one-sided 5% detects a 5-point drop at n = 200 about 48% of the time; BLOCK (1%) less.
    reps = 3000
    rng = np.random.default_rng([SEED, 2])
    base, new = outcomes(rng, (reps, 1), 200, 1, 0.85, drop=0.05)
    v = verdicts(*family_p_and_ci(base, new, 1))[:, 0]
    alarm = np.mean((v == BLOCK) | (v == WARN))
    block = np.mean(v == BLOCK)
    assert 0.25 < alarm < 0.75 and block < alarm


def test_the_vectorised_path_is_the_gates_own(tmp_path: Path) -> None:
    """A few simulated families, written as runs and gated through gate_runs, get the same p and verdicts."""
    rng = np.random.default_rng([SEED, 3])
    base, new = outcomes(rng, (4, 3), 60, 1, 0.8, drop=np.array([0.0, 0.15, 0.3])[None, :].repeat(4, axis=0))
    p, p_better, low, high = family_p_and_ci(base, new, 1)
    expected = verdicts(p, p_better, low, high)
    for r in range(4):
        runs = [
            write_run(tmp_path / f"rep{r}", f"suite{s}", "run",
                      {"v1": [bool(x) for x in base[r, s]], "v2": [bool(x) for x in new[r, s]]})
            for s in range(3)
        ]  # fmt: skip
        outcome = gate_runs(runs)
        assert [i.comparison.p_value for i in outcome.items] == pytest.approx(p[r].tolist())
        assert [i.verdict.value for i in outcome.items] == list(expected[r])
        for s in range(3):
            d = new[r, s] - base[r, s]
            assert one_sided_p(d, True)[0] == pytest.approx(p[r, s])
    assert (expected == BLOCK).any() and (expected != BLOCK).any()
