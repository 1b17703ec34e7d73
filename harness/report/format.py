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
