"""The one number formatter (harness/report/format.py): money that shows its interval, missing bounds as "?",
and the report's tables showing undecided cases next to the rate they are left out of."""

from __future__ import annotations

import json
from pathlib import Path

from test_gate_fixtures import write_run

from harness.history.drift import Drift, LatestTest, TrendTest
from harness.history.series import Point, Series
from harness.history.table import drift_lines, show_value
from harness.report.build import ReportOptions, build_report
from harness.report.format import (
    duration,
    latency,
    mde_pair,
    money,
    money_interval,
    p_value,
    pct_bounds,
    pct_interval,
    relative_change,
    signed_interval,
)
from harness.report.table import summary_table
from harness.stats.intervals import Interval
from harness.stats.power import Detectable
from harness.store import RESULTS_FILE


def test_money_shows_enough_digits_for_its_interval_per_thousand_cases() -> None:
    # Per case this was "$1.8e-06 [$1.8e-06, $1.8e-06]": an interval that looked zero-width.
    cost = Interval(1.8e-06, 1.787e-06, 1.843e-06, "bootstrap-t", 0.95, 50)
    text = money_interval(cost)
    assert text == "$0.00180 [$0.00179, $0.00184]"
    assert "e-0" not in text
    assert money_interval(Interval(0.0123, 0.0101, 0.0150, "bootstrap-t", 0.95, 50)) == "$12.30 [$10.10, $15.00]"
    assert money(1234.5) == "$1,234.50" and money(-0.2) == "-$0.200" and money(0) == "$0"
    assert signed_interval(Interval(-1e-5, -2e-5, 3e-6, "bootstrap-t", 0.95, 9), "cost").endswith("per 1k cases")


def test_a_missing_bound_is_a_question_mark_never_zero() -> None:
    no_low = Interval(0.004, None, 0.009, "order-statistic", 0.95, 3, note="no lower bound: need ≥ 6 calls")
    assert duration(no_low) == "4.0ms [?, 9.0]"
    assert pct_interval(Interval(0.5, None, None, "insufficient data", 0.95, 1)) == "50.0% [?, ?]"
    assert "0.0" not in duration(no_low)
    assert p_value(1.9e-06) == "1.9e-06" and p_value(0.0341) == "0.034"


def test_times_changes_and_bounds_read_the_same_in_reports_and_history() -> None:
    assert [latency(v) for v in (0.0042, 0.85, 1.25, None)] == ["4.2ms", "850ms", "1.25s", "–"]
    assert duration(Interval(0.0042, None, None, "order-statistic", 0.95, 0)) == latency(0.0042)
    assert relative_change(1.12, 1.0) == "+12%" and relative_change(0.5, 1.0) == "-50%"
    assert relative_change(1.0, 0.0) == relative_change(None, 1.0) == "–"  # no change from 0 or from nothing
    assert pct_bounds(0.715, None, 0) == "[72, ?]"
    point = Point({}, {"latency_p95_s": 0.0042, "pass_rate": 0.5, "pass_low": 0.3, "pass_high": None})
    assert show_value(point, "latency_p95") == "4.2ms"  # was "4ms": the report's p95 column says "4.2ms"
    assert show_value(point, "pass_rate") == "50.0% [30, ?]"
    # Twelve runs in falling order: an exact permutation p far below 0.001 must not print as "0.000".
    drift = Drift(TrendTest(12, -1.0, 4.2e-9, "down", True), LatestTest(11, 40, -0.2, 3e-5, True))
    lines = drift_lines(Series("s", "v", "pass_rate", [point], drift))
    assert "Kendall τ -1.00, permutation p 4.2e-09" in lines[1] and "-20.0 pts, p 3e-05" in lines[2]


def test_mde_column_says_when_nothing_is_detectable() -> None:
    unreachable = {"block": Detectable(None, "with 5 cases the test's smallest possible p is 0.016", 7)}
    assert mde_pair(0.41, None, unreachable, "pass_rate") == "41.0 pts / not detectable at this size (needs ≈7 cases)"
    both = {"warn": Detectable(None, "x", 9), "block": Detectable(None, "x", 12)}
    assert mde_pair(None, None, both, "pass_rate") == "not detectable at this size (needs ≈9 / ≈12 cases)"
    assert mde_pair(0.1, 0.13, {}, "pass_rate") == "10.0 / 13.0 pts"


def test_undecided_cases_are_shown_beside_the_rate_and_the_cases(tmp_path: Path) -> None:
    run = write_run(tmp_path, "s", "r", {"v1": [True] * 6, "v2": [True, False] * 3})
    records = [json.loads(line) for line in (run / RESULTS_FILE).read_text(encoding="utf-8").splitlines()]
    for record in records:  # two of v2's trials lost their verdict (a judge that could not answer)
        if record["trial_id"] in ("v2-0", "v2-2"):
            record["passed"] = None
    (run / RESULTS_FILE).write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    report = build_report(run, ReportOptions(n_resamples=199))
    _, rows = summary_table(report)
    v2 = next(row for row in rows if row[0].text.startswith("m · v2"))
    assert v2[1].text == "6×1 (4 decided)"
    assert v2[2].text.endswith("(+2 undecided)") and v2[2].text.startswith("25.0%")
