"""The one number formatter of every output: terminal text, Markdown, HTML, JUnit, the gate's reasons and the
power sentences all print proportions, points, money, seconds and p-values through these functions.

Rules every function follows:

* a value that does not exist is ``–`` (no estimate) or ``?`` (a missing interval bound), never ``0``;
* money shows as many significant digits as it takes for an interval's bounds to differ from its estimate,
  and cost is shown per 1,000 cases (``$1.81`` reads better than ``$1.8e-06`` per case);
* differences of [0,1] metrics are in points; cost in dollars per 1,000 cases; latency in seconds;
* a table cell with a detail a 120-column terminal leaves out (a test's name, token details, why an MDE is
  missing, cost's unit, which the table's heading names) is made here with its short form beside it
  (``Shown``), so the two never drift apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: the statistics modules format their sentences with this module too
    from harness.stats.intervals import Interval

NONE = "–"
MISSING_BOUND = "?"
COST_CASES = 1000  # cost is shown per this many cases
COST_UNIT = "per 1k cases"
QUALITY = ("pass_rate", "score")
_MAX_SIGNIFICANT = 6


@dataclass(frozen=True)
class Shown:
    """A table cell's full text and the short form a 120-column terminal shows instead (``--wide``,
    Markdown, JSON and HTML show ``text``)."""

    text: str
    short: str


def pct(value: float | None, digits: int = 1) -> str:
    """A proportion as a percentage: ``84.0%``."""
    return NONE if value is None else f"{value * 100:.{digits}f}%"


def points(value: float | None, digits: int = 1) -> str:
    """A size on a [0,1] metric in points, unsigned: ``5.0``."""
    return NONE if value is None else f"{value * 100:.{digits}f}"


def target_points(value: float) -> str:
    """A size someone chose (a margin, a drop to detect) in points, as typed: ``5``, ``2.5``."""
    return f"{value * 100:g}"


def signed_points(value: float | None, digits: int = 1) -> str:
    return NONE if value is None else f"{value * 100:+.{digits}f}"


def decimal(value: float | None, digits: int = 2, sign: bool = False) -> str:
    """A plain number such as an ICC, a kappa or a standard deviation."""
    if value is None:
        return NONE
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def decimal_interval(interval: Interval | None, digits: int = 2) -> str:
    """``0.31 [0.12, 0.55]``; ``0.00 [?, ?]`` when no interval exists (the disclosure says why)."""
    if interval is None:
        return NONE
    return (f"{decimal(interval.estimate, digits)} "
            f"{_bracket(interval, decimal(interval.low, digits), decimal(interval.high, digits))}")


def _bound(value: float | None, show: str) -> str:
    return MISSING_BOUND if value is None else show


def _bracket(interval: Interval, show_low: str, show_high: str) -> str:
    return f"[{_bound(interval.low, show_low)}, {_bound(interval.high, show_high)}]"


def pct_bounds(low: float | None, high: float | None, digits: int = 1) -> str:
    """``[71.5, 92.0]``: an interval's bounds in percent without the sign; ``?`` for a bound that does not
    exist."""

    def show(value: float | None) -> str:
        return MISSING_BOUND if value is None else f"{value * 100:.{digits}f}"

    return f"[{show(low)}, {show(high)}]"


def pct_interval(interval: Interval | None, digits: int = 1) -> str:
    """``84.0% [71.5, 92.0]``; bounds in percent without the sign to keep columns narrow; ``?`` for a
    bound that does not exist."""
    if interval is None or interval.estimate is None:
        return NONE
    return f"{pct(interval.estimate, digits)} {pct_bounds(interval.low, interval.high, digits)}"


def _decimals_for(values: list[float], significant: int) -> int:
    """Decimal places giving ``significant`` significant digits to the smallest non-zero magnitude."""
    magnitudes = [abs(v) for v in values if v != 0 and math.isfinite(v)]
    if not magnitudes:
        return 2
    return max(2, significant - 1 - math.floor(math.log10(min(magnitudes))))


def _money_digits(values: list[float]) -> int:
    """Decimals at which values that differ print differently (at most 6 significant digits)."""
    distinct = len(set(values))
    for significant in range(3, _MAX_SIGNIFICANT + 1):
        decimals = _decimals_for(values, significant)
        if len({f"{v:.{decimals}f}" for v in values}) == distinct:
            return decimals
    return _decimals_for(values, _MAX_SIGNIFICANT)


def money(value: float | None, decimals: int | None = None, sign: bool = False) -> str:
    """Dollars without scientific notation: ``$1.81``, ``$0.000179``; ``-$0.20`` (``+`` with ``sign``)."""
    if value is None:
        return NONE
    if value == 0:
        return "$0"
    places = _decimals_for([value], 3) if decimals is None else decimals
    prefix = "-" if value < 0 else ("+" if sign else "")
    return f"{prefix}${abs(value):,.{places}f}"


def cost_money(value: float | None, sign: bool = False, decimals: int | None = None) -> str:
    """A per-case cost shown per 1,000 cases."""
    return NONE if value is None else money(value * COST_CASES, decimals, sign)


def _money_parts(interval: Interval, sign: bool) -> tuple[str, str]:
    """A per-case cost's estimate and bracket per 1,000 cases, both with the digits the bounds need."""
    values = [v * COST_CASES for v in (interval.estimate, interval.low, interval.high) if v is not None]
    places = _money_digits(values)
    return (cost_money(interval.estimate, sign, places),
            _bracket(interval, cost_money(interval.low, sign, places), cost_money(interval.high, sign, places)))


