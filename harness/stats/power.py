"""Power, minimum detectable effect and sample size for the paired one-sided gate test (spec §8.4)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from harness.report.format import amount_with_unit, decimal, p_value, points, target_points
from harness.stats import dist
from harness.stats.intervals import json_float
from harness.stats.paired import smallest_p

WARN_ALPHA = 0.05
BLOCK_ALPHA = 0.01
DEFAULT_POWER = 0.8


def power_paired(
    delta: float, sd_d: float, n: int, alpha: float = WARN_ALPHA, two_sided: bool = False
) -> float:
    """Probability that the paired t test on n cases detects a true drop ``delta`` (exact, noncentral t)."""
    if n < 2:
        return 0.0
    from scipy import stats  # the noncentral t: only comparisons size their suites

    df = n - 1
    nc = delta * math.sqrt(n) / sd_d
    if two_sided:
        crit = float(stats.t.ppf(1.0 - alpha / 2.0, df))
        return float(stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc))
    return float(stats.nct.sf(stats.t.ppf(1.0 - alpha, df), df, nc))


def mde_normal(sd_d: float, n: int, alpha: float = WARN_ALPHA, power: float = DEFAULT_POWER) -> float:
    """Normal-approximation minimum detectable drop: (z_{1-alpha} + z_{power}) * sd_d / sqrt(n)."""
    return float((dist.norm_ppf(1.0 - alpha) + dist.norm_ppf(power)) * sd_d / math.sqrt(n))


def mde(sd_d: float, n: int, alpha: float = WARN_ALPHA, power: float = DEFAULT_POWER) -> float | None:
    """Smallest drop the one-sided paired t test detects with the given power; None below 2 cases."""
    if n < 2:
        return None
    if sd_d <= 0.0:
        return 0.0
    approx = mde_normal(sd_d, n, alpha, power)
    # The t test is less powerful than z, so the root lies above the normal MDE; widen until bracketed.
    upper = 2.0 * approx
    while power_paired(upper, sd_d, n, alpha) < power:
        upper *= 2.0
    return dist.brentq(lambda d: power_paired(d, sd_d, n, alpha) - power, 0.5 * approx, upper)


def required_cases_normal(
    delta: float, sd_d: float, alpha: float = WARN_ALPHA, power: float = DEFAULT_POWER
) -> int:
    z_sum = dist.norm_ppf(1.0 - alpha) + dist.norm_ppf(power)
    return max(2, math.ceil((z_sum * sd_d / delta) ** 2))


def required_cases(delta: float, sd_d: float, alpha: float = WARN_ALPHA, power: float = DEFAULT_POWER) -> int:
    """Smallest number of cases at which the paired one-sided t test has ``power`` against a drop delta."""
    if delta <= 0.0:
        raise ValueError("delta must be positive")
    if sd_d <= 0.0:
        return 2
    n = required_cases_normal(delta, sd_d, alpha, power)
    # The exact answer is at most a few cases above the normal one; step down first in case it is below.
    while n > 2 and power_paired(delta, sd_d, n - 1, alpha) >= power:
        n -= 1
    while power_paired(delta, sd_d, n, alpha) < power:
        n += 1
    return n


def sd_diff_binary(p_new: float, p_base: float, phi: float = 0.0) -> float:
    """sd of per-case differences of two binary outcomes with pass rates p_new, p_base and correlation phi."""
    v_new, v_base = p_new * (1.0 - p_new), p_base * (1.0 - p_base)
    return math.sqrt(max(0.0, v_new + v_base - 2.0 * phi * math.sqrt(v_new * v_base)))


def sd_diff_components(
    omega2: float, within_new: float, within_base: float, k_new: float = 1.0, k_base: float = 1.0
) -> float:
    """sd of per-case differences when each side averages k repeats: sqrt(omega2 + s2_new/k + s2_base/k)."""
    return math.sqrt(omega2 + within_new / k_new + within_base / k_base)


def omega2_from_run(
    var_d: float, within_new: float, within_base: float, k_new: float, k_base: float
) -> float:
    """Between-case variance of the true differences, from an observed var(d_i) and within variances."""
    return max(0.0, var_d - within_new / k_new - within_base / k_base)


MIN_CASES_FOR_REPEATS = 20  # fewer cases cannot split var(d) into between- and within-case parts usefully
MAX_REPEATS = 50  # advice beyond this is "add cases", not a number of repeats


@dataclass(frozen=True)
class Detectable:
    """The minimum detectable drop at one level, or why there is none at this size and the cases needed."""

    mde: float | None
    reason: str | None = None
    cases_needed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"mde": json_float(self.mde), "reason": self.reason, "cases_needed": self.cases_needed}


def detectable(
    sd_d: float,
    n: int,
    alpha: float,
    power: float = DEFAULT_POWER,
    *,
    room: float | None = None,
    min_p: float = 0.0,
    cases_for_level: int = 2,
    target: float | None = None,
    metric: str = "pass_rate",
) -> Detectable:
    """The MDE at ``alpha``, unless no drop is detectable at this size: when the test's smallest attainable
    p (``min_p``, e.g. 2**-n for a sign-flip test) cannot go below ``alpha``, or when the MDE exceeds the
    ``room`` between the baseline and the bottom of the scale (a 20% pass rate cannot drop 74 points).
    ``cases_needed`` is then the cases to detect ``target`` (else the room), never fewer than the test needs
    to reach the level at all (``cases_for_level``)."""
    value = mde(sd_d, n, alpha, power) if sd_d > 0 else None
    reason = None
    if value is None:
        reason = "fewer than 2 cases" if n < 2 else "no spread in the per-case differences"
    elif min_p >= alpha:
        reason = f"with {n} cases the test's smallest possible p is {p_value(min_p)}, not below {alpha:g}"
    elif room is not None and value > room:
        reason = (f"the drop it could detect ({amount_with_unit(value, metric)}) is larger than the "
                  f"{amount_with_unit(room, metric)} the baseline can drop")
    if reason is None:
        return Detectable(value)
    goal = target if target is not None and target > 0 else room
    needed = cases_for_level
    if goal is not None and goal > 0 and sd_d > 0:
        needed = max(needed, required_cases(goal, sd_d, alpha, power))
    return Detectable(None, reason, needed)


def _cases_for_level(method: str, alpha: float) -> int:
    """Fewest cases at which ``method`` can give a p below alpha at all."""
    n = 2
    while smallest_p(n, method) >= alpha:
        n += 1
    return n


def detectable_levels(sd_d: float, n: int, method: str, margin: float, metric: str,
                      room: float | None) -> dict[str, Detectable]:
    """What ``method`` can detect at the WARN and BLOCK levels: {"warn": Detectable, "block": Detectable}."""
    return {
        level: detectable(sd_d, n, alpha, room=room, min_p=smallest_p(n, method),
                          cases_for_level=_cases_for_level(method, alpha), target=margin or None, metric=metric)
        for level, alpha in (("warn", WARN_ALPHA), ("block", BLOCK_ALPHA))
    }  # fmt: skip


def mde_fields(levels: dict[str, Detectable]) -> dict[str, Any]:
    """A comparison's MDE fields from ``detectable_levels``: the MDEs, and why a level has none."""
    return {
        "mde_warn": levels["warn"].mde,
        "mde_block": levels["block"].mde,
        "mde_unreachable": {level: d for level, d in levels.items() if d.mde is None},
    }


