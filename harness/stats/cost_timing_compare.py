"""Paired comparisons of the metrics where lower is better: cost (bootstrap-t interval of the mean
difference per case) and timing, i.e. latency and time to first token (p95 over cases, paired permutation
test that swaps the two variants within a case). ``harness.stats.comparison`` assembles them (§9).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from harness.stats.cases import TIMING_METRICS, CaseTable
from harness.stats.costlat import paired_quantile_diff_cis, paired_quantile_test, studentized_bootstrap_ci
from harness.stats.intervals import Interval
from harness.stats.paired import agree_with_tests, align_cases, one_sided_p
from harness.stats.power import detectable_levels, mde_fields
from harness.stats.seeding import derive_seed

QUANTILE_PERMUTATION = "paired permutation (swap within case)"
# Differences that agree to this fraction of their size are equal: what is left is float rounding.
_ROUNDING = 1e-9


def cost_fields(base: CaseTable, cand: CaseTable, tolerance: float, seed: int) -> dict[str, Any]:
    """Comparison fields for cost per case: candidate - baseline, one-sided p for "more expensive".

    Args:
        base: the baseline's per-case costs.
        cand: the candidate's per-case costs.
        tolerance: the absolute increase that does not count as worse.
        seed: the seed of the resampling tests and intervals.
    """
    aligned = align_cases(cand.means, base.means)
    d = aligned.differences
    n = d.size
    if n >= 2 and float(np.ptp(d)) <= _ROUNDING * float(np.max(np.abs(d))):
        # Every case moved by the same amount, up to the last bits of float sums (prices × tokens added in
        # another order): a spread of 1e-18 would size an MDE of $0.00000000000000003 and widen the Δ to
        # 17 digits. It is no spread.
        d = np.full_like(d, float(np.mean(d)))
    k = max(base.k_max, cand.k_max)
    # Orient so that "worse" (more expensive) is down, as the shared one-sided test expects.
    p_value, p_method = one_sided_p(-d, False, tolerance, seed)
    p_better, _ = one_sided_p(-d, False, 0.0, seed, "greater")
    p_worse = p_value if tolerance == 0.0 else one_sided_p(-d, False, 0.0, seed)[0]
    sd_d = float(d.std(ddof=1)) if n >= 2 else None
    # The interval is of candidate - baseline (cost up = worse): its "drop" side is the upper one.
    cis = {key: studentized_bootstrap_ci(d, level, derive_seed(seed, key), k=k)
           for key, level in (("ci95", 0.95), ("ci90", 0.90))}  # fmt: skip
    out: dict[str, Any] = {
        **{key: _flip(agree_with_tests(_flip(ci), p_worse, p_better)) for key, ci in cis.items()},
        "p_value": p_value,
        "p_method": p_method,
        "p_better": p_better,
        "sd_diff": sd_d,
        "notes": [],
    }
    if sd_d:
        out.update(mde_fields(detectable_levels(sd_d, n, p_method, 0.0, "cost", None)))
    elif sd_d == 0.0:
        out["notes"].append("every shared case moved by the same amount: no spread to size the suite from")
    return out


def _flip(interval: Interval) -> Interval:
    """The interval of the negated quantity (for metrics where lower is better)."""
    neg = (lambda v: None if v is None else -v)  # noqa: E731
    return dataclasses.replace(interval, estimate=neg(interval.estimate), low=neg(interval.high),
                               high=neg(interval.low))


def timing_fields(base: CaseTable, cand: CaseTable, tolerance: float, seed: int,
                  metric: str = "latency_p95") -> dict[str, Any]:
    """Comparison fields for a timing metric: the difference of p95s over cases, one-sided p for "slower".

    Args:
        base: the baseline's per-case mean timings.
        cand: the candidate's per-case mean timings.
        tolerance: the absolute slow-down (seconds) that does not count as worse.
        seed: the seed of the permutation test and the bootstrap intervals.
        metric: which timing metric (a key of ``TIMING_METRICS``), named in the note.
    """
    aligned = align_cases(cand.means, base.means)
    ci95, ci90 = paired_quantile_diff_cis(
        aligned.new, aligned.base, 0.95, (0.95, 0.90), derive_seed(seed, "ci")
    )
    return {
        "ci95": ci95,
        "ci90": ci90,
        "p_value": paired_quantile_test(aligned.new, aligned.base, 0.95, tolerance, derive_seed(seed, "p")),
        # "better" (faster) is the same permutation test with the sides swapped.
        "p_better": paired_quantile_test(aligned.base, aligned.new, 0.95, 0.0, derive_seed(seed, "p")),
        "p_method": QUANTILE_PERMUTATION,
        "notes": [f"p95 over cases of each case's mean {TIMING_METRICS[metric]} (seconds) of successful calls"],
    }
