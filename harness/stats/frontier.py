"""The cost-quality summary across variants: nominal Pareto front plus "significantly dominated" (§9.3)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.stats.cases import QUALITY_METRICS, by_variant, case_table, label_of
from harness.stats.costlat import (
    DEFAULT_RESAMPLES,
    pareto_front,
    significantly_dominated,
    studentized_bootstrap_ci,
)
from harness.stats.intervals import Interval
from harness.stats.seeding import derive_seed
from harness.stats.summary import quality_interval
from harness.store import TrialRecord


@dataclass(frozen=True)
class ParetoPoint:
    """One variant on the cost-quality plane. Off-front variants not significantly dominated are
    "indistinguishable from the front": show them greyed, never hidden."""

    variant: str
    quality: Interval
    cost_per_case: Interval | None
    on_front: bool
    dominated_by: list[str] = field(default_factory=list)

    @property
    def significantly_dominated(self) -> bool:
        return bool(self.dominated_by)

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "quality": self.quality.to_dict(),
            "cost_per_case": None if self.cost_per_case is None else self.cost_per_case.to_dict(),
            "on_front": self.on_front,
            "significantly_dominated": self.significantly_dominated,
            "dominated_by": list(self.dominated_by),
        }


def pareto_summary(
    results: Iterable[TrialRecord],
    metric: str = "pass_rate",
    margin: float = 0.05,
    level: float = 0.95,
    seed: int = 0,
    n_resamples: int = DEFAULT_RESAMPLES,
) -> list[ParetoPoint]:
    """Variants with quality and cost; the front uses point estimates, the flags use paired intervals.

    Variants without any recorded cost are listed off the front and never flagged.
    """
    if metric not in QUALITY_METRICS:
        raise ValueError(f"quality metric must be one of {', '.join(QUALITY_METRICS)}")
    variants = by_variant(results)
    labels = [label_of(k) for k in variants]
    quality = {label_of(k): case_table(t, metric) for k, t in variants.items()}
    cost = {label_of(k): case_table(t, "cost") for k, t in variants.items()}
    quality_ci = {name: quality_interval(quality[name].values, None, level) for name in labels}
    cost_ci = {
        name: studentized_bootstrap_ci(
            list(cost[name].means.values()), level, derive_seed(seed, name, "cost"), n_resamples, nonnegative=True
        )
        if cost[name].values
        else None
        for name in labels
    }
    priced = [name for name in labels if cost[name].values and quality[name].values]
    front = pareto_front(
        [float(np.mean(list(quality[name].means.values()))) for name in priced],
        [float(np.mean(list(cost[name].means.values()))) for name in priced],
    )
    on_front = dict(zip(priced, front, strict=True))
    dominated = significantly_dominated(
        {name: quality[name].means for name in priced},
        {name: cost[name].means for name in priced},
        margin,
        level,
        seed,
        n_resamples,
    )
    return [
        ParetoPoint(name, quality_ci[name], cost_ci[name], on_front.get(name, False), dominated.get(name, []))
        for name in labels
    ]
