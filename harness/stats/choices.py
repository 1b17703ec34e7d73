"""Several samples per case (``n`` choices per request, and repeats): pass@k, majority vote, cost per sample.

Choices of one request and repeats of one case are all samples of the case, so every number here takes the
case as the unit: per-case values first, then an interval over cases (the clustering described in docs/statistics.md).

- **pass@k**: the chance that at least one of k samples passes, with the unbiased estimator of Chen et al.
  (2021, "Evaluating Large Language Models Trained on Code"): with n samples of which c pass,
  ``1 - C(n-c, k) / C(n, k)``, computed as a product so large n does not overflow. Estimated per case over
  the case's decided samples (an errored sample counts as a failure, as in the pass rate), then averaged
  over the cases with at least k of them.
- **majority vote** (self-consistency): where graders give an answer to vote on (``exact``'s normalised
  output), each case's most common answer among its samples wins (ties: the answer seen first, by repeat and
  choice); the case counts as correct when that answer's samples passed (most of them, if they differ).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.stats.cases import pass_value, trial_order
from harness.stats.intervals import Interval, bounded_mean_ci, json_float, pass_rate_ci
from harness.store import TrialRecord

MAX_KS = 8  # pass@k is shown for k = 1, 2, 4, ... up to the samples per case, at most this many values


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c passes (Chen et al. 2021): 1 - C(n-c, k)/C(n, k)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 ≤ c ≤ n and 1 ≤ k ≤ n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def k_values(samples: int) -> list[int]:
    """1, 2, 4, ... below ``samples``, and ``samples`` itself."""
    ks = [1]
    while ks[-1] * 2 < samples and len(ks) < MAX_KS - 1:
        ks.append(ks[-1] * 2)
    if samples > 1:
        ks.append(samples)
    return ks


@dataclass(frozen=True)
class ChoiceSummary:
    """One variant's multi-sample numbers. ``samples_min``/``samples_max``: decided samples per case."""

    samples_min: int
    samples_max: int
    requests: int
    choices_per_request: int
    pass_at_k: dict[int, Interval]
    majority: Interval | None
    voted_cases: int
    cost_per_sample: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "samples_min": self.samples_min,
            "samples_max": self.samples_max,
            "requests": self.requests,
            "choices_per_request": self.choices_per_request,
            "pass_at_k": {str(k): v.to_dict() for k, v in self.pass_at_k.items()},
            "majority_vote": None if self.majority is None else self.majority.to_dict(),
            "voted_cases": self.voted_cases,
            "cost_per_sample": json_float(self.cost_per_sample),
        }


def choice_summary(trials: Sequence[TrialRecord], level: float = 0.95) -> ChoiceSummary | None:
    """The summary of a variant whose requests asked for several choices; None when none did."""
    choices = 1 + max((t.choice for t in trials), default=0)
    if choices < 2:
        return None
    per_case: dict[str, list[float]] = {}
    for trial in trials:
        value = pass_value(trial)
        if value is not None:
            per_case.setdefault(trial.case_id, []).append(value)
    if not per_case:
        return None
    sizes = [len(v) for v in per_case.values()]
    at_k = {}
    for k in k_values(min(sizes)):
        estimates = [pass_at_k(len(v), int(round(sum(v))), k) for v in per_case.values() if len(v) >= k]
        at_k[k] = bounded_mean_ci(estimates, level, (0.0, 1.0), max(sizes))
    majority, voted = majority_vote(trials, level)
    costs = [t.cost for t in trials if t.cost is not None]
    return ChoiceSummary(
        samples_min=min(sizes), samples_max=max(sizes), requests=sum(1 for t in trials if t.choice == 0),
        choices_per_request=choices, pass_at_k=at_k, majority=majority, voted_cases=voted,
        cost_per_sample=float(sum(costs)) / len(costs) if costs and len(costs) == len(trials) else None,
    )


def majority_vote(trials: Sequence[TrialRecord], level: float = 0.95) -> tuple[Interval | None, int]:
    """Accuracy of each case's most common answer, over the cases whose samples gave answers."""
    by_case: dict[str, list[TrialRecord]] = {}
    for trial in sorted(trials, key=lambda t: (*trial_order(t), t.choice)):
        if trial.answer is not None and pass_value(trial) is not None:
            by_case.setdefault(trial.case_id, []).append(trial)
    correct = []
    for samples in by_case.values():
        counts = Counter(t.answer for t in samples)
        top = max(counts.values())
        winner = next(t.answer for t in samples if counts[t.answer] == top)  # ties: first seen
        passes = [pass_value(t) for t in samples if t.answer == winner]
        correct.append(1.0 if sum(p or 0.0 for p in passes) * 2 >= len(passes) else 0.0)
    if not correct:
        return None, 0
    return pass_rate_ci(int(sum(correct)), len(correct), level), len(correct)
