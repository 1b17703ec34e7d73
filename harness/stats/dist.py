"""The few ``scipy.stats`` results a run summary needs, computed on ``scipy.special``'s functions.

Why: ``harness run`` prints a summary after every run, and importing ``scipy.stats`` for it cost about 1 s of
CPU and 50 MB of memory, more than the trials of a 1,000-case replay. ``scipy.special`` (which ``scipy.stats``
itself calls for these distributions) costs a fifth of that. Each function here evaluates the same special
function with the same arithmetic as the ``scipy.stats`` call named in its docstring, so every number is
identical to the last bit: ``tests/test_stats_dist.py`` compares them over grids of inputs. Anything more
involved (bootstraps, permutation tests, t-tests of comparisons) still imports ``scipy.stats``, where used.

The binomial functions are the Boost ones ``scipy.stats.binom`` calls (private ufuncs of ``scipy.special``);
if a scipy release moves them, the ``scipy.stats`` call is used instead: slower to import, same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from scipy import special

try:
    from scipy.special import _ufuncs as _boost

    _BINOM_SF, _BINOM_CDF = _boost._binom_sf, _boost._binom_cdf
    _BINOM_PPF, _BINOM_ISF, _BETA_PPF = _boost._binom_ppf, _boost._binom_isf, _boost._beta_ppf
except (ImportError, AttributeError):  # pragma: no cover - depends on the scipy release
    _BINOM_SF = _BINOM_CDF = _BINOM_PPF = _BINOM_ISF = _BETA_PPF = None

# scipy.optimize.brentq's defaults, which binomtest's exact interval uses.
_XTOL = 2e-12
_RTOL = 4 * 2.220446049250313e-16
_MAXITER = 100


def _stats() -> Any:
    from scipy import stats

    return stats


def norm_ppf(q: float) -> float:
    """``scipy.stats.norm.ppf(q)`` for 0 < q < 1."""
    return float(special.ndtri(q))


def norm_cdf(x: float) -> float:
    """``scipy.stats.norm.cdf(x)``."""
    return float(special.ndtr(x))


def t_ppf(q: float, df: float) -> float:
    """``scipy.stats.t.ppf(q, df)`` for 0 < q < 1 (NaN when df ≤ 0, as scipy gives)."""
    if not df > 0:
        return math.nan
    return float(special.stdtrit(df, q))


def beta_ppf(q: float, a: float, b: float) -> float:
    """``scipy.stats.beta.ppf(q, a, b)``."""
    if _BETA_PPF is None or not (0 < q < 1 and a > 0 and b > 0):
        return float(_stats().beta.ppf(q, a, b))
    return float(_BETA_PPF(q, a, b))


def binom_sf(k: float, n: int, p: float) -> float:
    """``scipy.stats.binom.sf(k, n, p)`` for 0 ≤ p ≤ 1."""
    if _BINOM_SF is None or math.isnan(k):
        return float(_stats().binom.sf(k, n, p))
    if k < 0:
        return 1.0
    if k >= n:
        return 0.0
    return min(max(float(_BINOM_SF(math.floor(k), n, p)), 0.0), 1.0)


def binom_cdf(k: float, n: int, p: float) -> float:
    """``scipy.stats.binom.cdf(k, n, p)`` for 0 ≤ p ≤ 1."""
    if _BINOM_CDF is None or math.isnan(k):
        return float(_stats().binom.cdf(k, n, p))
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return min(max(float(_BINOM_CDF(math.floor(k), n, p)), 0.0), 1.0)


def binom_ppf(q: float, n: int, p: float) -> float:
    """``scipy.stats.binom.ppf(q, n, p)``: the smallest k with cdf(k) ≥ q."""
    if _BINOM_PPF is None or not 0 < q < 1:
        return float(_stats().binom.ppf(q, n, p))
    return float(_BINOM_PPF(q, n, p))


def binom_isf(q: float, n: int, p: float) -> float:
    """``scipy.stats.binom.isf(q, n, p)``: the smallest k with sf(k) ≤ q."""
    if _BINOM_ISF is None or not 0 < q < 1:
        return float(_stats().binom.isf(q, n, p))
    return float(_BINOM_ISF(q, n, p))


def brentq(f: Callable[[float], float], a: float, b: float) -> float:
    """``scipy.optimize.brentq(f, a, b)`` with its default tolerances, step for step (Brent's method as
    scipy's C implementation runs it), so its roots are the same doubles without importing scipy.optimize."""
    x_pre, x_cur = float(a), float(b)
    f_pre, f_cur = float(f(x_pre)), float(f(x_cur))
    if f_pre * f_cur > 0:
        raise ValueError("f(a) and f(b) must have different signs")
    if f_pre == 0:
        return x_pre
    if f_cur == 0:
        return x_cur
    x_blk = f_blk = s_pre = s_cur = 0.0
    for _ in range(_MAXITER):
        if f_pre * f_cur < 0:
            x_blk, f_blk = x_pre, f_pre
            s_pre = s_cur = x_cur - x_pre
        if abs(f_blk) < abs(f_cur):
            x_pre, x_cur, x_blk = x_cur, x_blk, x_cur
            f_pre, f_cur, f_blk = f_cur, f_blk, f_cur
        delta = (_XTOL + _RTOL * abs(x_cur)) / 2
        s_bis = (x_blk - x_cur) / 2
        if f_cur == 0 or abs(s_bis) < delta:
            return x_cur
        if abs(s_pre) > delta and abs(f_cur) < abs(f_pre):
            if x_pre == x_blk:  # secant
                s_try = -f_cur * (x_cur - x_pre) / (f_cur - f_pre)
            else:  # inverse quadratic
                d_pre = (f_pre - f_cur) / (x_pre - x_cur)
                d_blk = (f_blk - f_cur) / (x_blk - x_cur)
                s_try = -f_cur * (f_blk * d_blk - f_pre * d_pre) / (d_blk * d_pre * (f_blk - f_pre))
            if 2 * abs(s_try) < min(abs(s_pre), 3 * abs(s_bis) - delta):
                s_pre, s_cur = s_cur, s_try
            else:
                s_pre = s_cur = s_bis
        else:
            s_pre = s_cur = s_bis
        x_pre, f_pre = x_cur, f_cur
        x_cur += s_cur if abs(s_cur) > delta else (delta if s_bis > 0 else -delta)
        f_cur = float(f(x_cur))
        if math.isnan(f_cur):
            raise ValueError("the function returned NaN")
    raise RuntimeError("numerical solver failed to converge when computing the confidence limits")


def binom_proportion_ci(k: int, n: int, level: float, method: str) -> tuple[float, float]:
    """``scipy.stats.binomtest(k, n).proportion_ci(level, method)``, two-sided, ``wilson`` or ``exact``."""
    if method == "wilson":
        p = k / n
        z = special.ndtri(0.5 + 0.5 * level)
        denom = 2 * (n + z**2)
        center = (2 * n * p + z**2) / denom
        delta = z / denom * math.sqrt(4 * n * p * (1 - p) + z**2)
        return (0.0 if k == 0 else float(center - delta)), (1.0 if k == n else float(center + delta))
    if method != "exact":
        raise ValueError(f"unknown method {method!r}")
    alpha = (1 - level) / 2
    low = 0.0 if k == 0 else brentq(lambda p: binom_sf(k - 1, n, p) - alpha, 0, 1)
    high = 1.0 if k == n else brentq(lambda p: binom_cdf(k, n, p) - alpha, 0, 1)
    return low, high


def order_statistic_ci(sorted_values: Sequence[float], p: float, level: float) -> tuple[float, float]:
    """``scipy.stats.quantile_test(x, p=p).confidence_interval(level)`` on ``sorted(x)``: the order
    statistics bracketing the p-quantile; NaN for a bound the sample is too small to give."""
    n = len(sorted_values)
    tail = (1 - level) / 2
    low_index = int(binom_ppf(tail, n, p)) - 1
    high_index = int(binom_isf(tail, n, p))
    low = float(sorted_values[low_index]) if low_index >= 0 else math.nan
    high = float(sorted_values[high_index]) if high_index < n else math.nan
    return low, high