def money_interval(interval: Interval | None, sign: bool = False) -> str:
    """Per-case cost with its interval, shown per 1,000 cases, with enough digits to tell the bounds apart."""
    if interval is None or interval.estimate is None:
        return NONE
    return " ".join(_money_parts(interval, sign))


def seconds(value: float | None, sign: bool = False) -> str:
    return NONE if value is None else (f"{value:+.3f}s" if sign else f"{value:.3f}s")


def _time_unit(value: float) -> tuple[float, str, int]:
    """Scale, unit and decimals for a time: milliseconds below one second (fast local models), else seconds."""
    if value >= 1.0:
        return 1.0, "s", 2
    return 1000.0, "ms", 0 if value >= 0.01 else 1


def latency(value: float | None) -> str:
    """One latency: ``850ms``, ``4.2ms``, ``1.25s``."""
    if value is None:
        return NONE
    scale, unit, digits = _time_unit(value)
    return f"{value * scale:.{digits}f}{unit}"


def duration(interval: Interval | None) -> str:
    """A latency quantile with its interval, in the estimate's unit (see ``latency``); a missing bound is
    ``?`` (the disclosure says how many calls it needs)."""
    if interval is None or interval.estimate is None:
        return NONE
    scale, unit, digits = _time_unit(interval.estimate)

    def show(value: float | None) -> str:
        return MISSING_BOUND if value is None else f"{value * scale:.{digits}f}"

    text = f"{show(interval.estimate)}{unit}"
    if interval.low is None and interval.high is None and interval.n < 1:
        return text
    return f"{text} [{show(interval.low)}, {show(interval.high)}]"


def p_value(p: float | None) -> str:
    """``0.034``; below 0.001 two significant digits (``1.9e-06``) so a tiny p is not shown as 0."""
    if p is None:
        return NONE
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


def relative_change(new: float | None, old: float | None) -> str:
    """``+12%``: the change from ``old`` to ``new`` in percent of ``old``; ``–`` without both, or from 0."""
    if new is None or old is None or old == 0:
        return NONE
    return f"{(new - old) / old * 100:+.0f}%"


def p_with_test(p: float | None, method: str) -> Shown:
    """``0.750 (paired permutation (swap within case))``; short: the p alone (the table's notes name tests)."""
    return Shown(f"{p_value(p)} ({method})", p_value(p))


def tokens_per_case(tokens_in: float, tokens_out: float, cached: float | None, reasoning: float | None) -> Shown:
    """Mean input/output tokens per case, ``102/8 (94 cached, 3 reasoning)``; short: ``102/8``."""
    short = f"{tokens_in:.0f}/{tokens_out:.0f}"
    parts = [f"{value:.0f} {name}" for name, value in (("cached", cached), ("reasoning", reasoning))
             if value is not None]
    return Shown(f"{short} ({', '.join(parts)})" if parts else short, short)


def signed(value: float | None, metric: str) -> str:
    """A difference in its metric's units: points for quality, dollars per 1k cases, seconds for latency."""
    if metric == "cost":
        return cost_money(value, sign=True)
    if metric.startswith(("latency", "ttft")):
        return seconds(value, sign=True)
    return signed_points(value)


def unit_of(metric: str) -> str:
    if metric in QUALITY:
        return " pts"
    return f" {COST_UNIT}" if metric == "cost" else ""


