"""Per-variant summaries built from stored trials: quality, errors, flakiness, tokens, cost and latency."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.stats.cases import (
    VariantKey,
    by_variant,
    case_groups,
    case_table,
    case_values,
    cost_value,
    error_value,
    has_groups,
    input_tokens,
    is_undecided,
    judge_cost_value,
    label_of,
    latency_seconds,
    output_tokens,
    tokens_per_second,
    ttft_seconds,
)
from harness.stats.choices import ChoiceSummary, choice_summary
from harness.stats.costlat import cluster_quantile_cis, cost_summary, quantile_ci, studentized_bootstrap_ci
from harness.stats.flakiness import VarianceComponents, variance_components
from harness.stats.intervals import (
    Interval,
    bounded_mean_ci,
    clustered_proportion_ci,
    grouped_mean_ci,
    json_float,
    pass_rate_ci,
)
from harness.stats.seeding import derive_seed, seed_from
from harness.store import TrialRecord

__all__ = ["VariantSummary", "summarize_variants", "seed_from", "proportion_interval", "quality_interval"]

# Below this many cases, calls repeated within a case are summarised as if independent (flagged), because
# a case bootstrap of a tail quantile is less honest than the order-statistic interval at that size.
CLUSTER_QUANTILE_MIN_CASES = 100


@dataclass(frozen=True)
class VariantSummary:
    """One variant's numbers, each interval carrying its method, n cases and k repeats."""

    variant: str
    model: str
    prompt: str
    temperature: float
    n_cases: int
    n_trials: int
    k_min: int
    k_max: int
    pass_rate: Interval
    score: Interval | None
    error_rate: Interval
    undecided_trials: int
    undecided_cases: int
    flakiness: VarianceComponents | None
    tokens_in_per_case: float | None
    tokens_out_per_case: float | None
    cost_per_case: Interval | None
    cost_median: float | None
    cost_p90: float | None
    cost_total: float | None
    judge_cost_total: float | None
    judge_cost_per_case: float | None
    latency_p50_s: Interval | None
    latency_p95_s: Interval | None
    groups: int | None = None
    notes: list[str] = field(default_factory=list)
    # Streamed calls only: time to first token, and output tokens per second of generation (median).
    ttft_p50_s: Interval | None = None
    ttft_p95_s: Interval | None = None
    tokens_per_s: float | None = None
    choices: ChoiceSummary | None = None  # requests with n > 1: pass@k, majority vote, cost per sample
    # Of the tokens per case: prompt tokens served from the provider's cache, and reasoning tokens (part of the
    # output); None when no call reported them.
    tokens_cached_per_case: float | None = None
    tokens_reasoning_per_case: float | None = None

    def to_dict(self) -> dict[str, Any]:
        def optional(interval: Interval | None) -> dict[str, Any] | None:
            return None if interval is None else interval.to_dict()

        return {
            "variant": self.variant,
            "model": self.model,
            "prompt": self.prompt,
            "temperature": float(self.temperature),
            "n_cases": self.n_cases,
            "n_trials": self.n_trials,
            "k_min": self.k_min,
            "k_max": self.k_max,
            "pass_rate": self.pass_rate.to_dict(),
            "score": optional(self.score),
            "error_rate": self.error_rate.to_dict(),
            "undecided_trials": self.undecided_trials,
            "undecided_cases": self.undecided_cases,
            "flakiness": None if self.flakiness is None else self.flakiness.to_dict(),
            "tokens_in_per_case": json_float(self.tokens_in_per_case),
            "tokens_out_per_case": json_float(self.tokens_out_per_case),
            "cost_per_case": optional(self.cost_per_case),
            "cost_median": json_float(self.cost_median),
            "cost_p90": json_float(self.cost_p90),
            "cost_total": json_float(self.cost_total),
            "judge_cost_total": json_float(self.judge_cost_total),
            "judge_cost_per_case": json_float(self.judge_cost_per_case),
            "latency_p50_s": optional(self.latency_p50_s),
            "latency_p95_s": optional(self.latency_p95_s),
            "groups": self.groups,
            "notes": list(self.notes),
            "ttft_p50_s": optional(self.ttft_p50_s),
            "ttft_p95_s": optional(self.ttft_p95_s),
            "tokens_per_s": json_float(self.tokens_per_s),
            "choices": None if self.choices is None else self.choices.to_dict(),
            "tokens_cached_per_case": json_float(self.tokens_cached_per_case),
            "tokens_reasoning_per_case": json_float(self.tokens_reasoning_per_case),
        }


