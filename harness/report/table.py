"""The report's tables as rows of cells: text plus the method disclosure (a tooltip in HTML, a footnote in
text). The terminal and Markdown render them with tabulate; the HTML page renders the same cells."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tabulate import tabulate

from harness.report.build import RunReport
from harness.report.format import (
    COST_UNIT,
    NONE,
    Shown,
    amount,
    amount_with_unit,
    decimal,
    decimal_interval,
    delta,
    disclosure,
    duration,
    mde_pair,
    money,
    money_interval,
    p_value,
    p_with_test,
    pct,
    pct_interval,
    tokens_per_case,
)
from harness.stats.comparison import Comparison
from harness.stats.costlat import calls_needed_for_upper_bound
from harness.stats.flakiness import MIN_CASES as FLAKINESS_MIN_CASES
from harness.stats.flakiness import PROJECTED_REPEATS
from harness.stats.frontier import ParetoPoint
from harness.stats.intervals import INSUFFICIENT
from harness.stats.summary import VariantSummary

METRIC_NAMES = {"pass_rate": "pass rate", "score": "score", "cost": "cost/1k cases", "latency_p95": "p95 latency",
                "ttft_p95": "p95 time to first token"}


@dataclass(frozen=True)
class Cell:
    text: str
    tip: str = ""
    css: str = ""
    short: str | None = None  # what a 120-column terminal shows instead of ``text`` (from format.py's Shown)

    @classmethod
    def shown(cls, shown: Shown, tip: str = "") -> Cell:
        return cls(shown.text, tip, short=shown.short)

    def __str__(self) -> str:
        return self.text


Table = tuple[list[str], list[list[Cell]]]


def render(table: Table, fmt: str = "simple") -> str:
    """``fmt`` is a tabulate format: ``simple`` for terminals, ``github`` for Markdown."""
    headers, rows = table
    text_rows = [[cell.text for cell in row] for row in rows]
    return tabulate(text_rows, headers=headers, tablefmt=fmt, disable_numparse=True)


def k_text(k_min: int, k_max: int) -> str:
    return str(k_max) if k_min == k_max else f"{k_min}-{k_max}"


def _variant_cell(report: RunReport, summary: VariantSummary) -> Cell:
    is_base = summary.variant == report.baseline
    text = f"{summary.variant} (baseline)" if is_base else summary.variant
    return Cell(text, "; ".join(summary.notes), "baseline" if is_base else "")


def _tokens(summary: VariantSummary) -> Cell:
    if summary.tokens_in_per_case is None:
        return Cell("–")
    shown = tokens_per_case(summary.tokens_in_per_case, summary.tokens_out_per_case or 0.0,
                            summary.tokens_cached_per_case, summary.tokens_reasoning_per_case)
    return Cell.shown(shown, "mean tokens per case (input/output), over repeats; cached: of the input, served from "
                      "the provider's prompt cache (billed at the cached-input price); reasoning: of the output")


def _errors(summary: VariantSummary) -> Cell:
    return Cell(pct_interval(summary.error_rate), disclosure(summary.error_rate))


def _pass_rate(summary: VariantSummary) -> Cell:
    """The rate over decided cases, with the undecided ones beside it: they are never silently dropped."""
    text = pct_interval(summary.pass_rate)
    tip = disclosure(summary.pass_rate)
    if summary.undecided_cases:
        text += f" (+{summary.undecided_cases} undecided)"
        tip += (f"; {summary.undecided_cases} cases have no decided trial (a grader, e.g. the judge, could not "
                "decide) and are not in the rate")
    return Cell(text, tip)


def _cases(summary: VariantSummary) -> Cell:
    decided = summary.n_cases - summary.undecided_cases
    text = f"{summary.n_cases}×{k_text(summary.k_min, summary.k_max)}"
    if decided != summary.n_cases:
        text += f" ({decided} decided)"
    return Cell(text, f"{summary.n_cases} cases, {decided} with a decided trial, {summary.n_trials} trials")


def summary_table(report: RunReport) -> Table:
    headers = ["variant", "cases×k", "pass rate [95% CI]", "score [95% CI]", "errors [95% CI]",
               "tokens in/out", "cost/1k cases [95% CI]", "p50 latency [95% CI]", "p95 latency [95% CI]"]  # fmt: skip
    if not report.has_scores:
        headers.remove("score [95% CI]")
    streamed = has_ttft(report)
    if streamed:
        headers += ["p50 TTFT [95% CI]", "p95 TTFT [95% CI]", "tokens/s"]
    rows = []
    for s in report.variants:
        score = [Cell(pct_interval(s.score), disclosure(s.score)) if s.score is not None else Cell("–")]
        rows.append([
            _variant_cell(report, s),
            _cases(s),
            _pass_rate(s),
            *(score if report.has_scores else []),
            _errors(s),
            _tokens(s),
            Cell(money_interval(s.cost_per_case), disclosure(s.cost_per_case)) if s.cost_per_case else
            Cell("?", "cost unknown: the model has no price (see the warning at validate or run), or its calls "
                      "reported no token usage"),
            Cell(duration(s.latency_p50_s), disclosure(s.latency_p50_s)),
            Cell(duration(s.latency_p95_s), disclosure(s.latency_p95_s)),
            *(_streaming_cells(s) if streamed else []),
        ])  # fmt: skip
    return headers, rows


def has_ttft(report: RunReport) -> bool:
    return any(s.ttft_p50_s is not None for s in report.variants)


def _streaming_cells(s: VariantSummary) -> list[Cell]:
    speed = NONE if s.tokens_per_s is None else f"{decimal(s.tokens_per_s, 1)}"
    return [Cell(duration(s.ttft_p50_s), disclosure(s.ttft_p50_s)),
            Cell(duration(s.ttft_p95_s), disclosure(s.ttft_p95_s)),
            Cell(speed, "median output tokens per second after the first token (streamed calls)")]


def samples_table(report: RunReport) -> Table | None:
    """Variants whose requests asked for several choices: per-sample pass rate, pass@k, majority vote."""
    rows = []
    ks: list[int] = sorted({k for s in report.variants if s.choices for k in s.choices.pass_at_k})
    for s in report.variants:
        c = s.choices
        if c is None:
            continue
        at_k = [Cell(pct_interval(c.pass_at_k[k]), disclosure(c.pass_at_k[k])) if k in c.pass_at_k else Cell(NONE)
                for k in ks]
        vote = Cell(NONE, "no grader gave an answer to vote on (exact does)") if c.majority is None else \
            Cell(f"{pct_interval(c.majority)} ({c.voted_cases} cases)", disclosure(c.majority))
        rows.append([
            Cell(s.variant),
            Cell(f"{c.choices_per_request} × {c.requests}", "choices per request × requests"),
            Cell(k_text(c.samples_min, c.samples_max), "decided samples per case (choices × repeats)"),
            _pass_rate(s),
            *at_k,
            vote,
            Cell("?" if c.cost_per_sample is None else money(c.cost_per_sample),
                 "the requests' cost shared by their choices; ? when a request's cost is unknown (no price or no "
                 "usage reported)"),
        ])  # fmt: skip
    if not rows:
        return None
    headers = ["variant", "n × requests", "samples/case", "per-sample pass rate [95% CI]",
               *[f"pass@{k} [95% CI]" for k in ks], "majority vote [95% CI]", "cost/sample"]  # fmt: skip
    return headers, rows


SAMPLES_NOTE = ("pass@k: chance that at least one of k samples of a case passes, unbiased estimator (Chen et al. "
                "2021) per case over cases with ≥ k decided samples; majority vote: each case's most common "
                "answer (as its grader compared it) is right; every interval takes the case as the unit")


def _methods(values: Sequence[tuple[str, str | None]]) -> str:
    """``method`` when every variant used it, else ``method (variant, ...)`` per method."""
    used: dict[str, list[str]] = {}
    for variant, method in values:
        if method:
            used.setdefault(method, []).append(variant)
    if len(used) <= 1:
        return next(iter(used), "–")
    return "; ".join(f"{m} ({', '.join(vs)})" for m, vs in used.items())


def summary_methods(report: RunReport) -> list[str]:
    """Footnotes naming each column's method; n and k per variant are in the cases×k column."""
    vs = report.variants

    def of(getter: str) -> str:
        pairs = []
        for s in vs:
            interval = getattr(s, getter)
            if interval is not None and interval.method == INSUFFICIENT:
                pairs.append((s.variant, f"no interval ({interval.note})" if interval.note else INSUFFICIENT))
            else:
                pairs.append((s.variant, interval.method if interval is not None else None))
        return _methods(pairs)

    lines = [
        f"pass rate: {of('pass_rate')}; per-case means over repeats, the case is the unit (n = cases)",
        f"errors: {of('error_rate')} over cases",
        f"cost/1k cases: {of('cost_per_case')}; mean cost per case × 1,000, in dollars, {report.n_resamples} resamples",
        f"latency: {of('latency_p95_s')} over calls (n = successful calls)",
    ]
    if report.has_scores:
        lines.insert(1, f"score: {of('score')} over per-case mean scores")
    if has_ttft(report):
        lines.append(f"TTFT (time to first token, streamed calls): {of('ttft_p95_s')} over calls; tokens/s: "
                     "median output tokens per second after the first token")
    if any(s.latency_p95_s is not None and s.latency_p95_s.high is None for s in vs):
        lines.append(f"latency '?': no upper bound yet; the p95 needs ≥ {calls_needed_for_upper_bound(0.95)} calls "
                     f"for one (p50: ≥ {calls_needed_for_upper_bound(0.5)})")
    notes: dict[str, list[str]] = {}
    for s in vs:
        for note in s.notes:
            notes.setdefault(note, []).append(s.variant)
    for note, variants in notes.items():
        who = "every variant" if len(variants) == len(vs) and len(vs) > 1 else ", ".join(variants)
        lines.append(f"{who}: {note}")
    return lines


