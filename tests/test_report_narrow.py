"""The terminal's narrow tables: what they drop must be what `--wide` still shows, never a number a person needs."""

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from test_report_fixtures import trial, write_run

from harness.report.build import ReportOptions, RunReport, build_report
from harness.report.format import (
    COST_UNIT,
    amount,
    decimal_interval,
    mde_pair,
    p_with_test,
    signed_interval,
    tokens_per_case,
)
from harness.report.narrow import WIDTH, narrow_table
from harness.report.render import render_report
from harness.report.table import METRIC_NAMES, Cell, comparisons_table, summary_table
from harness.stats.cost_timing_compare import QUANTILE_PERMUTATION
from harness.stats.paired import MCNEMAR_MIDP
from harness.stats.power import Detectable


def test_narrow_table_cuts_details_and_silent_columns_but_keeps_every_verdict_number() -> None:
    headers = ["candidate", "errors [95% CI]", "tokens in/out", "p one-sided (test)", "MDE 80% WARN/BLOCK",
               "tokens/s"]
    unreachable = {"warn": Detectable(None, "too few cases", 558), "block": Detectable(None, "too few cases", 906)}
    rows = [
        [Cell("v2"), Cell("0.0% [0.0, 30.8]"), Cell.shown(tokens_per_case(102, 8, 94, None)),
         Cell.shown(p_with_test(0.75, QUANTILE_PERMUTATION)),
         Cell(mde_pair(None, None, unreachable, "pass_rate"), short=mde_pair(None, None, unreachable, "pass_rate",
                                                                               short=True)), Cell("3.1")],
        [Cell("v3"), Cell("0.0% [0.0, 30.8]"), Cell.shown(tokens_per_case(37, 16, None, None)),
         Cell.shown(p_with_test(0.062, MCNEMAR_MIDP)),
         Cell(mde_pair(0.649, 0.985, {}, "pass_rate"), short=mde_pair(0.649, 0.985, {}, "pass_rate", short=True)),
         Cell("3.4")],
    ]  # fmt: skip
    # The full forms, which `--wide`, Markdown and HTML show.
    assert [[c.text for c in row[2:5]] for row in rows] == [
        ["102/8 (94 cached)", "0.750 (paired permutation (swap within case))",
         "not detectable at this size (needs ≈558 / ≈906 cases)"],
        ["37/16", "0.062 (mid-p McNemar)", "64.9 / 98.5 pts"],
    ]
    narrow_headers, narrow_rows = narrow_table((headers, rows))
    assert narrow_headers == ["candidate", "tokens", "p", "MDE W/B"]
    assert [[c.text for c in row] for row in narrow_rows] == [
        ["v2", "102/8", "0.750", "needs ≈558/≈906 cases"],
        ["v3", "37/16", "0.062", "64.9/98.5 pts"],
    ]


def test_an_error_column_with_any_error_stays() -> None:
    headers = ["candidate", "errors [95% CI]"]
    rows = [[Cell("v2"), Cell("0.0% [0.0, 30.8]")], [Cell("v3"), Cell("10.0% [1.2, 31.7]")]]
    narrow_headers, narrow_rows = narrow_table((headers, rows))
    assert narrow_headers == ["candidate", "errors"]
    assert [row[1].text for row in narrow_rows] == ["0.0%", "10.0%"]


def test_mixed_mde_levels_shorten_each_level() -> None:
    one = {"block": Detectable(None, "too few cases", 31)}
    assert mde_pair(0.12, None, one, "pass_rate") == "12.0 pts / not detectable at this size (needs ≈31 cases)"
    assert mde_pair(0.12, None, one, "pass_rate", short=True) == "12.0 pts/needs ≈31 cases"
    assert mde_pair(None, None, {}, "pass_rate", short=True) == "–"


# Columns that hold names a user chose: as long as the user made them. Every other narrowed cell is a number
# with at most a few words, the widest an MDE with one level out of reach ("37.2 pts/needs ≈1304 cases"); a
# cell longer than this kept a detail that needed a short form in format.py.
_NAME_COLUMNS = {"variant", "candidate", "baseline", "variant (run b vs run a)"}
_NARROW_CELL_MAX = 26


