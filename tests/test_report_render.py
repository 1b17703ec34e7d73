"""Report contents from hand-made runs: order, comparisons, flipped and unmatched cases, edge cases, JSON schema."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from test_report_fixtures import binary_variant, trial, write_run

from harness.errors import HarnessError
from harness.report.build import ReportOptions, build_report
from harness.report.render import FORMATS, render_report, render_run
from harness.report.report_schema import REPORT_SCHEMA
from harness.report.text import GITHUB_COMMENT_LIMIT
from harness.stats.paired import MCNEMAR_MIDP, mcnemar_midp
from harness.stats.power import mde
from harness.store import GradeRecord

VALIDATOR = jsonschema.Draft202012Validator(REPORT_SCHEMA)


def report_json(directory: Path, options: ReportOptions | None = None) -> dict[str, Any]:
    data = json.loads(render_report(build_report(directory, options), "json"))
    VALIDATOR.validate(data)
    return data


def test_variants_follow_the_suite_order_and_the_first_prompt_is_the_default_baseline(tmp_path: Path) -> None:
    # "zeta" comes first in the suite although it sorts last: the report keeps the suite's order.
    results = binary_variant([True] * 8 + [False] * 2, "zeta") + binary_variant([True] * 9 + [False], "alpha")
    directory = write_run(tmp_path, results)
    text = render_run(directory, "markdown")
    zeta, alpha = text.index("| m · zeta · T=0 (baseline)"), text.index("| m · alpha · T=0 ")
    assert zeta < alpha
    data = report_json(directory)
    assert [v["prompt"] for v in data["variants"]] == ["zeta", "alpha"]
    assert data["settings"]["baseline"] == "m · zeta · T=0"
    (comparison,) = data["comparisons"]
    assert (comparison["baseline"], comparison["candidate"]) == ("m · zeta · T=0", "m · alpha · T=0")


def test_binary_regression_lists_flipped_cases_and_blocks(tmp_path: Path) -> None:
    base = [True] * 40
    cand = [False] * 8 + [True] * 31 + [False]  # c00..c07 and c39 regress
    fixed_base = base[:]
    fixed_base[20] = False  # c20 fails on the baseline and passes on the candidate
    results = binary_variant(fixed_base, "v1") + binary_variant(cand, "v2")
    directory = write_run(tmp_path, results)
    data = report_json(directory)
    (c,) = data["comparisons"]
    assert c["p_method"] == MCNEMAR_MIDP
    assert c["p_value"] == pytest.approx(float(mcnemar_midp(9, 1)))
    assert c["gate"]["verdict"] == "BLOCK"
    assert c["regressions"] == [f"c{i:02d}" for i in range(8)] + ["c39"] and c["fixes"] == ["c20"]
    assert c["mde_warn"] == pytest.approx(mde(c["sd_diff"], 40, 0.05))
    text = render_run(directory, "markdown")
    assert "pass→fail (9): c00, c01, c02, c03, c04, c05, c06, c07, c39" in text
    assert "fail→pass (1): c20" in text
    assert "| BLOCK " in text and "mid-p McNemar" in text
    terminal = render_run(directory, "table")
    assert "pass→fail (9)" in terminal and "BLOCK" in terminal


def test_cases_on_one_side_only_are_reported_not_dropped(tmp_path: Path) -> None:
    base = binary_variant([True] * 12, "v1")
    cand = [t for t in binary_variant([True] * 12, "v2") if t.case_id not in ("c00", "c01")]
    cand.append(trial("brand-new", True, prompt="v2"))
    directory = write_run(tmp_path, base + cand)
    (c,) = report_json(directory)["comparisons"]
    assert c["only_baseline"] == ["c00", "c01"] and c["only_candidate"] == ["brand-new"]
    assert c["n_cases"] == 10
    text = render_run(directory, "markdown")
    assert "only in the baseline, not compared (2): c00, c01" in text
    assert "only in the candidate, not compared (1): brand-new" in text


@pytest.mark.parametrize(
    "results",
    [
        pytest.param(binary_variant([True] * 6, "v1"), id="all-pass-one-variant"),
        pytest.param([trial("only", True), trial("only", True, prompt="v2")], id="one-case"),
        pytest.param([trial("a", True), trial("b", None, error=True), trial("c", False, cost=None),
                      trial("a", False, prompt="v2", latency_ms=None)], id="errors-and-gaps"),  # fmt: skip
        pytest.param([], id="no-trials"),
    ],
)
def test_edge_cases_render_in_every_format(tmp_path: Path, results: list) -> None:
    directory = write_run(tmp_path, results)
    for fmt in FORMATS:
        assert render_run(directory, fmt)
    data = report_json(directory)
    assert len(data["variants"]) == len({t.variant for t in results})
    if not results:
        assert "the run has no finished trials" in data["notes"]


def test_one_case_has_no_interval_and_no_power_statement(tmp_path: Path) -> None:
    directory = write_run(tmp_path, [trial("only", True), trial("only", False, prompt="v2")])
    data = report_json(directory)
    assert data["variants"][0]["pass_rate"]["low"] is not None  # one case still bounds a rate (Clopper-Pearson)
    (c,) = data["comparisons"]
    assert c["ci95"]["low"] is None and c["mde_warn"] is None
    assert any("fewer than 2 shared cases" in note for note in c["notes"])


def test_baseline_override_and_all_pairs(tmp_path: Path) -> None:
    results = (binary_variant([True] * 10, "v1") + binary_variant([True] * 9 + [False], "v2")
               + binary_variant([True] * 8 + [False] * 2, "v3"))  # fmt: skip
    directory = write_run(tmp_path, results, baseline={"prompt": "v2", "model": None, "temperature": None})
    assert report_json(directory)["settings"]["baseline"] == "m · v2 · T=0"
    data = report_json(directory, ReportOptions(baseline="prompt=v3"))
    assert {c["baseline"] for c in data["comparisons"]} == {"m · v3 · T=0"}
    assert report_json(directory, ReportOptions(baseline="m · v1 · T=0"))["settings"]["baseline"] == "m · v1 · T=0"
    pairs = report_json(directory, ReportOptions(all_pairs=True))
    assert [(c["baseline"].split(" · ")[1], c["candidate"].split(" · ")[1]) for c in pairs["comparisons"]] == [
        ("v1", "v2"), ("v1", "v3"), ("v2", "v3")]  # fmt: skip
    assert {c["family_size"] for c in pairs["comparisons"]} == {3}
    assert "| baseline " in render_report(build_report(directory, ReportOptions(all_pairs=True)), "markdown")
    with pytest.raises(HarnessError, match="no such variant"):
        build_report(directory, ReportOptions(baseline="prompt=v9"))
    with pytest.raises(HarnessError, match="give a variant label"):
        build_report(directory, ReportOptions(baseline="v9"))


def test_holm_covers_every_comparison_shown(tmp_path: Path) -> None:
    results = binary_variant([True] * 20, "v1") + binary_variant([True] * 15 + [False] * 5, "v2")
    results += binary_variant([True] * 18 + [False] * 2, "v3")
    directory = write_run(tmp_path, results, metrics=("pass_rate", "cost"))
    comparisons = report_json(directory)["comparisons"]
    assert [c["metric"] for c in comparisons] == ["pass_rate", "pass_rate", "cost", "cost"]
    assert {c["family_size"] for c in comparisons} == {4}
    raw = sorted(c["p_value"] for c in comparisons)
    assert min(c["p_holm"] for c in comparisons) == pytest.approx(min(1.0, 4 * raw[0]))


def test_graded_scores_get_their_own_column_and_binary_scores_do_not(tmp_path: Path) -> None:
    binary = write_run(tmp_path / "a", binary_variant([True, False] * 5, "v1"))
    assert "score [95% CI]" not in render_run(binary, "markdown")
    scored = [trial(f"c{i}", True, score=s) for i, s in enumerate([0.5, 0.75, 1.0, 0.25, 0.9, 0.6])]
    directory = write_run(tmp_path / "b", scored)
    text = render_run(directory, "markdown")
    assert "score [95% CI]" in text and "score: eff-n Wilson" in text


def test_markdown_escapes_run_data_and_fits_a_pr_comment(tmp_path: Path) -> None:
    many = 400
    base = [trial(f"<b>case|{i}", True, prompt="p|1") for i in range(many)]
    cand = [trial(f"<b>case|{i}", i % 3 != 0, prompt="p|1", temperature=0.7) for i in range(many)]
    text = render_run(write_run(tmp_path, base + cand), "markdown")
    assert len(text) < GITHUB_COMMENT_LIMIT
    assert "<b>" not in text and "&lt;b>case" in text
    assert "| m · p\\|1 · T=0 (baseline)" in text


def test_judge_calibration_section_from_labelled_cases(tmp_path: Path) -> None:
    results = []
    for i in range(12):
        human, judge = i % 2 == 0, i % 2 == 0 or i == 11  # the judge passes c11, which a human failed
        grade = GradeRecord("judge", judge, float(judge), f"judged {i}", details={"judge": "j1", "model": "jm"})
        results.append(replace(trial(f"c{i:02d}", judge), grades=[grade], label="pass" if human else "fail"))
    directory = write_run(tmp_path, results)
    data = report_json(directory)
    judge = data["calibration"]["judges"]["j1"]
    assert judge["labelled_trials"] == 12 and [d["case_id"] for d in judge["disagreements"]] == ["c11"]
    text = render_run(directory, "markdown")
    assert "### Judge calibration (agreement with human labels)" in text and "judge calibration: j1" in text
    assert "judge calibration: j1" in render_run(directory, "html")
    unlabelled = write_run(tmp_path / "none", binary_variant([True, False], "v1"))
    assert report_json(unlabelled)["calibration"] is None
    assert "Judge calibration" not in render_run(unlabelled, "markdown")


def test_markdown_too_long_for_a_comment_is_cut_with_a_pointer(tmp_path: Path) -> None:
    results = [trial(f"c{i}", i % 2 == 0, prompt=f"p{p:03d}-{'x' * 30}") for p in range(120) for i in range(3)]
    text = render_run(write_run(tmp_path, results), "markdown")
    assert len(text) <= GITHUB_COMMENT_LIMIT
    assert text.endswith("… cut to fit a GitHub comment; report.html and report.json have everything.\n")
    assert "<details>" not in text  # the details go first
