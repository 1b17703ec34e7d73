"""The gate's verdicts as plain text: one line per gated comparison, the flipped cases, the MDE sentence.

Shared by ``harness gate`` (terminal) and the pytest plugin (failure messages) and JUnit (failure bodies),
so every place a verdict shows up words it the same way.
"""

from __future__ import annotations

from harness.gate import Flip, GatedComparison, GateOutcome
from harness.report.format import amount, amount_with_unit, case_value, p_value, signed_interval

# Wide enough for the longest verdict name, so the lines of a run line up.
VERDICT_WIDTH = len("INCONCLUSIVE")
DEFAULT_MAX_FLIPS = 10
OUTPUT_CLIP = 160


def margin_text(item: GatedComparison) -> str:
    return amount_with_unit(item.comparison.margin, item.comparison.metric)


def cases_text(item: GatedComparison) -> str:
    c = item.comparison
    k = max(c.k_candidate[1], c.k_baseline[1])
    undecided = c.undecided_baseline + c.undecided_candidate
    return f"{c.n_cases} cases × {k}" + (f" (+{undecided} undecided)" if undecided else "")


def verdict_line(item: GatedComparison) -> str:
    """``BLOCK  extract · pass_rate · v3-broken vs v1: -83.3 pts [-94.6, -72.1] (90% CI) · 24 cases × 1 · ...``"""
    c = item.comparison
    mode = " · strict non-inferiority" if item.non_inferiority else ""
    return (
        f"{item.verdict.value:<{VERDICT_WIDTH}}  {item.name}: {signed_interval(c.ci90, c.metric)} (90% CI) · "
        f"{cases_text(item)} · p={p_value(c.p_value)} (Holm {p_value(c.p_holm)} over {c.family_size}, "
        f"{c.p_method}) · margin {margin_text(item)}{mode}"
    )


def clip(text: str | None, width: int = OUTPUT_CLIP) -> str:
    if text is None:
        return "(no output)"
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def flip_summary(flip: Flip, binary: bool) -> str:
    return f"{flip.case_id}: {case_value(flip.baseline, binary)} → {case_value(flip.candidate, binary)}"


def is_binary(item: GatedComparison) -> bool:
    """Pass/fail with one sample per case: flips are pass → fail, not changes of a mean."""
    return item.metric == "pass_rate" and max(item.comparison.k_candidate[1], item.comparison.k_baseline[1]) <= 1


def flip_lines(item: GatedComparison, limit: int = DEFAULT_MAX_FLIPS, indent: str = "  ") -> list[str]:
    if not item.flips:
        return []
    binary = is_binary(item)
    what = "pass → fail" if binary else "got worse by more than 25 points"
    lines = [f"{indent}{len(item.flips)} case(s) {what}:"]
    for flip in item.flips[:limit]:
        lines.append(f"{indent}  {flip_summary(flip, binary)}")
        if not flip.loaded:
            read = sum(1 for f in item.flips if f.loaded)
            lines.append(f"{indent}    (outputs are read back for the first {read} cases only: see results.jsonl)")
            continue
        lines.append(f"{indent}    baseline:  {clip(flip.baseline_output)}")
        lines.append(f"{indent}    candidate: {clip(flip.candidate_output)}")
        if flip.why:
            lines.append(f"{indent}    why:       {clip(flip.why)}")
    if len(item.flips) > limit:
        lines.append(f"{indent}  … and {len(item.flips) - limit} more")
    return lines


def mde_text(item: GatedComparison) -> str | None:
    """The §8.4 sentence for quality metrics; for cost and latency the detectable change in their units."""
    c = item.comparison
    if c.mde_message:
        return c.mde_message
    if c.mde_warn is not None and c.mde_block is not None:
        return (f"With {cases_text(item)}, this comparison detects a change of {amount(c.mde_warn, c.metric)} with "
                f"80% power at the WARN level ({amount(c.mde_block, c.metric)} at BLOCK).")
    return None


def detail_lines(item: GatedComparison, max_flips: int = DEFAULT_MAX_FLIPS, indent: str = "  ") -> list[str]:
    """Everything under one verdict line: why, flips with outputs, MDE, notes."""
    lines = [f"{indent}{item.comparison.gate.reason}"]
    lines += flip_lines(item, max_flips, indent)
    mde = mde_text(item)
    if mde:
        lines.append(f"{indent}{mde}")
    lines += [f"{indent}note: {n}" for n in item.comparison.notes]
    return lines


def failure_text(item: GatedComparison, max_flips: int = DEFAULT_MAX_FLIPS) -> str:
    return "\n".join([verdict_line(item), *detail_lines(item, max_flips)])


def summary_line(outcome: GateOutcome, exit_code: bool = True) -> str:
    counts = ", ".join(f"{n} {v}" for v, n in outcome.counts().items()) or "nothing gated"
    strict = " (strict: WARN fails too)" if outcome.fail_on_warn else ""
    missing = len(outcome.unevaluated)
    unjudged = f"; {missing} could not be evaluated" if missing else ""
    return f"gate: {counts}{strict}{unjudged}" + (f" → exit {outcome.exit_code}" if exit_code else "")


def render_text(outcome: GateOutcome, max_flips: int = DEFAULT_MAX_FLIPS) -> str:
    """Verdict lines first (what a CI log reader scans), then details for everything not plainly fine."""
    lines = [verdict_line(item) for item in outcome.items]
    for item in outcome.items:
        lines += ["", verdict_line(item), *detail_lines(item, max_flips)]
    lines += [f"warning: {w}" for w in outcome.warnings]
    lines += [f"not evaluated: {w}" for w in outcome.unevaluated]
    lines += [f"note: {n}" for n in outcome.notes]
    lines += ["", summary_line(outcome)]
    return "\n".join(lines)
