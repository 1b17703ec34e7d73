"""From stored trials to per-case values: the case is the unit, repeats are averaged within it first.

Quality rules (spec §2): a provider error counts as score 0; a trial without error whose graders could not
decide (``passed is None``) is left out of quality and counted as undecided.

Every function takes a stored ``TrialRecord`` or its ``CompactResult`` (what reports over large runs hold):
they read only the attributes the two share.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from harness.store import TrialRecord, variant_label

VariantKey = tuple[str, str, float]  # (model, prompt, temperature)
QUALITY_METRICS = ("pass_rate", "score")
METRICS = ("pass_rate", "score", "cost", "latency_p95", "ttft_p95")
# Timing metrics compare the p95 of per-case mean seconds; the value names what is timed.
TIMING_METRICS = {"latency_p95": "latency", "ttft_p95": "time to first token"}


def variant_key(trial: TrialRecord) -> VariantKey:
    return (trial.model, trial.prompt, float(trial.temperature))


def label_of(key: VariantKey) -> str:
    return variant_label(*key)


def resolve_variant(spec: VariantKey | str, keys: Iterable[VariantKey]) -> VariantKey:
    """Find a variant by key or by its label; raise KeyError naming what exists."""
    known = list(keys)
    for key in known:
        if spec == key or spec == label_of(key):
            return key
    raise KeyError(f"no variant {spec!r}; known: {', '.join(label_of(k) for k in known)}")


def trial_order(trial: TrialRecord) -> tuple[str, int, str]:
    return (trial.case_id, trial.repeat, trial.trial_id)


def by_variant(results: Iterable[TrialRecord]) -> dict[VariantKey, list[TrialRecord]]:
    """Trials per variant: variants sorted by key, each variant's trials by (case id, repeat, trial id).

    results.jsonl lists trials in completion order, which varies with concurrency, while every bootstrap
    draws cases by position (and float sums depend on order): sorting here makes a replay's numbers equal.
    """
    grouped: dict[VariantKey, list[TrialRecord]] = {}
    for trial in results:
        grouped.setdefault(variant_key(trial), []).append(trial)
    return {key: sorted(grouped[key], key=trial_order) for key in sorted(grouped)}


def is_undecided(trial: TrialRecord) -> bool:
    return trial.error is None and trial.passed is None


def pass_value(trial: TrialRecord) -> float | None:
    if trial.error is not None:
        return 0.0
    if trial.passed is None:
        return None
    # Constants, not float(passed): one shared object instead of one per trial in a large run's tables.
    if trial.passed is True:
        return 1.0
    return 0.0 if trial.passed is False else float(trial.passed)


def score_value(trial: TrialRecord) -> float | None:
    if trial.error is not None:
        return 0.0
    if trial.passed is None:
        return None
    if trial.score is None:
        return float(trial.passed)
    # Scores are on [0,1] by contract; clipping guards the bounded intervals against float noise.
    return float(np.clip(trial.score, 0.0, 1.0))


def error_value(trial: TrialRecord) -> float:
    return 0.0 if trial.error is None else 1.0


def cost_value(trial: TrialRecord) -> float | None:
    return trial.cost


def latency_seconds(trial: TrialRecord) -> float | None:
    # A failed call's latency is the time to the failure (often a timeout), not a response time.
    if trial.error is not None or trial.latency_ms is None:
        return None
    return trial.latency_ms / 1000.0


def ttft_seconds(trial: TrialRecord) -> float | None:
    # Streamed calls only; like latency, a failed call has no time to first token worth reporting.
    if trial.error is not None or trial.ttft_ms is None:
        return None
    return trial.ttft_ms / 1000.0


def tokens_per_second(trial: TrialRecord) -> float | None:
    """Output tokens per second of generation: after the first token when streamed, else over the call."""
    seconds = latency_seconds(trial)
    tokens = trial.tokens_out
    if seconds is None or not tokens:
        return None
    if trial.ttft_ms is not None:
        seconds -= trial.ttft_ms / 1000.0
    return tokens / seconds if seconds > 0 else None


def input_tokens(trial: TrialRecord) -> float | None:
    return trial.tokens_in


def output_tokens(trial: TrialRecord) -> float | None:
    return trial.tokens_out


def judge_cost_value(trial: TrialRecord) -> float | None:
    return trial.judge_cost


QUALITY_VALUE: dict[str, Callable[[TrialRecord], float | None]] = {
    "pass_rate": pass_value,
    "score": score_value,
}


def case_values(
    trials: Iterable[TrialRecord], value: Callable[[TrialRecord], float | None]
) -> dict[str, list[float]]:
    """Per case id, the values of its trials that have one (cases without any are left out)."""
    per_case: dict[str, list[float]] = {}
    for trial in trials:
        v = value(trial)
        if v is not None:
            per_case.setdefault(trial.case_id, []).append(float(v))
    return per_case


def case_means(per_case: Mapping[str, list[float]]) -> dict[str, float]:
    return {case_id: float(np.mean(values)) for case_id, values in per_case.items()}


def case_groups(trials: Iterable[TrialRecord]) -> dict[str, str]:
    """Each case's group; a case without one is its own group, so ungrouped cases stay independent units."""
    groups: dict[str, str] = {}
    for trial in trials:
        if trial.group is not None or trial.case_id not in groups:
            groups[trial.case_id] = trial.group if trial.group is not None else f"\x00case:{trial.case_id}"
    return groups


def has_groups(groups: Mapping[str, str]) -> bool:
    return len(set(groups.values())) < len(groups)


def all_binary(per_case: Mapping[str, list[float]]) -> bool:
    return all(v in (0.0, 1.0) for values in per_case.values() for v in values)


@dataclass(frozen=True)
class CaseTable:
    """One variant's per-case values for one metric."""

    values: dict[str, list[float]]

    @property
    def means(self) -> dict[str, float]:
        return case_means(self.values)

    @property
    def repeats(self) -> dict[str, int]:
        return {case_id: len(v) for case_id, v in self.values.items()}

    @property
    def binary(self) -> bool:
        return all_binary(self.values)

    @property
    def k_max(self) -> int:
        return max((len(v) for v in self.values.values()), default=0)

    @property
    def k_min(self) -> int:
        return min((len(v) for v in self.values.values()), default=0)


def case_table(trials: Iterable[TrialRecord], metric: str) -> CaseTable:
    """Per-case values for a comparison metric; latency uses per-case mean seconds of successful calls."""
    if metric in QUALITY_VALUE:
        return CaseTable(case_values(trials, QUALITY_VALUE[metric]))
    if metric == "cost":
        return CaseTable(case_values(trials, cost_value))
    if metric == "latency_p95":
        return CaseTable(case_values(trials, latency_seconds))
    if metric == "ttft_p95":
        return CaseTable(case_values(trials, ttft_seconds))
    raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
