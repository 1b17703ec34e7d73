"""The terminal's narrow tables: what they drop must be what `--wide` still shows, never a number a person needs."""

from harness.report.narrow import narrow_table
from harness.report.table import Cell


def test_narrow_table_cuts_details_and_silent_columns_but_keeps_every_verdict_number() -> None:
    headers = ["candidate", "errors [95% CI]", "tokens in/out", "p one-sided (test)", "MDE 80% WARN/BLOCK",
               "tokens/s"]
    rows = [
        [Cell("v2"), Cell("0.0% [0.0, 30.8]"), Cell("102/8 (94 cached)"),
         Cell("0.750 (paired permutation (swap within case))"),
         Cell("not detectable at this size (needs ≈558 / ≈906 cases)"), Cell("3.1")],
        [Cell("v3"), Cell("0.0% [0.0, 30.8]"), Cell("37/16"), Cell("0.062 (mid-p McNemar)"),
         Cell("64.9 / 98.5 pts"), Cell("3.4")],
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
