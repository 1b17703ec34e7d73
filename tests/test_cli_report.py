"""``harness report``, ``harness compare``, ``harness power`` and ``harness run --format``, run in-process."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from test_report_fixtures import (
    URL_VARIABLE,
    TinyProject,
    binary_variant,
    dead_url,
    tiny_project,
    trial,
    write_run,
)

from harness.cli import cli
from harness.cli.common import run_cli
from harness.stats.power import mde_sentence, required_cases, sd_diff_binary


def harness(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["harness", *args])
    code = run_cli(cli)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> TinyProject:
    return tiny_project(tmp_path_factory.mktemp("tiny-cli"))


def test_report_writes_markdown_json_and_html_into_the_run_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = write_run(tmp_path, binary_variant([True] * 9 + [False], "v1") + binary_variant([True] * 10, "v2"))
    code, out, err = harness(["report", str(run)], monkeypatch, capsys)
    assert code == 0
    assert "Variants\n--------" in out and "m · v1 · T=0 (baseline)" in out
    for name in ("report.md", "report.json", "report.html"):
        assert f"wrote {run / name}" in err
    assert json.loads((run / "report.json").read_text(encoding="utf-8"))["schema"] == "prompt-harness/report"
    assert (run / "report.md").read_text(encoding="utf-8").startswith("## prompt-harness report: synthetic")
    assert (run / "report.html").read_text(encoding="utf-8").startswith("<!doctype html>")


def test_report_prints_a_format_or_writes_it_where_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    reports = tmp_path / "reports"
    run = write_run(reports, binary_variant([True, False, True], "v1"), run_id="r7")
    code, out, _ = harness(["report", "r7", "--reports", str(reports), "--format", "json"], monkeypatch, capsys)
    assert code == 0 and json.loads(out)["suite"]["name"] == "synthetic"
    assert not (run / "report.json").exists()
    target = tmp_path / "out" / "summary.md"
    code, out, err = harness(["report", str(run), "--output", str(target)], monkeypatch, capsys)
    assert code == 0 and out == "" and target.read_text(encoding="utf-8").startswith("## prompt-harness report")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "no-such-run"], "error: no run 'no-such-run'"),
        (["report", "RUN", "--baseline", "prompt=v9"], "no such variant in this run"),
        (["report", "RUN", "--output", "report.pdf"], "cannot tell the format"),
        (["compare", "RUN", "OTHER"], "compare two runs of one suite"),
        (["power"], "give either a pilot RUN or --rate"),
        (["power", "--rate", "0.9", "--drop", "5"], "--drop must be between 0 and 1"),
        (["power", "RUN", "--cases", "50"], "--cases goes with --rate"),
    ],
)
def test_bad_input_exits_2_with_a_message_and_no_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str],
    message: str,
) -> None:  # fmt: skip
    run = write_run(tmp_path, binary_variant([True, False], "v1"))
    other = write_run(tmp_path, binary_variant([True, False], "v1"), suite="different")
    monkeypatch.chdir(tmp_path)
    args = [str(run) if a == "RUN" else str(other) if a == "OTHER" else a for a in args]
    code, _, err = harness(args, monkeypatch, capsys)
    assert code == 2 and message in err and "Traceback" not in err


def test_compare_pairs_two_runs_and_lists_what_only_one_side_has(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before = binary_variant([True] * 30, "v1") + binary_variant([True] * 30, "v2")
    after = [t for t in binary_variant([False] * 6 + [True] * 24, "v1") if t.case_id != "c29"]
    after += [trial("extra", True), *binary_variant([True] * 5, "v3")]
    run_a = write_run(tmp_path, before, run_id="main", suite_hash="aaaa")
    run_b = write_run(tmp_path, after, run_id="pr", suite_hash="bbbb")
    code, out, _ = harness(["compare", str(run_a), str(run_b), "--format", "json"], monkeypatch, capsys)
    assert code == 0
    data = json.loads(out)
    assert data["cases_only_a"] == ["c29"] and data["cases_only_b"] == ["extra"]
    assert data["variants_only_a"] == ["m · v2 · T=0"] and data["variants_only_b"] == ["m · v3 · T=0"]
    (c,) = data["comparisons"]
    assert c["baseline"] == "m · v1 · T=0 (run a)" and c["candidate"] == "m · v1 · T=0 (run b)"
    assert c["regressions"] == [f"c{i:02d}" for i in range(6)] and c["gate"]["verdict"] == "BLOCK"
    assert c["only_baseline"] == ["c29"] and c["only_candidate"] == ["extra"]
    assert any("suite changed between the runs" in n for n in data["notes"])
    code, out, _ = harness(["compare", str(run_a), str(run_b), "--format", "markdown"], monkeypatch, capsys)
    assert "- cases only in run a (1): c29" in out and "- variants only in run b: m · v3 · T=0" in out
    assert "pass→fail (6): c00, c01, c02, c03, c04, c05" in out


def test_power_from_assumed_rates_matches_the_formulas(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = harness(["power", "--rate", "0.85", "--drop", "0.05", "--correlation", "0.35", "--cases", "200"],
                           monkeypatch, capsys)  # fmt: skip
    assert code == 0
    sd_d = sd_diff_binary(0.80, 0.85, 0.35)
    assert f"{required_cases(0.05, sd_d)} cases at the WARN level" in out
    assert f"{required_cases(0.05, sd_d, 0.01)} at BLOCK" in out
    assert mde_sentence(200, 1, sd_d, 0.05) in out


def test_power_from_a_pilot_run_with_repeats_plans_repeats(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Half the cases are coin flips across repeats: most of the variance is within cases, so repeats help.
    results = [trial(f"c{i:02d}", (i % 2 == 0) or (r % 2 == 0), repeat=r) for i in range(40) for r in range(3)]
    run = write_run(tmp_path, results)
    code, out, _ = harness(["power", str(run), "--drop", "0.1"], monkeypatch, capsys)
    assert code == 0
    assert "m · v1 · T=0 as the baseline (40 cases × 3 repeats" in out
    assert "this suite detects a drop of" in out and "repeats per case" in out


def test_run_format_prints_through_the_same_renderer(
    project: TinyProject, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(URL_VARIABLE, dead_url())
    monkeypatch.delenv("CI", raising=False)
    code, out, _ = harness(["run", str(project.suite_path), "--record", "replay", "--quiet", "--run-id", "fmt",
                            "--reports", str(project.reports), "--cassettes", str(project.cassettes),
                            "--format", "json", "--format", "markdown"], monkeypatch, capsys)  # fmt: skip
    assert code == 0
    json_text, markdown = out.split("\n## prompt-harness report: tiny\n")
    data = json.loads(json_text)
    assert data["suite"]["name"] == "tiny" and len(data["variants"]) == 4
    assert "### Comparisons against the baseline fault-server · v1 · T=0" in markdown