def flakiness_table(report: RunReport) -> Table | None:
    """Within-case disagreement for variants run with repeats; SE projected for other numbers of repeats."""
    rows = []
    for s in report.variants:
        f = s.flakiness
        if f is None:
            continue
        tip = f"one-way variance components over {f.n_cases} cases × k={k_text(f.k_min, f.k_max)}"
        too_few = f.n_cases < FLAKINESS_MIN_CASES
        projected = [
            Cell("?" if too_few else pct(f.se_by_repeats.get(key), 1),
                 f"too few cases ({f.n_cases} < {FLAKINESS_MIN_CASES}) to project" if too_few else tip)
            for key in (_repeats_key(k) for k in PROJECTED_REPEATS)
        ]
        rows.append([
            Cell(s.variant),
            Cell(f"{f.flaky_cases}/{f.n_cases} ({pct_interval(f.flaky_rate, 0)})", disclosure(f.flaky_rate)),
            Cell(decimal_interval(f.within_sd_interval, 3) if f.within_sd_interval else decimal(f.within_sd, 3),
                 disclosure(f.within_sd_interval) or tip),
            Cell(decimal_interval(f.icc_interval) if f.icc_interval else decimal(f.icc),
                 disclosure(f.icc_interval) or tip),
            Cell("–" if f.noise_share is None else pct(f.noise_share, 0), tip),
            *projected,
        ])  # fmt: skip
    if not rows:
        return None
    headers = ["variant", "flaky cases", "within-case sd", "ICC", "noise share",
               *[f"SE k={_repeats_key(k).replace('inf', '∞')}" for k in PROJECTED_REPEATS]]  # fmt: skip
    return headers, rows