def required_repeats(
    delta: float,
    n: int,
    omega2: float,
    within_new: float,
    within_base: float,
    alpha: float = WARN_ALPHA,
    power: float = DEFAULT_POWER,
    max_repeats: int = MAX_REPEATS,
) -> int | None:
    """Repeats per case (both sides) for ``power`` at drop delta with n cases, by the same noncentral-t
    power as ``mde`` (so the projected MDE never misses delta); None when no k up to ``max_repeats`` does."""
    for k in range(1, max_repeats + 1):
        sd_k = sd_diff_components(omega2, within_new, within_base, k, k)
        if sd_k == 0.0 or power_paired(delta, sd_k, n, alpha) >= power:
            return k
    return None


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _level_text(d: Detectable) -> str:
    if d.mde is not None:
        return f"{points(d.mde)} points"
    return f"not detectable at this size (needs ≈{d.cases_needed} cases: {d.reason})"


def mde_sentence(
    n: int,
    k: int,
    sd_d: float,
    delta: float = 0.05,
    power: float = DEFAULT_POWER,
    omega2: float | None = None,
    within_new: float | None = None,
    within_base: float | None = None,
    warn_alpha: float = WARN_ALPHA,
    block_alpha: float = BLOCK_ALPHA,
    warn: Detectable | None = None,
    block: Detectable | None = None,
) -> str:
    """The §8.4 message: what this suite can detect, and the cases or repeats needed to detect ``delta``.

    Differences are on a [0,1] metric and printed in points. ``warn``/``block`` carry the comparison's own
    detectability (its test's smallest p, the baseline's room); computed from sd_d alone when not given.
    The repeats clause needs the variance components (``omega2`` and both within-case variances) and at
    least ``MIN_CASES_FOR_REPEATS`` cases; its k comes from the same power formula as the MDE.
    """
    head = f"With {_plural(n, 'case')} × {_plural(k, 'repeat')} (sd of per-case differences {decimal(sd_d)})"
    warn = warn or detectable(sd_d, n, warn_alpha, power, target=delta)
    block = block or detectable(sd_d, n, block_alpha, power, target=delta)
    pct = f"{100.0 * power:.0f}%"
    if warn.mde is None and block.mde is None:
        text = (f"{head}, no drop is detectable with {pct} power: at the WARN level {_level_text(warn)}; at "
                f"BLOCK {_level_text(block)}.")
        return text
    text = (f"{head}, this suite detects a drop of {_level_text(warn)} with {pct} power at the WARN level "
            f"({_level_text(block)} at BLOCK).")
    if warn.mde is not None and warn.mde <= delta:
        return text + f" That is enough to detect {target_points(delta)} points."
    cases_warn = required_cases(delta, sd_d, warn_alpha, power)
    cases_block = required_cases(delta, sd_d, block_alpha, power)
    if warn.cases_needed is not None:
        cases_warn = max(cases_warn, warn.cases_needed)
    if block.cases_needed is not None:
        cases_block = max(cases_block, block.cases_needed)
    text += f" To detect {target_points(delta)} points: {cases_warn} cases ({cases_block} for BLOCK)"
    if omega2 is None or within_new is None or within_base is None:
        return text + "."
    if n < MIN_CASES_FOR_REPEATS:
        return text + (f". No advice on repeats: splitting the noise into between- and within-case parts needs "
                       f"at least {MIN_CASES_FOR_REPEATS} cases (this suite has {n}).")
    k_needed = required_repeats(delta, n, omega2, within_new, within_base, warn_alpha, power)
    if k_needed is None:
        return text + (f" — up to {MAX_REPEATS} repeats per case cannot get there (the cases themselves differ "
                       "too much): add cases.")
    if k_needed <= k:
        return text + "."
    sd_k = sd_diff_components(omega2, within_new, within_base, k_needed, k_needed)
    warn_k, block_k = mde(sd_k, n, warn_alpha, power), mde(sd_k, n, block_alpha, power)
    estimate_note = " (between-case variance estimated as 0: optimistic)" if omega2 == 0.0 else ""
    return text + (
        f" — or keep {n} cases and run k = {k_needed} repeats per case (projected MDE {points(warn_k)} "
        f"points WARN / {points(block_k)} BLOCK; {required_cases(delta, sd_k, warn_alpha, power)} cases "
        f"suffice for {target_points(delta)} points){estimate_note}."
    )
