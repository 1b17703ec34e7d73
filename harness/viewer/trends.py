"""A suite over runs, from the history index: per-variant series and a heat map of cases × runs."""

from __future__ import annotations

from typing import Any

from harness.history.index import HistoryIndex
from harness.report.format import duration, pct_interval
from harness.stats.intervals import Interval
from harness.viewer.rundata import per_1k_cases

HEATMAP_RUNS = 30  # the newest runs a heat map shows
SERIES_FIELDS = ("run_id", "pass_rate", "pass_low", "pass_high", "pass_method", "score", "cost_per_case",
                 "cost_total", "judge_cost_total", "latency_p50_s", "latency_p95_s", "ttft_p50_s", "n_cases",
                 "errors")  # fmt: skip


def cell_state(row: dict[str, Any]) -> str:
    trials, passed = row["trials"] or 0, row["passed"] or 0
    errors, failed = row["errors"] or 0, row["failed"] or 0
    if trials and passed == trials:
        return "pass"
    if trials and errors == trials:
        return "error"
    if trials and failed + errors == trials:
        return "fail"
    return "mixed" if passed else "undecided"


def _display(v: dict[str, Any]) -> dict[str, str]:
    low, high = v["pass_low"], v["pass_high"]
    rate = Interval(v["pass_rate"], low, high, v["pass_method"] or "", 0.95, v["n_cases"] or 0)
    latency = v["latency_p95_s"]
    return {"pass_rate": pct_interval(rate), "cost": per_1k_cases(v["cost_per_case"]),
            "latency_p95": duration(None if latency is None else Interval(latency, None, None, "", 0.95, 0))}


def suite_trends(index: HistoryIndex, suite: str) -> dict[str, Any]:
    runs = [r for r in index.runs(suite) if (r["trials_done"] or 0) > 0]
    run_ids = [r["run_id"] for r in runs]
    variants = index.variants(suite, run_ids)
    order = {run_id: i for i, run_id in enumerate(run_ids)}
    labels = list(dict.fromkeys(v["variant"] for v in sorted(variants, key=lambda v: order[v["run_id"]])))
    series = {label: [] for label in labels}  # type: dict[str, list[dict[str, Any]]]
    for v in sorted(variants, key=lambda v: order[v["run_id"]]):
        point = {k: v[k] for k in SERIES_FIELDS}
        point["display"] = _display(v)
        series[v["variant"]].append(point)
    shown = run_ids[-HEATMAP_RUNS:]
    shown_set = set(shown)
    heat: dict[str, dict[str, dict[str, str]]] = {label: {} for label in labels}
    for row in index.cases(suite):
        if row["run_id"] in shown_set and row["variant"] in heat:
            heat[row["variant"]].setdefault(row["case_id"], {})[row["run_id"]] = cell_state(row)
    heatmap = {}
    for label, cases in heat.items():
        rows = []
        for case_id in sorted(cases):
            cells, previous = [], None
            for run_id in shown:
                state = cases[case_id].get(run_id)
                changed = state is not None and previous is not None and state != previous
                cells.append(None if state is None else [state, changed])
                previous = state if state is not None else previous
            rows.append({"case": case_id, "cells": cells})
        heatmap[label] = rows
    return {
        "suite": suite,
        "runs": [{k: r[k] for k in ("run_id", "started_at", "status", "commit_sha", "branch", "dirty", "suite_hash")}
                 for r in runs],
        "variants": labels, "series": series, "heatmap_runs": shown, "heatmap": heatmap,
    }  # fmt: skip
