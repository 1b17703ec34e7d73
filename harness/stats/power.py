"""Power, minimum detectable effect and sample size for the paired one-sided gate test (spec §8.4)."""

from __future__ import annotations

import math

from scipy import optimize, stats

WARN_ALPHA = 0.05
BLOCK_ALPHA = 0.01
DEFAULT_POWER = 0.8


def power_paired(
    delta: float, sd_d: float, n: int, alpha: float = WARN_ALPHA, two_sided: bool = False
) -> float:
    """Probability that the paired t test on n cases detects a true drop ``delta`` (exact, noncentral t)."""
    if n < 2:
        return 0.0
    df = n - 1
    nc = delta * math.sqrt(n) / sd_d
    if two_sided:
        crit = float(stats.t.ppf(1.0 - alpha / 2.0, df))
        return float(stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc))
    return float(stats.nct.sf(stats.t.ppf(1.0 - alpha, df), df, nc))


def mde_normal(sd_d: float, n: int, alpha: float = WARN_ALPHA, power: float = DEFAULT_POWER) -> float:
    """Normal-approximation minimum detectable drop: (z_{1-alpha} + z_{power}) * sd_d / sqrt(n)."""
    return float((stats.norm.ppf(1.0 - alpha) + stats.norm.ppf(power)) * sd_d / math.sqrt(n))


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
    return float(optimize.brentq(lambda d: power_paired(d, sd_d, n, alpha) - power, 0.5 * approx, upper))


def required_cases_normal(
    delta: float, sd_d: float, alpha: float = WARN_ALPHA, power: float = DEFAULT_POWER
) -> int:
    z_sum = float(stats.norm.ppf(1.0 - alpha) + stats.norm.ppf(power))
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


def required_repeats(
    delta: float,
    n: int,
    omega2: float,
    within_new: float,
    within_base: float,
    alpha: float = WARN_ALPHA,
    power: float = DEFAULT_POWER,
) -> int | None:
    """Repeats per case (both sides) for ``power`` at drop delta with n cases; None when none suffice."""
    target = (delta * math.sqrt(n) / float(stats.norm.ppf(1.0 - alpha) + stats.norm.ppf(power))) ** 2
    if target <= omega2:
        return None
    return max(1, math.ceil((within_new + within_base) / (target - omega2)))


def _points(x: float) -> str:
    return f"{100.0 * x:.1f}"


def _delta_points(x: float) -> str:
    return f"{100.0 * x:g}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


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
) -> str:
    """The §8.4 message: what this suite can detect, and the cases or repeats needed to detect ``delta``.

    Differences are on a [0,1] metric and printed in points. The repeats clause needs the variance
    components (``omega2`` and both within-case variances).
    """
    head = f"With {_plural(n, 'case')} × {_plural(k, 'repeat')} (sd of per-case differences {sd_d:.2f})"
    warn_mde, block_mde = mde(sd_d, n, warn_alpha, power), mde(sd_d, n, block_alpha, power)
    if warn_mde is None or block_mde is None:
        return f"{head}, the suite is too small to detect any drop: add cases."
    pct = f"{100.0 * power:.0f}%"
    text = (
        f"{head}, this suite detects a drop of {_points(warn_mde)} points with {pct} power at the WARN level "
        f"({_points(block_mde)} points at BLOCK)."
    )
    if warn_mde <= delta:
        return text + f" That is enough to detect {_delta_points(delta)} points."
    cases_warn = required_cases(delta, sd_d, warn_alpha, power)
    cases_block = required_cases(delta, sd_d, block_alpha, power)
    text += f" To detect {_delta_points(delta)} points: {cases_warn} cases ({cases_block} for BLOCK)"
    if omega2 is None or within_new is None or within_base is None:
        return text + "."
    k_needed = required_repeats(delta, n, omega2, within_new, within_base, warn_alpha, power)
    if k_needed is None:
        return text + " — more repeats cannot get there (the cases themselves differ too much): add cases."
    if k_needed <= k:
        return text + "."
    sd_k = sd_diff_components(omega2, within_new, within_base, k_needed, k_needed)
    warn_k, block_k = mde(sd_k, n, warn_alpha, power), mde(sd_k, n, block_alpha, power)
    assert warn_k is not None and block_k is not None
    return text + (
        f" — or keep {n} cases and run k = {k_needed} repeats per case (projected MDE {_points(warn_k)} "
        f"points WARN / {_points(block_k)} BLOCK; {required_cases(delta, sd_k, warn_alpha, power)} cases "
        f"suffice for {_delta_points(delta)} points)."
    )
