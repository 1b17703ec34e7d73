"""``harness history`` in the terminal: per variant, one line per run and the drift verdict."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from harness.history.series import Point, Series
from harness.report.format import (
    NONE,
    QUALITY,
    cost_money,
    decimal,
    latency,
    p_value,
    pct,
    pct_bounds,
    relative_change,
    signed_points,
)

SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float | None]) -> str:
    """One character per value, scaled between the window's minimum and maximum; a gap is a space."""
    known = [v for v in values if v is not None]
    if not known:
        return ""
    low, high = min(known), max(known)
    span = high - low
    return "".join(" " if v is None else SPARKS[0 if span == 0 else round((v - low) / span * (len(SPARKS) - 1))]
                   for v in values)  # fmt: skip


def _date(stamp: float | None) -> str:
    return "?" if stamp is None else dt.datetime.fromtimestamp(stamp, dt.timezone.utc).strftime("%Y-%m-%d %H:%M")


def _commit(run: dict[str, Any]) -> str:
    sha = run.get("commit_sha")
    if not sha:
        return "–"
    return sha[:8] + ("*" if run.get("dirty") else "")


def show_value(point: Point, metric: str, wide: bool = True) -> str:
    value = point.value(metric)
    if metric == "pass_rate":
        bounds = pct_bounds(point.variant.get("pass_low"), point.variant.get("pass_high"), 0)
        return pct(value) + (f" {bounds}" if wide and value is not None else "")
    if metric == "score":
        return pct(value)
    if metric == "cost":
        return NONE if value is None else f"{cost_money(value)}/1k cases"
    return latency(value)


def _delta(current: float | None, previous: float | None, metric: str) -> str:
    if metric not in QUALITY:
        return relative_change(current, previous)
    return NONE if current is None or previous is None else signed_points(current - previous) + " pts"


def drift_lines(series: Series) -> list[str]:
    """The verdict, then one line per test (each fits 120 columns)."""
    drift = series.drift
    if drift is None:
        return ["drift: no runs"]
    t = drift.trend
    lines = [f"drift: {drift.verdict}"]
    if t.p_value is None:
        lines.append(f"  trend test: {t.note}")
    else:
        lines.append(f"  trend over {t.runs} runs: Kendall τ {decimal(t.kendall_tau, sign=True)}, "
                     f"permutation p {p_value(t.p_value)}")
    latest = drift.latest
    if latest is not None and latest.p_value is not None and latest.delta is not None:
        lines.append(f"  latest vs {latest.earlier_runs} earlier runs, {latest.cases} shared cases: "
                     f"{signed_points(latest.delta)} pts, p {p_value(latest.p_value)}"
                     + (" (one run: could be noise, watch the next)" if latest.flagged and not t.flagged else ""))
    return lines


def render_history(found: Sequence[Series], wide: bool = False) -> str:
    from tabulate import tabulate

    out: list[str] = []
    for series in found:
        branch = {p.run.get("branch") for p in series.points}
        where = f" on {next(iter(branch))}" if len(branch) == 1 and None not in branch else ""
        out.append(f"{series.suite} · {series.variant} · {series.metric} · last {len(series.points)} runs{where}")
        rows = []
        previous: float | None = None
        for point in series.points:
            value = point.value(series.metric)
            v = point.variant
            rows.append([_date(point.run.get("started_at")), _commit(point.run), point.run.get("branch") or "–",
                         show_value(point, series.metric, wide), _delta(value, previous, series.metric),
                         v.get("n_cases"), v.get("errors") or 0, point.run.get("run_id")])  # fmt: skip
            previous = value if value is not None else previous
        headers = ["date (UTC)", "commit", "branch", series.metric, "Δ prev", "cases", "err", "run"]
        out.append(tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True))
        verdict, *details = drift_lines(series)
        out.append(f"trend {sparkline([p.value(series.metric) for p in series.points])}   {verdict}")
        out.extend(details)
        out.extend(f"note: {n}" for n in series.notes)
        out.append("")
    return "\n".join(out)


def history_json(found: Sequence[Series]) -> str:
    def one(series: Series) -> dict[str, Any]:
        d = series.drift
        return {
            "suite": series.suite, "variant": series.variant, "metric": series.metric,
            "runs": [{**{k: p.run.get(k) for k in ("run_id", "started_at", "commit_sha", "branch", "dirty",
                                                   "status", "suite_hash")},
                      "value": p.value(series.metric), "pass_low": p.variant.get("pass_low"),
                      "pass_high": p.variant.get("pass_high"), "n_cases": p.variant.get("n_cases"),
                      "errors": p.variant.get("errors")} for p in series.points],
            "drift": None if d is None else {"verdict": d.verdict, "trend": vars(d.trend),
                                             "latest": None if d.latest is None else vars(d.latest)},
            "notes": series.notes,
        }  # fmt: skip

    return json.dumps({"schema": "prompt-harness/history", "schema_version": 1,
                       "series": [one(s) for s in found]}, indent=2, allow_nan=False) + "\n"  # fmt: skip
