"""The self-contained HTML report: tables, the cost–quality chart and a per-case drill-down, no external assets.

Defence in depth for outputs that contain markup: Jinja2 autoescapes every value, and the page's content
security policy allows only its own two inline scripts (by hash) and loads nothing from anywhere.
"""

from __future__ import annotations

import base64
import hashlib
from importlib import resources

from jinja2 import Environment, StrictUndefined
from markupsafe import Markup

from harness.report.build import RunReport
from harness.report.cases import CaseDetail, Message, load_case_details, message_view
from harness.report.chart import chart_points, cost_quality_svg
from harness.report.headline import headline_sentences
from harness.report.table import (
    METRIC_NAMES,
    SAMPLES_NOTE,
    comparison_notes,
    comparison_table,
    flakiness_table,
    flip_lines,
    pareto_table,
    samples_table,
    summary_methods,
    summary_table,
)
from harness.report.text import comparison_heading, header_line
from harness.store import GradeRecord, TrialResult

# Above this many cases, or trials in them, the page keeps the cases worth reading (verdicts disagree, then
# failures, then by case id) so it stays openable and its outputs need not all be held in memory; every trial
# is still in results.jsonl, every case's counts in report.json.
MAX_CASES = 2000
MAX_TRIALS = 10_000
MAX_OUTPUT_CHARS = 4000


def _asset(name: str) -> str:
    return resources.files("harness.report").joinpath(name).read_text(encoding="utf-8")


def _csp_hash(script: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii") + "'"


def verdict(trial: TrialResult) -> str:
    if trial.error is not None:
        return "error"
    if trial.passed is None:
        return "undecided"
    return "pass" if trial.passed else "fail"


def grade_verdict(grade: GradeRecord) -> str:
    if grade.error or grade.passed is None:
        return "could not decide"
    return f"pass ({grade.score:g})" if grade.passed else f"fail ({grade.score:g})"


def clip(text: str | None) -> str:
    if text is None:
        return "(no output)"
    if len(text) <= MAX_OUTPUT_CHARS:
        return text
    return text[:MAX_OUTPUT_CHARS] + f"\n… ({len(text) - MAX_OUTPUT_CHARS} more characters in results.jsonl)"


def transcript(trial: TrialResult) -> list[Message]:
    """A tool round trip's messages after the request, for the drill-down; a tool result is labelled with the
    function its call named."""
    names: dict[str, str] = {}
    shown = []
    for message in trial.transcript:
        if not isinstance(message, dict):
            continue
        for call in message.get("tool_calls") or ():
            if isinstance(call, dict) and isinstance(call.get("function"), dict):
                names[str(call.get("id"))] = str(call["function"].get("name", "?"))
        if message.get("role") == "tool" and "name" not in message and str(message.get("tool_call_id")) in names:
            message = {**message, "name": names[str(message.get("tool_call_id"))]}
        shown.append(message_view(message))
    return shown


def _trials(case: CaseDetail) -> int:
    return sum(len(v.trials) for v in case.variants)


def shown_cases(cases: list[CaseDetail]) -> list[CaseDetail]:
    """The cases the drill-down lists, in case id order: all of them unless there are more than MAX_CASES or
    MAX_TRIALS; then the best-ranked ones within both limits (always at least one)."""
    if len(cases) <= MAX_CASES and sum(_trials(c) for c in cases) <= MAX_TRIALS:
        return cases
    ranked = sorted(cases, key=lambda c: (not c.disagrees, not c.failing, c.case_id))[:MAX_CASES]
    chosen: list[CaseDetail] = []
    total = 0
    for case in ranked:
        total += _trials(case)
        if chosen and total > MAX_TRIALS:
            break
        chosen.append(case)
    return sorted(chosen, key=lambda c: c.case_id)


def drilldown(report: RunReport) -> list[CaseDetail]:
    """The shown cases with their inputs, outputs and grades, read from the run folder's full records."""
    shown = shown_cases(report.cases)
    if report.directory is None:
        return shown
    return load_case_details(report.directory, [c.case_id for c in shown], report.variant_labels)


def split_interval(text: str) -> Markup:
    """``83.3% [62.6, 95.3]`` with the bracket on a line of its own (the estimate is read first)."""
    head, sep, tail = text.partition(" [")
    if not sep:
        return Markup("{}").format(text)
    return Markup('{}<span class="ci">[{}</span>').format(head, tail)


def render_html(report: RunReport) -> str:
    env = Environment(autoescape=True, undefined=StrictUndefined, keep_trailing_newline=True)
    env.filters["ci"] = split_interval
    template = env.from_string(_asset("report.html"))
    guard_js, main_js = _asset("guard.js"), _asset("report.js")
    points, _ = chart_points(report)
    svg = cost_quality_svg(report)
    cases = drilldown(report)
    details = [
        {"title": f"{c.candidate} vs {c.baseline} · {METRIC_NAMES.get(c.metric, c.metric)}",
         "lines": comparison_notes(c) + flip_lines(c, limit=50)}
        for c in report.comparisons
    ]  # fmt: skip
    return template.render(
        r=report,
        header=header_line(report),
        headline=headline_sentences(report),
        css=Markup(_asset("report.css")),
        guard_js=Markup(guard_js),
        main_js=Markup(main_js),
        script_sources=Markup(f"{_csp_hash(guard_js)} {_csp_hash(main_js)}"),
        summary=summary_table(report),
        methods=summary_methods(report),
        chart=Markup(svg) if svg else None,
        chart_points=points,
        pareto=pareto_table(report),
        comparisons=comparison_table(report),
        comparison_heading=comparison_heading(report) if report.comparisons else "",
        comparison_details=details,
        flakiness=flakiness_table(report),
        samples=samples_table(report),
        samples_note=SAMPLES_NOTE,
        calibration=report.calibration.table() if report.calibration is not None else None,
        notes=report.notes,
        cases=cases,
        cases_left_out=len(report.cases) - len(cases),
        cases_total=len(report.cases),
        max_cases=MAX_CASES,
        max_trials=MAX_TRIALS,
        verdict=verdict,
        grade_verdict=grade_verdict,
        clip=clip,
        transcript=transcript,
    )
