"""One run's pages: a summary (the report's numbers, headline and run facts) and its cases in pages."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.report.format import amount_with_unit, duration, p_value, pct, pct_interval, signed_interval
from harness.report.headline import headline_sentences
from harness.store import RESULTS_FILE, Manifest, TrialResult, read_results

CASES_PER_PAGE = 200
OUTPUT_CHARS = 4000  # per trial shown; the run folder keeps the whole output
REASON_CHARS = 600


def trial_view(t: TrialResult) -> dict[str, Any]:
    """What a page shows of one trial."""
    output = t.output or ""
    if not output and t.tool_calls:
        output = "\n".join(f"{c.get('name')}({c.get('arguments')})" for c in t.tool_calls)
    return {
        "repeat": t.repeat,
        "state": "error" if t.error is not None else {True: "pass", False: "fail"}.get(t.passed, "undecided"),
        "output": output[:OUTPUT_CHARS] + ("…" if len(output) > OUTPUT_CHARS else ""),
        "error": None if t.error is None else f"{t.error.kind}: {t.error.message}"[:REASON_CHARS],
        "grades": [{"grader": g.grader, "passed": g.passed, "reason": (g.reason or g.error or "")[:REASON_CHARS]}
                   for g in t.grades],
        "cost": t.cost, "judge_cost": t.judge_cost, "latency_ms": t.latency_ms,
    }  # fmt: skip


def case_state(states: Iterable[str]) -> str:
    found = list(states)
    if found and all(s == "pass" for s in found):
        return "pass"
    if found and all(s == "error" for s in found):
        return "error"
    if found and all(s in ("fail", "error") for s in found):
        return "fail"
    return "undecided" if all(s == "undecided" for s in found) else "mixed"


def run_cases(directory: Path, labels: list[str]) -> list[dict[str, Any]]:
    """Every case of a run with each variant's trials (trimmed), sorted by case id: one pass over results."""
    from harness.report.cases import request_messages

    cases: dict[str, dict[str, Any]] = {}
    for t in read_results(directory / RESULTS_FILE):
        case = cases.setdefault(t.case_id, {"id": t.case_id, "inputs": {}, "variants": {}})
        if t.prompt not in case["inputs"] and t.request:
            case["inputs"][t.prompt] = [[m.role, m.content[:OUTPUT_CHARS]] for m in request_messages(t.request)]
        case["variants"].setdefault(t.variant, []).append(trial_view(t))
    out = []
    for case_id in sorted(cases):
        case = cases[case_id]
        ordered = {label: sorted(case["variants"][label], key=lambda v: v["repeat"])
                   for label in labels if label in case["variants"]}  # fmt: skip
        ordered.update({k: v for k, v in case["variants"].items() if k not in ordered})
        case["variants"] = {k: {"state": case_state(v["state"] for v in trials), "trials": trials}
                            for k, trials in ordered.items()}  # fmt: skip
        out.append(case)
    return out


def per_1k_cases(cost_per_case: float | None) -> str:
    """Money a person can read: "$0.43 per 1k cases" (the reports' own formatter)."""
    return amount_with_unit(cost_per_case, "cost")


def variant_display(v: Any) -> dict[str, str]:
    """A variant's numbers as the reports print them (one formatter: harness.report.format)."""
    judge = v.judge_cost_per_case
    return {
        "pass_rate": pct_interval(v.pass_rate), "score": pct_interval(v.score) if v.score is not None else "–",
        "errors": pct(v.error_rate.estimate), "cost": per_1k_cases(None if v.cost_per_case is None
                                                                  else v.cost_per_case.estimate),
        "judge_cost": per_1k_cases(judge) if judge else "–",
        "latency_p50": duration(v.latency_p50_s), "latency_p95": duration(v.latency_p95_s),
    }  # fmt: skip


def run_summary(directory: Path) -> dict[str, Any]:
    """The report's numbers (as ``report.json`` without cases), the headline, and the run's facts."""
    from harness.report.build import build_report
    from harness.report.json_report import report_dict

    report = build_report(directory)
    manifest = Manifest.read(directory)
    data = report_dict(report, cases=False)
    data.pop("cases", None)
    data["headline"] = headline_sentences(report)
    for shown, v in zip(data["variants"], report.variants, strict=True):
        shown["display"] = variant_display(v)
    for shown, c in zip(data["comparisons"], report.comparisons, strict=True):
        shown["display"] = {"delta": signed_interval(c.ci95, c.metric), "p": p_value(c.p_holm)}
    data["facts"] = {"run_id": directory.name, "started_at": manifest.started_at,
                     "finished_at": manifest.finished_at, "git": manifest.git,
                     "record_mode": manifest.record_mode}  # fmt: skip
    return data


