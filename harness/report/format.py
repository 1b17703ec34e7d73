"""Number formatting shared by every report format, so the terminal, Markdown and HTML agree."""

from __future__ import annotations

from harness.stats.intervals import Interval


def pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value * 100:.{digits}f}%"


def pct_interval(interval: Interval | None, digits: int = 1) -> str:
    """``84.0% [71.5, 92.0]``; bounds in percent without the sign to keep columns narrow."""
    if interval is None or interval.estimate is None:
        return "–"
    if interval.low is None or interval.high is None:
        return f"{pct(interval.estimate, digits)} [{interval.note or 'no bound'}]"
    return (f"{pct(interval.estimate, digits)} "
            f"[{interval.low * 100:.{digits}f}, {interval.high * 100:.{digits}f}]")


def money(value: float | None) -> str:
    if value is None:
        return "–"
    if value == 0:
        return "$0"
    return f"${value:.2g}" if value < 0.01 else f"${value:.4f}"


def money_interval(interval: Interval | None) -> str:
    if interval is None or interval.estimate is None:
        return "–"
    if interval.low is None or interval.high is None:
        return money(interval.estimate)
    return f"{money(interval.estimate)} [{money(interval.low)}, {money(interval.high)}]"


def seconds(interval: Interval | None) -> str:
    if interval is None or interval.estimate is None:
        return "–"
    text = f"{interval.estimate:.2f}s"
    if interval.low is not None and interval.high is not None:
        return f"{text} [{interval.low:.2f}, {interval.high:.2f}]"
    return f"{text} [{interval.note}]" if interval.note else text


def signed_points(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value * 100:+.{digits}f}"


def duration(interval: Interval | None) -> str:
    """A latency quantile: milliseconds below one second (fast local models), else seconds; a missing
    bound is ``?`` (the disclosure says how many calls it needs)."""
    if interval is None or interval.estimate is None:
        return "–"
    if interval.estimate >= 1.0:
        scale, unit, digits = 1.0, "s", 2
    else:
        scale, unit, digits = 1000.0, "ms", 0 if interval.estimate >= 0.01 else 1

    def show(value: float | None) -> str:
        return "?" if value is None else f"{value * scale:.{digits}f}"

    text = f"{show(interval.estimate)}{unit}"
    if interval.low is None and interval.high is None:
        return text
    return f"{text} [{show(interval.low)}, {show(interval.high)}]"


def p_value(p: float | None) -> str:
    if p is None:
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def signed_money(value: float | None) -> str:
    if value is None:
        return "–"
    sign = "-" if value < 0 else "+"
    return sign + money(abs(value))


def signed_seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:+.3f}s"


def signed(value: float | None, metric: str) -> str:
    """A difference in its metric's units: points for quality, dollars for cost, seconds for latency."""
    if metric == "cost":
        return signed_money(value)
    if metric.startswith("latency"):
        return signed_seconds(value)
    return signed_points(value)


def signed_interval(interval: Interval | None, metric: str) -> str:
    """``-3.1 pts [-6.0, -0.2]`` (or dollars / seconds for cost and latency)."""
    if interval is None or interval.estimate is None:
        return "–"
    unit = " pts" if metric in ("pass_rate", "score") else ""
    text = f"{signed(interval.estimate, metric)}{unit}"
    if interval.low is None or interval.high is None:
        return f"{text} [{interval.note or 'no interval'}]"
    return f"{text} [{signed(interval.low, metric)}, {signed(interval.high, metric)}]"


def amount(value: float | None, metric: str, percent_sign: bool = False) -> str:
    """An unsigned value in the metric's units: a size (an MDE) in points, or with ``percent_sign`` a level
    (an estimate) in percent."""
    if value is None:
        return "–"
    if metric == "cost":
        return money(value)
    if metric.startswith("latency"):
        return f"{value:.3f}s"
    return pct(value) if percent_sign else f"{value * 100:.1f}"


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
