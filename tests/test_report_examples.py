"""The shipped example suite, replayed offline from its committed cassettes, gives a report with comparisons
of two prompt versions and two temperatures; its Markdown is checked for structure (the numbers follow the
recording, so they are not pinned here)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import jsonschema
import pytest
from test_report_fixtures import dead_url

from harness.cli import cli
from harness.cli.common import run_cli
from harness.report.report_schema import REPORT_SCHEMA

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "suites" / "examples" / "classify.yaml"
VERDICTS = ("BLOCK", "WARN", "IMPROVEMENT", "NON_INFERIOR", "INCONCLUSIVE")
VARIANTS = ["smollm2 · v1 · T=0", "smollm2 · v1 · T=0.7", "smollm2 · v2 · T=0", "smollm2 · v2 · T=0.7"]


def harness(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> str:
    monkeypatch.setattr(sys, "argv", ["harness", *args])
    code = run_cli(cli)
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


@pytest.fixture
def replayed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Path:
    monkeypatch.setenv("LOCAL_LLM_URL", dead_url())  # replay must not need the model server
    monkeypatch.delenv("CI", raising=False)
    harness(["run", str(SUITE), "--record", "replay", "--run-id", "example", "--quiet",
             "--reports", str(tmp_path), "--cassettes", str(ROOT / "cassettes")], monkeypatch, capsys)  # fmt: skip
    return tmp_path / "classify" / "example"


def _table_rows(section: str) -> list[list[str]]:
    lines = [line for line in section.splitlines() if line.startswith("|")]
    assert len(lines) >= 2 and re.fullmatch(r"\|[-|]+\|", lines[1]), "not a Markdown table"
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n### ", start + len(heading))
    return text[start:] if end < 0 else text[start:end]


def test_example_suite_report_compares_prompts_and_temperatures(
    replayed: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    harness(["report", str(replayed)], monkeypatch, capsys)
    text = (replayed / "report.md").read_text(encoding="utf-8")
    assert text.startswith("## prompt-harness report: classify\n")

    variants = _table_rows(_section(text, "### Variants"))
    assert [row[0] for row in variants] == [f"{VARIANTS[0]} (baseline)", *VARIANTS[1:]]
    assert all(re.fullmatch(r"\d+×2", row[1]) for row in variants)  # n cases × k = 2 repeats
    assert all(re.fullmatch(r"\d+\.\d% \[\d+\.\d, \d+\.\d\]", row[2]) for row in variants)

    comparisons = _section(text, "### Comparisons against the baseline smollm2 · v1 · T=0")
    assert "Holm over the 3 comparisons shown" in comparisons
    rows = _table_rows(comparisons)
    assert [row[0] for row in rows] == VARIANTS[1:]
    assert all(row[7] in VERDICTS for row in rows)
    assert all(re.fullmatch(r"[+-]\d+\.\d pts \[[+-]\d+\.\d, [+-]\d+\.\d\]", row[4]) for row in rows)
    assert comparisons.count("<details><summary>") == 3
    # Every comparison says what it can detect, or that at 10 cases no drop is detectable (never an MDE larger
    # than the room below the baseline's pass rate).
    assert comparisons.count("this suite detects a drop of") + comparisons.count("no drop is detectable") == 3

    flakiness = _table_rows(_section(text, "### Flakiness"))
    assert [row[0] for row in flakiness] == VARIANTS
    front = _table_rows(_section(text, "### Cost–quality"))
    assert [row[0] for row in front] == VARIANTS and any(row[3] == "on the front" for row in front)

    data = json.loads((replayed / "report.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(REPORT_SCHEMA).validate(data)
    assert len(data["comparisons"]) == 3 and data["settings"]["baseline"] == VARIANTS[0]
    html = (replayed / "report.html").read_text(encoding="utf-8")
    assert "<svg" in html and html.count('<details class="case"') == len(data["cases"])


def test_example_suite_all_pairs_and_replays_are_byte_identical(
    replayed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pairs = harness(["report", str(replayed), "--all-pairs", "--format", "json"], monkeypatch, capsys)
    assert len(json.loads(pairs)["comparisons"]) == 6
    first = harness(["report", str(replayed), "--format", "markdown"], monkeypatch, capsys)
    harness(["run", str(SUITE), "--record", "replay", "--run-id", "again", "--quiet",
             "--reports", str(tmp_path), "--cassettes", str(ROOT / "cassettes")], monkeypatch, capsys)  # fmt: skip
    again = harness(["report", str(tmp_path / "classify" / "again"), "--format", "markdown"], monkeypatch, capsys)
    assert first == again
