"""Monte-Carlo check of the history's drift tests: false alarms on stable histories stay at alpha, and real
trends or shifts are found. Seeded; the per-replicate work is the product's own functions."""

from __future__ import annotations

import math

import numpy as np

from harness.history.drift import ALPHA, drift_check, latest_test, paired_rates, trend_test

SEED = 12_2026
REPS = 400
# Three standard errors of a rate estimated from REPS replicates at ALPHA: a level that is really ALPHA fails
# the check with probability ~0.1%.
SLACK = 3 * math.sqrt(ALPHA * (1 - ALPHA) / REPS)
PERMUTATIONS = 999


def history(rng: np.random.Generator, runs: int, cases: int, k: int, run_sd: float,
            shift: np.ndarray | None = None) -> list[dict[str, tuple[int, int]]]:  # fmt: skip
    """Per-run case counts: case difficulty fixed across runs, each run perturbed on the logit scale by
    N(0, run_sd) (a provider's good and bad days) and by ``shift[r]`` (a real change)."""
    logit = rng.normal(1.0, 1.5, size=cases)
    out = []
    for r in range(runs):
        moved = logit + rng.normal(0.0, run_sd) + (0.0 if shift is None else shift[r])
        p = 1 / (1 + np.exp(-moved))
        passes = rng.binomial(k, p)
        out.append({f"c{i}": (int(passes[i]), k) for i in range(cases)})
    return out


def test_trend_false_alarms_stay_at_alpha_even_with_noisy_runs() -> None:
    rng = np.random.default_rng(SEED)
    flagged = 0
    for rep in range(REPS):
        runs = history(rng, runs=10, cases=30, k=2, run_sd=0.4)
        flagged += trend_test(paired_rates(runs)[0], seed=rep, permutations=PERMUTATIONS).flagged
    rate = flagged / REPS
    assert rate <= ALPHA + SLACK, f"trend false-alarm rate {rate:.3f} over {REPS} stable histories"


def test_latest_run_false_alarms_stay_at_alpha_without_run_noise() -> None:
    rng = np.random.default_rng(SEED + 1)
    flagged = sum(latest_test(history(rng, runs=8, cases=40, k=3, run_sd=0.0), seed=rep,
                              permutations=PERMUTATIONS).flagged for rep in range(REPS))  # fmt: skip
    rate = flagged / REPS
    assert rate <= ALPHA + SLACK, f"latest-run false-alarm rate {rate:.3f}"


def test_a_single_bad_run_is_not_called_drift() -> None:
    """One run much worse than the rest: the latest-run test fires, the trend test mostly does not."""
    rng = np.random.default_rng(SEED + 2)
    trend, latest = 0, 0
    reps = 100
    for rep in range(reps):
        shift = np.zeros(10)
        shift[-1] = -1.5
        result = drift_check([], history(rng, runs=10, cases=40, k=2, run_sd=0.0, shift=shift), seed=rep,
                             permutations=PERMUTATIONS)  # fmt: skip
        trend += result.trend.flagged
        latest += result.latest is not None and result.latest.flagged
    assert latest / reps > 0.9
    assert trend / reps < 0.5  # a drop at the very end moves Kendall's S by at most n − 1 of n(n−1)/2 pairs


def test_a_sustained_decline_is_found() -> None:
    rng = np.random.default_rng(SEED + 3)
    found = 0
    reps = 100
    for rep in range(reps):
        result = drift_check([], history(rng, runs=10, cases=40, k=2, run_sd=0.1, shift=np.linspace(0, -1.2, 10)),
                             seed=rep, permutations=PERMUTATIONS)  # fmt: skip
        found += result.trend.flagged and result.trend.direction == "down"
    assert found / reps > 0.8


def test_trend_needs_enough_runs_and_handles_ties() -> None:
    assert not trend_test([0.1, 0.2, 0.3, 0.4]).flagged  # 4 runs: not even a perfect series can be significant
    assert trend_test([0.1, 0.2, 0.3, 0.4]).note is not None
    flat = trend_test([0.5] * 12)
    assert flat.p_value == 1.0 and not flat.flagged and flat.direction == "flat"
    assert trend_test([1, 2, 3, 4, 5, 6, 7], permutations=PERMUTATIONS).flagged
    nan_ignored = trend_test([float("nan"), 1, 2, 3, 4, 5, 6], permutations=PERMUTATIONS)
    assert nan_ignored.runs == 6


def test_latest_test_uses_only_cases_every_run_has() -> None:
    runs = [{"a": (1, 1), "b": (1, 1)}, {"a": (1, 1), "b": (1, 1), "new": (0, 1)}, {"a": (1, 1), "new": (0, 1)}]
    result = latest_test(runs)
    assert result.cases == 1 and result.delta == 0.0 and not result.flagged