def _worst_case_run(root: Path) -> Path:
    """Everything that makes a long cell: undecided and errored trials, cached and reasoning tokens, too few
    cases to detect a drop at every level, and a timing metric (whose test has the longest name)."""
    usage = {"prompt_tokens": 12345, "completion_tokens": 678, "cached_tokens": 12000, "reasoning_tokens": 600}
    results = []
    for prompt, passes in (("v1", "111110"), ("v2", "101010")):
        for i, passed in enumerate(passes):
            for repeat in range(2):
                result = trial(f"case-{i}", None if i == 5 and prompt == "v1" else passed == "1" or repeat == 1,
                               prompt=prompt, model="smollm2", repeat=repeat, error=i == 4,
                               cost=0.0004 + 0.0001 * i * (prompt == "v2"), latency_ms=400.0 + 90 * i * repeat)
                results.append(dataclasses.replace(result, usage=usage, request={
                    "model": "smollm2", "messages": [{"role": "user", "content": f"{prompt}: {i}"}]}))
    return write_run(root, results, baseline={"prompt": "v1"}, metrics=("pass_rate", "latency_p95"))


def test_no_long_form_reaches_the_terminal_without_its_short_form(tmp_path: Path) -> None:
    """A cell that grows a detail (a test's name, token details, why an MDE is missing, or a new one) must
    come with its short form from format.py, or the terminal's narrow tables keep the detail."""
    report = build_report(_worst_case_run(tmp_path), ReportOptions(n_resamples=999))
    tables = [summary_table(report), comparisons_table(report.comparisons, show_baseline=False)]
    long_cells = [c.text for _, rows in tables for row in rows for c in row if len(c.text) > _NARROW_CELL_MAX]
    assert any("cached" in text for text in long_cells)  # the worst case has long forms in every narrowed column
    assert any(QUANTILE_PERMUTATION in text for text in long_cells)
    assert any("not detectable" in text for text in long_cells)
    for headers, rows in map(narrow_table, tables):
        for row in rows:
            for header, cell in zip(headers, row, strict=True):
                if header not in _NAME_COLUMNS:
                    assert len(cell.text) <= _NARROW_CELL_MAX, (header, cell.text)


# -- worst cases of the whole terminal report: every line within 120 columns, `--wide` with everything ------------

# Variant names as suites make them (model · prompt · temperature), up to "smollm2 · v3-few-shot · T=0" (27).
_PROMPTS = ("v1", "v2-concise", "v3-few-shot")


def _varied_run(root: Path, prompts: Sequence[str], n_cases: int, repeats: int, metrics: Sequence[str],
                temperature: float = 0.0) -> Path:
    """Every prompt over the same cases with repeats: pass/fail, cost and latency that differ per case (a cost
    that differs by the same amount in every case has no spread to size an MDE with), some undecided trials."""
    results = []
    for p, prompt in enumerate(prompts):
        for i in range(n_cases):
            for repeat in range(repeats):
                passed = None if (i, repeat) == (1, 0) and p else (i * 5 + p * 3 + repeat) % (4 + p) != 0
                result = trial(f"case-{i:03d}", passed, prompt=prompt, model="smollm2", temperature=temperature,
                               repeat=repeat, cost=0.0002 + 0.00001 * ((i * (p + 2)) % 7) + 0.00003 * p,
                               latency_ms=300.0 + 37 * ((i * (p + 1) + repeat) % 11))
                results.append(dataclasses.replace(result, request={
                    "model": "smollm2", "messages": [{"role": "user", "content": f"{prompt}: {i}"}]}))
    return write_run(root, results, baseline={"prompt": prompts[0]}, metrics=metrics)


def _terminal(directory: Path, all_pairs: bool = False) -> tuple[RunReport, dict[str, str], dict[str, str]]:
    """The report and its narrow and wide terminal texts (`harness run`'s summary and `harness report`)."""
    report = build_report(directory, ReportOptions(n_resamples=199, all_pairs=all_pairs))
    narrow = {fmt: render_report(report, fmt) for fmt in ("summary", "table")}
    wide = {fmt: render_report(report, fmt, wide=True) for fmt in ("summary", "table")}
    for fmt, text in narrow.items():
        too_wide = [line for line in text.splitlines() if len(line) > WIDTH]
        assert not too_wide, (fmt, too_wide)
    return report, narrow, wide


