"""Is a suite drifting? Two separate questions over a variant's last N runs, each with its own test.

* **Trend** (sustained drift): Kendall's S between run order and the per-run value, with a permutation
  p-value over run orders. Under "nothing changes" the runs are exchangeable (whatever the per-run noise —
  a flaky provider, a bad day), so the false-alarm rate is at most ``alpha`` by construction. Quality values
  are computed over the cases every run in the window has, so a growing suite does not look like a trend.
* **Latest run** (a single-run shift): the latest run against the pooled earlier runs, paired on cases, with
  a conditional permutation within each case (hypergeometric draws of the latest run's passes given the
  case's total). It assumes trials of a case are exchangeable across runs, so run-level noise (a provider
  worse for one afternoon) can set it off: it is reported as "latest run differs", never as drift.

``tests/test_history_drift.py`` checks both false-alarm rates by simulation, as the gate's are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

ALPHA = 0.05
MIN_TREND_RUNS = 5  # with 4 runs even a perfect monotone series has a two-sided permutation p of 1/12
PERMUTATIONS = 4999

# case id -> (passes, trials) in one run
CaseCounts = Mapping[str, tuple[int, int]]


@dataclass(frozen=True)
class TrendTest:
    runs: int
    kendall_tau: float | None
    p_value: float | None
    direction: str  # "up", "down" or "flat"
    flagged: bool
    note: str | None = None


@dataclass(frozen=True)
class LatestTest:
    earlier_runs: int
    cases: int
    delta: float | None  # latest − pooled earlier, in the metric's units (a rate: fraction)
    p_value: float | None
    flagged: bool
    note: str | None = None


@dataclass(frozen=True)
class Drift:
    trend: TrendTest
    latest: LatestTest | None

    @property
    def verdict(self) -> str:
        if self.trend.flagged:
            return f"DRIFT {self.trend.direction}"
        if self.latest is not None and self.latest.flagged:
            return "LATEST RUN DIFFERS"
        return "stable"


def kendall_s(values: np.ndarray) -> np.ndarray:
    """Kendall's S of each row against its position: Σ_{i<j} sign(v_j − v_i)."""
    total = np.zeros(values.shape[:-1])
    for i in range(values.shape[-1] - 1):  # row by row: memory stays O(rows × runs) for long windows
        total += np.sign(values[..., i + 1:] - values[..., i : i + 1]).sum(axis=-1)
    return total


def trend_test(values: Sequence[float], alpha: float = ALPHA, seed: int = 0,
               permutations: int = PERMUTATIONS) -> TrendTest:  # fmt: skip
    """Permutation test of a monotone trend in ``values`` (oldest first); two-sided."""
    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    n = int(x.size)
    if n < MIN_TREND_RUNS:
        return TrendTest(n, None, None, "flat", False, f"needs {MIN_TREND_RUNS} runs with a value, has {n}")
    observed = float(kendall_s(x))
    pairs = n * (n - 1) / 2
    rng = np.random.default_rng(seed)
    shuffled = rng.permuted(np.tile(x, (permutations, 1)), axis=1)
    null = kendall_s(shuffled)
    extreme = int(np.sum(np.abs(null) >= abs(observed) - 1e-9))
    p = (1 + extreme) / (1 + permutations)
    direction = "flat" if observed == 0 else ("up" if observed > 0 else "down")
    return TrendTest(n, observed / pairs, p, direction, p < alpha and observed != 0)


def common_cases(runs: Sequence[CaseCounts]) -> list[str]:
    if not runs:
        return []
    shared = set(runs[0])
    for counts in runs[1:]:
        shared &= set(counts)
    return sorted(c for c in shared if all(r[c][1] > 0 for r in runs))


def paired_rates(runs: Sequence[CaseCounts]) -> tuple[list[float], int]:
    """Each run's rate over the cases all runs share (mean of case rates), and how many cases that is."""
    cases = common_cases(runs)
    if not cases:
        return [], 0
    return [float(np.mean([r[c][0] / r[c][1] for c in cases])) for r in runs], len(cases)


def latest_test(runs: Sequence[CaseCounts], alpha: float = ALPHA, seed: int = 0,
                permutations: int = PERMUTATIONS) -> LatestTest:  # fmt: skip
    """The last run against the pooled earlier ones, paired on cases, conditional permutation per case."""
    if len(runs) < 2:
        return LatestTest(0, 0, None, None, False, "needs an earlier run")
    cases = common_cases(runs)
    if not cases:
        return LatestTest(len(runs) - 1, 0, None, None, False, "no case in every run")
    latest, earlier = runs[-1], runs[:-1]
    s_l = np.array([latest[c][0] for c in cases])
    n_l = np.array([latest[c][1] for c in cases])
    s_e = np.array([sum(r[c][0] for r in earlier) for c in cases])
    n_e = np.array([sum(r[c][1] for r in earlier) for c in cases])
    observed = float(np.mean(s_l / n_l - s_e / n_e))
    total, size = s_l + s_e, n_l + n_e
    rng = np.random.default_rng(seed)
    # Given a case's total passes, the latest run's share is hypergeometric when its trials are exchangeable.
    draws = rng.hypergeometric(total[:, None], (size - total)[:, None], n_l[:, None],
                               size=(len(cases), permutations))  # fmt: skip
    null = np.mean(draws / n_l[:, None] - (total[:, None] - draws) / n_e[:, None], axis=0)
    extreme = int(np.sum(np.abs(null) >= abs(observed) - 1e-12))
    p = (1 + extreme) / (1 + permutations)
    return LatestTest(len(earlier), len(cases), observed, p, p < alpha and observed != 0)


def drift_check(values: Sequence[float | None], case_counts: Sequence[CaseCounts] | None = None,
                alpha: float = ALPHA, seed: int = 0, permutations: int = PERMUTATIONS) -> Drift:  # fmt: skip
    """Both tests for one variant's window of runs (oldest first).

    ``case_counts`` (for pass rates): the trend then runs on rates over the cases every run shares, and the
    latest-run test is done; without it (cost, latency) only the trend test runs, on ``values``.
    """
    if case_counts is not None:
        rates, _ = paired_rates(case_counts)
        return Drift(trend_test(rates, alpha, seed, permutations), latest_test(case_counts, alpha, seed, permutations))
    clean = [float(v) for v in values if v is not None]
    return Drift(trend_test(clean, alpha, seed, permutations), None)