def short_unit_of(metric: str) -> str:
    """The unit a table cell's short form keeps: cost's "per 1k cases" is in the table's heading instead
    (``cost/1k cases``), as it already is for the estimates beside it."""
    return "" if metric == "cost" else unit_of(metric)


def signed_interval(interval: Interval | None, metric: str) -> str:
    """``-3.1 pts [-6.0, -0.2]`` (or dollars per 1k cases / seconds for cost and latency); ``?`` for a bound
    that does not exist."""
    if interval is None or interval.estimate is None:
        return NONE
    if metric == "cost":
        return money_interval(interval, sign=True) + unit_of(metric)
    low, high = signed(interval.low, metric), signed(interval.high, metric)
    return f"{signed(interval.estimate, metric)}{unit_of(metric)} {_bracket(interval, low, high)}"


def delta(interval: Interval | None, metric: str) -> Shown:
    """A comparison's change: ``signed_interval``; short: the estimate alone (money with the digits its
    interval needed), cost without its unit (see ``short_unit_of``)."""
    if interval is None or interval.estimate is None:
        return Shown(NONE, NONE)
    estimate = _money_parts(interval, sign=True)[0] if metric == "cost" else signed(interval.estimate, metric)
    return Shown(signed_interval(interval, metric), estimate + short_unit_of(metric))


def amount(value: float | None, metric: str, percent_sign: bool = False) -> str:
    """An unsigned value in the metric's units: a size (an MDE, a margin) in points, or with ``percent_sign``
    a level (an estimate) in percent; cost per 1k cases; latency in seconds."""
    if value is None:
        return NONE
    if metric == "cost":
        return cost_money(value)
    if metric.startswith(("latency", "ttft")):
        return seconds(value)
    return pct(value) if percent_sign else points(value)


def amount_with_unit(value: float | None, metric: str) -> str:
    """A size with its unit: ``5.0 pts``, ``$0.12 per 1k cases``, ``0.250s``."""
    return NONE if value is None else amount(value, metric) + unit_of(metric)


def mde_text(value: float | None, cases_needed: int | None, metric: str, short: bool = False) -> str:
    """One MDE in its unit, or ``not detectable at this size (needs ≈N cases)`` when none exists (short:
    ``needs ≈N cases``)."""
    if value is not None:
        return amount(value, metric) + (short_unit_of(metric) if short else unit_of(metric))
    if cases_needed is not None:
        return f"needs ≈{cases_needed} cases" if short else f"not detectable at this size (needs ≈{cases_needed} cases)"
    return NONE


def mde_pair(warn: float | None, block: float | None, unreachable: dict[str, Any], metric: str,
             short: bool = False) -> str:
    """``19.9 / 26.2 pts``, or each level's "not detectable" text: the MDE column of every output. The short
    form (``19.9/26.2 pts``, ``needs ≈558/≈906 cases``, ``$0.222/needs ≈7 cases``) leaves the why to the note
    under the table and cost's unit to the table's heading."""
    sep, unit = ("/", short_unit_of(metric)) if short else (" / ", unit_of(metric))
    if warn is not None and block is not None:
        return f"{amount(warn, metric)}{sep}{amount(block, metric)}{unit}"
    if warn is None and block is None and not unreachable:
        return NONE
    needed = {level: getattr(unreachable.get(level), "cases_needed", None) for level in ("warn", "block")}
    if warn is None and block is None and None not in needed.values():
        cases = f"needs ≈{needed['warn']}{sep}≈{needed['block']} cases"
        return cases if short else f"not detectable at this size ({cases})"
    return f"{mde_text(warn, needed['warn'], metric, short)}{sep}{mde_text(block, needed['block'], metric, short)}"


def case_value(value: float, binary: bool) -> str:
    """One case's value in a flip: ``pass``/``fail`` for one pass/fail sample, else its mean in percent."""
    if binary:
        return "pass" if value >= 1.0 else "fail"
    return pct(value, 0)


def disclosure(interval: Interval | None) -> str:
    """Method, n cases, k repeats and df of one number: every number must say how it was made."""
    if interval is None:
        return ""
    parts = [interval.method, f"{interval.level * 100:g}%", f"n={interval.n}", f"k={interval.k}"]
    if interval.df is not None:
        parts.append(f"df={interval.df:g}")
    if interval.note:
        parts.append(interval.note)
    return " · ".join(parts)