def test_a_gate_on_several_metrics_splits_the_comparisons_per_metric(tmp_path: Path) -> None:
    metrics = ("pass_rate", "score", "cost", "latency_p95")
    report, narrow, wide = _terminal(_varied_run(tmp_path, _PROMPTS, 30, 2, metrics))
    assert {c.metric for c in report.comparisons} == set(metrics) - {"score"} | ({"score"} & set(report.metrics))
    shown = list(dict.fromkeys(METRIC_NAMES[c.metric] for c in report.comparisons))
    assert len(shown) >= 3
    for text in narrow.values():
        tables = text.split("Comparisons against")[1]
        assert [line[:-1] for line in tables.splitlines() if line[:-1] in shown] == shown  # one titled table each
        assert "per 1k cases" not in tables.split("\n\n")[0]  # the title "cost/1k cases:" carries cost's unit
    for c in report.comparisons:
        for text in wide.values():  # one table with a metric column and every interval and full MDE
            row = next(line for line in text.splitlines()
                       if line.startswith(c.candidate + " ") and f"  {METRIC_NAMES[c.metric]}  " in line)
            assert signed_interval(c.ci95, c.metric) in row
            assert mde_pair(c.mde_warn, c.mde_block, c.mde_unreachable, c.metric) in row
    assert all(max(len(line) for line in text.splitlines()) > WIDTH for text in wide.values())


def test_a_cost_mde_with_one_level_out_of_reach_is_as_short_as_the_others(tmp_path: Path) -> None:
    # 6 cases: the sign-flip test's smallest p (2^-6) is below 0.05 but not below 0.01.
    report, narrow, wide = _terminal(_varied_run(tmp_path, _PROMPTS[:2], 6, 2, ("pass_rate", "cost")))
    cost = next(c for c in report.comparisons if c.metric == "cost")
    assert cost.mde_warn is not None and cost.mde_block is None and cost.mde_unreachable["block"].cases_needed
    short = mde_pair(cost.mde_warn, None, cost.mde_unreachable, "cost", short=True)
    assert short == f"{amount(cost.mde_warn, 'cost')}/needs ≈{cost.mde_unreachable['block'].cases_needed} cases"
    assert len(short) <= _NARROW_CELL_MAX
    full = mde_pair(cost.mde_warn, None, cost.mde_unreachable, "cost")
    assert f"{COST_UNIT} / not detectable at this size" in full
    for fmt in narrow:
        assert short in narrow[fmt] and full not in narrow[fmt]
        assert full in wide[fmt] and signed_interval(cost.ci95, "cost") in wide[fmt]


def test_flakiness_of_several_long_named_variants_fits(tmp_path: Path) -> None:
    prompts = (*_PROMPTS, "v4-chain-of-thought")
    report, narrow, wide = _terminal(_varied_run(tmp_path, prompts, 40, 3, ("pass_rate",), temperature=0.7))
    assert max(len(s.variant) for s in report.variants) >= 30
    flaky = [s for s in report.variants if s.flakiness is not None]
    assert len(flaky) == len(prompts)
    table = narrow["table"].split("Flakiness")[1]
    assert "within sd" in table and "SE k=1" in table and "SE k=3" not in table  # SE named once
    section = wide["table"].split("Flakiness")[1]
    assert "within-case sd" in section and "SE k=3" in section
    for s in flaky:
        row = next(line for line in section.splitlines() if line.startswith(s.variant + " "))
        assert decimal_interval(s.flakiness.within_sd_interval, 3) in row
        assert decimal_interval(s.flakiness.icc_interval) in row


def test_a_table_that_fits_keeps_its_headers(tmp_path: Path) -> None:
    results = [trial(f"c{i}", (i + r + p) % 3 != 0, prompt=f"v{p}", repeat=r)
               for p in (1, 2) for i in range(25) for r in range(2)]  # fmt: skip
    report, narrow, _ = _terminal(write_run(tmp_path, results, baseline={"prompt": "v1"}))
    assert len(report.comparisons) == 1 and all(s.flakiness is not None for s in report.variants)
    table = narrow["table"].split("Flakiness")[1]
    assert "within-case sd" in table and "noise share" in table and "SE k=3" in table


def test_all_pairs_too_wide_for_one_table_gets_one_per_baseline(tmp_path: Path) -> None:
    report, narrow, wide = _terminal(_varied_run(tmp_path, _PROMPTS, 30, 2, ("pass_rate", "cost")), all_pairs=True)
    baselines = list(dict.fromkeys(c.baseline for c in report.comparisons))
    assert len(baselines) == 2 and len(report.comparisons) == 6
    for metric in ("pass rate", "cost/1k cases"):
        for baseline in baselines:
            assert f"\n{metric}, against {baseline}:\n" in narrow["table"]
    for c in report.comparisons:  # `--wide`: one table, a row per pair with both names and the interval
        assert any(line.startswith(f"{c.baseline}  ") and f"  {c.candidate}  " in line
                   and signed_interval(c.ci95, c.metric) in line for line in wide["table"].splitlines())