def _repeats_key(k: float) -> str:
    return "inf" if k == float("inf") else str(int(k))


def undecided_text(c: Comparison) -> str:
    """`` (+3 undecided)``: cases a comparison could not use because no grader verdict exists for them."""
    undecided = c.undecided_baseline + c.undecided_candidate
    return f" (+{undecided} undecided)" if undecided else ""


def comparisons_table(comparisons: Sequence[Comparison], show_baseline: bool) -> Table | None:
    """One row per comparison; ``show_baseline`` adds the baseline's name (all pairs, two runs)."""
    if not comparisons:
        return None
    rows = []
    for c in comparisons:
        row = [Cell(c.baseline)] if show_baseline else []
        row += [
            Cell(c.candidate),
            Cell(METRIC_NAMES.get(c.metric, c.metric)),
            Cell(f"{c.n_cases}×{k_text(*c.k_candidate)}{undecided_text(c)}",
                 f"{c.n_cases} shared decided cases; k baseline {k_text(*c.k_baseline)}, candidate "
                 f"{k_text(*c.k_candidate)}"),
            Cell(f"{amount(c.baseline_estimate, c.metric, percent_sign=True)} → "
                 f"{amount(c.candidate_estimate, c.metric, percent_sign=True)}",
                 "over the shared cases"),
            Cell.shown(delta(c.ci95, c.metric), disclosure(c.ci95)),
            Cell.shown(p_with_test(c.p_value, c.p_method), "one-sided p for 'candidate worse'"),
            Cell(p_value(c.p_holm), f"Holm-adjusted over {c.family_size} comparisons"),
            Cell(c.gate.verdict.value, c.gate.reason, f"verdict-{c.gate.verdict.value.lower()}"),
            Cell(mde_pair(c.mde_warn, c.mde_block, c.mde_unreachable, c.metric),
                 "smallest drop detected with 80% power at the WARN (p<0.05) / BLOCK (p<0.01) level",
                 short=mde_pair(c.mde_warn, c.mde_block, c.mde_unreachable, c.metric, short=True)),
        ]  # fmt: skip
        rows.append(row)
    headers = ["baseline"] if show_baseline else []
    headers += ["candidate", "metric", "cases×k", "baseline → candidate", "Δ [95% CI]", "p one-sided (test)",
                "p Holm", "verdict", "MDE 80% WARN/BLOCK"]  # fmt: skip
    return headers, rows


