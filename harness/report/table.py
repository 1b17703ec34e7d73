"""The per-variant summary table (terminal and GitHub Markdown), built with tabulate."""

from __future__ import annotations

from collections.abc import Sequence

from tabulate import tabulate

from harness.report.format import money, money_interval, pct_interval, seconds
from harness.stats.summary import VariantSummary

HEADERS = ["variant", "cases×k", "pass rate [95% CI]", "score [95% CI]", "errors", "tokens in/out",
           "cost/case [95% CI]", "p50 latency", "p95 latency"]


def sort_key(summary: VariantSummary) -> tuple[str, str, float]:
    return (summary.model, summary.prompt, summary.temperature)


def _k(summary: VariantSummary) -> str:
    k = str(summary.k_max) if summary.k_min == summary.k_max else f"{summary.k_min}-{summary.k_max}"
    return f"{summary.n_cases}×{k}"


def _errors(summary: VariantSummary) -> str:
    rate = summary.error_rate.estimate or 0.0
    errors = round(rate * summary.n_trials)
    text = f"{errors}" if errors else "0"
    if summary.undecided_trials:
        text += f" (+{summary.undecided_trials} undecided)"
    return text


def _tokens(summary: VariantSummary) -> str:
    if summary.tokens_in_per_case is None:
        return "–"
    out = summary.tokens_out_per_case or 0.0
    return f"{summary.tokens_in_per_case:.0f}/{out:.0f}"


def variant_rows(summaries: Sequence[VariantSummary]) -> list[list[str]]:
    rows = []
    for s in sorted(summaries, key=sort_key):
        cost = money_interval(s.cost_per_case) if s.cost_per_case is not None else money(None)
        rows.append([
            s.variant, _k(s), pct_interval(s.pass_rate),
            pct_interval(s.score) if s.score is not None else "–",
            _errors(s), _tokens(s), cost, seconds(s.latency_p50_s), seconds(s.latency_p95_s),
        ])
    return rows


def methods_note(summaries: Sequence[VariantSummary]) -> str:
    """One line naming the interval methods used, as every number must disclose its method."""
    methods = sorted({s.pass_rate.method for s in summaries})
    note = f"pass-rate intervals: {', '.join(methods)}; per-case means over repeats, cases are the unit."
    return note


def summary_table(summaries: Sequence[VariantSummary], fmt: str = "simple") -> str:
    """``fmt`` is a tabulate format: ``simple`` for terminals, ``github`` for Markdown."""
    return tabulate(variant_rows(summaries), headers=HEADERS, tablefmt=fmt, disable_numparse=True)