def proportion_interval(
    per_case: Mapping[str, list[float]], level: float = 0.95, guarantee: bool = False
) -> Interval:
    """Rate of 0/1 outcomes over cases: the hybrid for one sample per case, cluster eff-n Wilson otherwise."""
    ks = np.array([len(v) for v in per_case.values()], dtype=int)
    if ks.size and np.all(ks == 1):
        successes = int(round(sum(v[0] for v in per_case.values())))
        return pass_rate_ci(successes, int(ks.size), level, guarantee)
    means = np.array([np.mean(v) for v in per_case.values()])
    return clustered_proportion_ci(means, ks, level)


def quality_interval(
    per_case: Mapping[str, list[float]],
    groups: Mapping[str, str] | None = None,
    level: float = 0.95,
    guarantee: bool = False,
) -> Interval:
    """Interval for a [0,1] quality metric over cases; declared groups make the group the unit (CR1)."""
    k_max = max((len(v) for v in per_case.values()), default=1)
    if groups is not None and has_groups({c: groups[c] for c in per_case}):
        ids = list(per_case)
        return grouped_mean_ci(
            [float(np.mean(per_case[c])) for c in ids], [groups[c] for c in ids], level, (0.0, 1.0), k_max
        )
    if all(v in (0.0, 1.0) for values in per_case.values() for v in values):
        return proportion_interval(per_case, level, guarantee)
    return bounded_mean_ci([float(np.mean(v)) for v in per_case.values()], level, (0.0, 1.0), k_max)


def _mean_of_case_means(per_case: Mapping[str, list[float]]) -> float | None:
    if not per_case:
        return None
    return float(np.mean([np.mean(v) for v in per_case.values()]))


def _latency_intervals(
    per_case: Mapping[str, list[float]], level: float, seed: int, n_resamples: int
) -> tuple[Interval | None, Interval | None, str | None]:
    if not per_case:
        return None, None, None
    k_max = max(len(v) for v in per_case.values())
    if k_max > 1 and len(per_case) >= CLUSTER_QUANTILE_MIN_CASES:
        p50, p95 = cluster_quantile_cis(list(per_case.values()), (0.5, 0.95), level, seed, n_resamples)
        return p50, p95, None
    calls = np.concatenate([np.asarray(v) for v in per_case.values()])
    note = None
    if k_max > 1:
        note = (
            "latency intervals treat repeated calls of a case as independent (< 100 cases): may be too narrow"
        )
    return quantile_ci(calls, 0.5, level), quantile_ci(calls, 0.95, level), note


