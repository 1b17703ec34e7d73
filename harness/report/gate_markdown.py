"""The gate's verdicts as GitHub Markdown, for ``$GITHUB_STEP_SUMMARY`` or a pull-request comment."""

from __future__ import annotations

import html
import os
from pathlib import Path

from tabulate import tabulate

from harness.gate import GatedComparison, GateOutcome
from harness.report.format import case_value, mde_pair, p_value, signed_interval
from harness.report.gate_text import cases_text, clip, is_binary, margin_text, mde_text, summary_line
from harness.stats.gate_rule import Verdict

ICONS = {
    Verdict.BLOCK: "🛑",
    Verdict.WARN: "⚠️",
    Verdict.IMPROVEMENT: "✅",
    Verdict.NON_INFERIOR: "✅",
    Verdict.INCONCLUSIVE: "❔",
}
HEADLINE_ICONS = {"BLOCK": "🛑", "WARN": "⚠️", "PASS": "✅", "NOT EVALUATED": "❓"}
MAX_FLIPS = 20
CELL_CLIP = 200


def cell(text: str) -> str:
    """Safe inside a table cell: model output may hold pipes, newlines or HTML."""
    return html.escape(text, quote=False).replace("|", "\\|").replace("\n", " ")


def _row(item: GatedComparison) -> list[str]:
    c = item.comparison
    mde = cell(mde_pair(c.mde_warn, c.mde_block, c.mde_unreachable, c.metric))
    return [
        f"{ICONS[item.verdict]} **{item.verdict.value}**",
        cell(item.suite),
        cell(item.metric + (" (non-inferiority)" if item.non_inferiority else "")),
        cell(item.short_name),
        cell(signed_interval(c.ci90, c.metric)),
        cell(cases_text(item)),
        f"{p_value(c.p_value)} ({p_value(c.p_holm)})",
        cell(margin_text(item)),
        mde,
    ]


HEADERS = ["Verdict", "Suite", "Metric", "Candidate vs baseline", "Δ [90% CI]", "Cases × k", "p (Holm)",
           "Margin", "MDE WARN / BLOCK"]  # fmt: skip


def _flips(item: GatedComparison) -> list[str]:
    if not item.flips:
        return []
    binary = is_binary(item)
    what = "passed under the baseline and fail now" if binary else "got worse by more than 25 points"
    rows = [
        [cell(f.case_id),
         f"{case_value(f.baseline, binary)} → {case_value(f.candidate, binary)}",
         cell(clip(f.baseline_output, CELL_CLIP)), cell(clip(f.candidate_output, CELL_CLIP)),
         cell(clip(f.why, CELL_CLIP)) if f.why else ""]
        for f in item.flips[:MAX_FLIPS]
    ]  # fmt: skip
    table = tabulate(rows, ["Case", "Change", "Baseline output", "Candidate output", "Why"], tablefmt="github")
    more = f"\n\n… and {len(item.flips) - MAX_FLIPS} more" if len(item.flips) > MAX_FLIPS else ""
    summary = f"{cell(item.name)}: {len(item.flips)} case(s) {what}"
    return ["<details><summary>" + summary + "</summary>", "", table + more, "", "</details>", ""]


def render_markdown(outcome: GateOutcome) -> str:
    head = outcome.headline
    lines = [f"## {HEADLINE_ICONS[head]} prompt-harness gate: {head}", ""]
    if outcome.items:
        lines += [tabulate([_row(i) for i in outcome.items], HEADERS, tablefmt="github", disable_numparse=True), ""]
    else:
        lines += ["Nothing was gated.", ""]
    family = len(outcome.items)
    lines += [
        f"BLOCK: Holm-adjusted one-sided p < 0.01 over the {family} comparison(s) gated here; WARN: < 0.05. "
        "IMPROVEMENT: the same test, for a gain, gives p < 0.05. A verdict needs its test and the 90% interval "
        "of the paired difference to agree (the interval reaches 0 when the test does not confirm a change). "
        "Otherwise NON_INFERIOR (no drop larger than the margin) or INCONCLUSIVE (the suite is too small to "
        "rule one out). p is the unadjusted one-sided p for \"candidate worse\".",
        "",
    ]
    for item in outcome.items:
        lines += _flips(item)
    sentences = [(item, mde_text(item)) for item in outcome.items]
    sentences = [(i, s) for i, s in sentences if s]
    if sentences:
        lines += ["**What these suites can detect**", ""]
        lines += [f"- {cell(i.name)}: {cell(s)}" for i, s in sentences]
        lines.append("")
    lines += [f"> ⚠️ {cell(w)}" for w in outcome.warnings]
    lines += [f"> ❓ not evaluated: {cell(w)}" for w in outcome.unevaluated]
    lines += [f"- note: {cell(n)}" for n in outcome.notes]
    lines += ["", f"`{summary_line(outcome)}`", ""]
    return "\n".join(lines)


def write_step_summary(text: str) -> Path | None:
    """Append to ``$GITHUB_STEP_SUMMARY`` when GitHub Actions set it (other steps may have written there)."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(text if text.endswith("\n") else text + "\n")
    return path