def comparison_table(report: RunReport) -> Table | None:
    return comparisons_table(report.comparisons, report.all_pairs)


def front_words(p: ParetoPoint) -> str:
    """Where a variant stands on the cost–quality front, in the words both the table and the chart use. A
    variant that passes nothing is cheapest by failing: it is never shown "on the front" without saying so."""
    if p.on_front:
        if p.quality.estimate == 0:
            return "on the front only by cost: it passes 0%"
        return "on the front"
    if p.significantly_dominated:
        return "significantly dominated by " + ", ".join(p.dominated_by)
    if p.cost_per_case is None:
        return "no cost recorded"
    return "off the front, not significantly dominated"


def pareto_table(report: RunReport) -> Table | None:
    if not report.pareto:
        return None
    rows = []
    for p in report.pareto:
        status = front_words(p)
        rows.append([
            Cell(p.variant),
            Cell(pct_interval(p.quality), disclosure(p.quality)),
            Cell(money_interval(p.cost_per_case), disclosure(p.cost_per_case)) if p.cost_per_case else Cell("–"),
            Cell(status, "", "front" if p.on_front else ("dominated" if p.significantly_dominated else "")),
        ])  # fmt: skip
    quality = METRIC_NAMES[report.pareto_metric]
    headers = ["variant", f"{quality} [95% CI]", f"cost {COST_UNIT} [95% CI]", "cost–quality"]
    return headers, rows


def _ids(ids: Sequence[str], limit: int) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f", … {len(ids) - limit} more" if len(ids) > limit else "")


def flip_lines(c: Comparison, limit: int = 10) -> list[str]:
    """The cases that changed verdict (k = 1) or moved by more than a quarter (repeats), worst first."""
    lines = []
    if c.regressions or c.fixes:
        if c.regressions:
            lines.append(f"pass→fail ({len(c.regressions)}): {_ids(c.regressions, limit)}")
        if c.fixes:
            lines.append(f"fail→pass ({len(c.fixes)}): {_ids(c.fixes, limit)}")
    elif c.movers and c.metric in ("pass_rate", "score"):
        worse = [f"{m.case_id} ({pct(m.base, 0)}→{pct(m.new, 0)})" for m in c.movers if m.change < 0]
        better = [f"{m.case_id} ({pct(m.base, 0)}→{pct(m.new, 0)})" for m in reversed(c.movers) if m.change > 0]
        if worse:
            lines.append(f"worse by > 25 pts ({len(worse)}): {_ids(worse, limit)}")
        if better:
            lines.append(f"better by > 25 pts ({len(better)}): {_ids(better, limit)}")
    if c.only_baseline:
        lines.append(f"only in the baseline, not compared ({len(c.only_baseline)}): {_ids(c.only_baseline, limit)}")
    if c.only_candidate:
        lines.append(f"only in the candidate, not compared ({len(c.only_candidate)}): "
                     f"{_ids(c.only_candidate, limit)}")
    return lines


def comparison_notes(c: Comparison) -> list[str]:
    lines = [f"verdict {c.gate.verdict.value}: {c.gate.reason}"]
    if c.mde_message:
        lines.append(c.mde_message)
    elif c.required_cases:
        lines.append(f"{c.required_cases} cases would detect a drop of {amount_with_unit(c.margin, c.metric)}")
    lines += c.notes
    return lines


def money_total(report: RunReport) -> str:
    """Everything the run spent, judges included, with the judges' share named when there is one."""
    models = [s.cost_total for s in report.variants if s.cost_total is not None]
    judges = [s.judge_cost_total for s in report.variants if s.judge_cost_total]
    if not models and not judges:
        return "–"
    if not judges:
        return money(sum(models))
    return f"{money(sum(models) + sum(judges))} (models {money(sum(models))}, judges {money(sum(judges))})"