def _summarize_one(
    key: VariantKey,
    trials: list[TrialRecord],
    level: float,
    seed: int,
    guarantee: bool,
    n_resamples: int,
) -> VariantSummary:
    # Each per-case table is let go as soon as its numbers are out: with 100,000 cases one table is ~15 MB.
    label = label_of(key)
    trials_per_case: dict[str, int] = {}
    for trial in trials:
        trials_per_case[trial.case_id] = trials_per_case.get(trial.case_id, 0) + 1
    notes: list[str] = []
    all_groups = case_groups(trials)
    grouped = has_groups(all_groups)
    n_groups = len(set(all_groups.values())) if grouped else None
    if grouped and n_groups is not None and n_groups < 20:
        notes.append(f"only {n_groups} case groups: quality intervals may be unreliable")
    groups = all_groups if grouped else None
    del all_groups

    passes = case_table(trials, "pass_rate")
    pass_ci = quality_interval(passes.values, groups, level, guarantee)
    decided_cases, k_max = len(passes.values), passes.k_max
    if decided_cases < len(trials_per_case):
        notes.append(f"{len(trials_per_case) - decided_cases} cases have no decided trial")
    flakiness = (variance_components(passes.values, level, seed=derive_seed(seed, label, "flakiness"))
                 if k_max >= 2 else None)  # fmt: skip
    del passes
    scored = any(t.score is not None for t in trials)
    score_ci = quality_interval(case_table(trials, "score").values, groups, level) if scored else None
    del groups
    error_rate = proportion_interval(case_values(trials, error_value), level, guarantee)

    costs = case_values(trials, cost_value)
    cost_means = [float(np.mean(v)) for v in costs.values()]
    cost_total = float(sum(sum(v) for v in costs.values())) if costs else None
    del costs
    cost_ci = (
        studentized_bootstrap_ci(cost_means, level, derive_seed(seed, label, "cost"), n_resamples, k_max,
                                 nonnegative=True)
        if cost_means
        else None
    )
    spread = cost_summary(cost_means)
    del cost_means
    judge_costs = [t.judge_cost for t in trials if t.judge_cost is not None]
    p50, p95, latency_note = _latency_intervals(
        case_values(trials, latency_seconds), level, derive_seed(seed, label, "latency"), n_resamples
    )
    if latency_note:
        notes.append(latency_note)
    ttft50, ttft95, ttft_note = _latency_intervals(
        case_values(trials, ttft_seconds), level, derive_seed(seed, label, "ttft"), n_resamples
    )
    if ttft_note:
        notes.append(ttft_note.replace("latency", "time-to-first-token"))
    speeds = [v for v in (tokens_per_second(t) for t in trials) if v is not None]
    choices = choice_summary(trials, level)
    if choices is not None:
        notes.append(f"{choices.choices_per_request} choices per request: each is a sample of its case; cost per "
                     f"case is per sample (a request's cost shared by its choices)")
    return VariantSummary(
        variant=label,
        model=key[0],
        prompt=key[1],
        temperature=key[2],
        n_cases=len(trials_per_case),
        n_trials=len(trials),
        k_min=min(trials_per_case.values()),
        k_max=max(trials_per_case.values()),
        pass_rate=pass_ci,
        score=score_ci,
        error_rate=error_rate,
        undecided_trials=sum(1 for t in trials if is_undecided(t)),
        undecided_cases=len(trials_per_case) - decided_cases,
        flakiness=flakiness,
        tokens_in_per_case=_mean_of_case_means(case_values(trials, input_tokens)),
        tokens_out_per_case=_mean_of_case_means(case_values(trials, output_tokens)),
        cost_per_case=cost_ci,
        cost_median=spread["median"],
        cost_p90=spread["p90"],
        cost_total=cost_total,
        judge_cost_total=float(sum(judge_costs)) if judge_costs else None,
        judge_cost_per_case=_mean_of_case_means(case_values(trials, judge_cost_value)),
        latency_p50_s=p50,
        latency_p95_s=p95,
        groups=n_groups,
        notes=notes,
        ttft_p50_s=ttft50,
        ttft_p95_s=ttft95,
        tokens_per_s=float(np.median(speeds)) if speeds else None,
        choices=choices,
        tokens_cached_per_case=_mean_of_case_means(case_values(trials, lambda t: t.tokens_cached)),
        tokens_reasoning_per_case=_mean_of_case_means(case_values(trials, lambda t: t.tokens_reasoning)),
    )


def summarize_variants(
    results: Iterable[TrialRecord],
    level: float = 0.95,
    seed: int = 0,
    guarantee: bool = False,
    n_resamples: int = 9999,
) -> list[VariantSummary]:
    """One summary per variant (model, prompt, temperature), sorted by that key.

    ``seed`` should come from ``seed_from(run_id)`` so every bootstrap in a report is reproducible.
    """
    return [
        _summarize_one(key, trials, level, seed, guarantee, n_resamples)
        for key, trials in by_variant(results).items()
    ]
