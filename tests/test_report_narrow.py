"""The terminal's narrow tables: what they drop must be what `--wide` still shows, never a number a person needs."""

import dataclasses
from pathlib import Path

from test_report_fixtures import trial, write_run

from harness.report.build import ReportOptions, build_report
from harness.report.format import mde_pair, p_with_test, tokens_per_case
from harness.report.narrow import narrow_table
from harness.report.table import Cell, comparisons_table, summary_table
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
