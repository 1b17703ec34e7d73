"""Monte-Carlo coverage of the kappa interval: nominal 95% must cover the true kappa about 95% of the time.

Two raters with a known joint distribution of categories; each simulated calibration set draws one pair per
case. Seeded, so the numbers are fixed; the band allows for Monte-Carlo error (±2.5 standard errors).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.stats.kappa import cohen_kappa, kappa_interval, quadratic_weights

SCENARIOS = {
    # prevalence of "pass" .6, the judge right 85% of the time either way: kappa .691
    "binary": [[0.6 * 0.85, 0.6 * 0.15], [0.4 * 0.15, 0.4 * 0.85]],
    # a three-point scale, mostly near misses off the diagonal
    "three-point": [[0.25, 0.05, 0.0], [0.05, 0.25, 0.05], [0.0, 0.05, 0.30]],
}


def coverage(joint: list[list[float]], cases: int, sims: int, weighted: bool, seed: int) -> float:
    table = np.asarray(joint)
    k = table.shape[0]
    weights = quadratic_weights(k) if weighted else None
    truth = cohen_kappa(table * 1_000_000, weights)
    assert truth is not None
    rng = np.random.default_rng(seed)
    covered = counted = 0
    for sim in range(sims):
        cells = rng.choice(k * k, size=cases, p=table.ravel())
        tables = np.zeros((cases, k * k))
        tables[np.arange(cases), cells] = 1
        ci = kappa_interval(tables.reshape(cases, k, k), weights, seed=sim, resamples=999)
        if ci.defined:
            counted += 1
            covered += ci.low <= truth <= ci.high  # type: ignore[operator]
    assert counted >= 0.99 * sims
    return covered / counted


@pytest.mark.parametrize("name, weighted", [("binary", False), ("three-point", False), ("three-point", True)])
def test_kappa_interval_covers_at_nominal_rate(name: str, weighted: bool) -> None:
    sims = 500
    rate = coverage(SCENARIOS[name], cases=80, sims=sims, weighted=weighted, seed=2024)
    margin = 2.5 * math.sqrt(0.95 * 0.05 / sims)
    assert 0.95 - margin <= rate <= 0.95 + margin, f"{name}: coverage {rate:.3f}"
