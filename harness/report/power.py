"""``harness power``: how many cases or repeats it takes to detect a drop, from a pilot run or assumed rates.

Planning model (docs/statistics.md, power): per-case differences d_i between a future candidate and the baseline
have variance ω² + σ²_w/k_new + σ²_w/k_base. From a single-variant pilot with repeats, σ²_w (within-case)
and the between-case variance τ² come from the variance components; a candidate whose per-case pass rates
correlate φ with the baseline's gives ω² = 2τ²(1 − φ). Without repeats the pilot cannot separate the two,
and the binary formula sd_d² = p(1−p) + p'(1−p') − 2φ·sqrt(p(1−p)p'(1−p')) is used (p' = p − δ).
Where the pilot run already holds other variants, their observed paired differences are used instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.report.build import ReportOptions, build_report
from harness.report.format import amount_with_unit, decimal, pct
from harness.stats.power import (
    BLOCK_ALPHA,
    DEFAULT_POWER,
    WARN_ALPHA,
    mde_sentence,
    required_cases,
    sd_diff_binary,
)
from harness.stats.summary import VariantSummary

DEFAULT_CORRELATION = 0.5


@dataclass(frozen=True)
class PowerPlan:
    title: str
    lines: list[str]


def _check(drop: float, correlation: float, power: float) -> None:
    if not 0.0 < drop < 1.0:
        raise HarnessError(f"--drop must be between 0 and 1 (a fraction: 0.05 = 5 points), got {drop}")
    if not -1.0 <= correlation <= 1.0:
        raise HarnessError(f"--correlation must be between -1 and 1, got {correlation}")
    if not 0.5 <= power < 1.0:
        raise HarnessError(f"--power must be in [0.5, 1), got {power}")


def plan_from_rates(
    rate: float, drop: float, correlation: float = DEFAULT_CORRELATION, cases: int | None = None,
    power: float = DEFAULT_POWER,
) -> PowerPlan:  # fmt: skip
    """No pilot: a baseline pass rate, the drop to detect and the assumed case-level correlation."""
    _check(drop, correlation, power)
    if not 0.0 < rate <= 1.0 or rate - drop < 0.0:
        raise HarnessError(f"--rate must be in (0, 1] and at least --drop; got rate {rate}, drop {drop}")
    sd_d = sd_diff_binary(rate - drop, rate, correlation)
    head = (f"baseline pass rate {pct(rate)}, drop {amount_with_unit(drop, 'pass_rate')}, one repeat per case, "
            f"correlation of the two variants' outcomes per case φ = {correlation:g} (φ = 0: the unpaired worst case)")
    lines = [head]
    if sd_d == 0.0:
        lines.append("no case can change verdict under these rates: nothing to detect")
        return PowerPlan("assumed rates", lines)
    warn, block = required_cases(drop, sd_d, WARN_ALPHA, power), required_cases(drop, sd_d, BLOCK_ALPHA, power)
    lines.append(f"to detect it with {pct(power, 0)} power: {warn} cases at the WARN level (one-sided p < "
                 f"{WARN_ALPHA:g}), {block} at BLOCK (p < {BLOCK_ALPHA:g})")  # fmt: skip
    if cases is not None:
        lines.append(mde_sentence(cases, 1, sd_d, drop, power))
    lines.append("repeats cannot be planned without a pilot run: run one with repeats ≥ 2 and pass it as RUN")
    return PowerPlan("assumed rates", lines)


def _variant_plan(s: VariantSummary, drop: float, correlation: float, power: float) -> PowerPlan:
    n, k = s.n_cases, s.k_max
    rate = s.pass_rate.estimate or 0.0
    title = f"{s.variant} as the baseline ({n} cases × {k} repeats, pass rate {pct(rate)})"
    f = s.flakiness
    if f is not None and f.within_var is not None and f.between_var is not None:
        omega2 = 2.0 * f.between_var * (1.0 - correlation)
        sd_d = (omega2 + 2.0 * f.within_var / k) ** 0.5
        lines = [f"within-case variance {decimal(f.within_var, 3)}, between-case {decimal(f.between_var, 3)}; "
                 f"a candidate whose per-case pass rates correlate φ = {correlation:g} with these"]  # fmt: skip
        if sd_d == 0.0:
            return PowerPlan(title, lines + ["every case always gives the same verdict: any change is visible"])
        lines.append(mde_sentence(n, k, sd_d, drop, power, omega2, f.within_var, f.within_var))
        return PowerPlan(title, lines)
    sd_d = sd_diff_binary(max(rate - drop, 0.0), rate, correlation)
    lines = [f"one repeat per case: outcome correlation φ = {correlation:g} assumed; run the pilot with repeats "
             "≥ 2 to plan repeats"]  # fmt: skip
    if sd_d == 0.0:
        return PowerPlan(title, lines + ["no case can change verdict at this pass rate: nothing to detect"])
    lines.append(mde_sentence(n, 1, sd_d, drop, power))
    return PowerPlan(title, lines)


def plan_from_run(
    directory: Path, drop: float | None = None, correlation: float = DEFAULT_CORRELATION,
    power: float = DEFAULT_POWER, baseline: str | None = None,
) -> list[PowerPlan]:  # fmt: skip
    """Plans from a pilot run: each variant as a future baseline, then each observed comparison."""
    if drop is not None:
        _check(drop, correlation, power)
    options = ReportOptions(baseline=baseline, metrics=("pass_rate",), n_resamples=999, margin=drop)
    report = build_report(directory, options)
    delta = report.margin
    _check(delta, correlation, power)
    if not report.variants:
        raise HarnessError(f"{directory}: the run has no finished trials to plan from")
    plans = [_variant_plan(s, delta, correlation, power) for s in report.variants]
    for c in report.comparisons:
        if c.sd_diff is None or c.sd_diff == 0.0:
            continue
        if power == DEFAULT_POWER and c.mde_message:
            # The comparison's own message also knows the variance components, so it can plan repeats.
            lines = [c.mde_message]
        else:
            lines = [mde_sentence(c.n_cases, max(c.k_baseline[1], c.k_candidate[1]), c.sd_diff, delta, power)]
        plans.append(PowerPlan(f"{c.candidate} vs {c.baseline} (observed paired differences)", lines))
    return plans


def render_plans(plans: list[PowerPlan]) -> str:
    out = []
    for plan in plans:
        out.append(plan.title)
        out += [f"  {line}" for line in plan.lines]
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"
