"""The pytest plugin's baseline run option and its message for a suite with nothing to gate (not exit 5)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from test_gate_fixtures import DEAD_URL, extract_project

import harness.gate  # noqa: F401 - loaded once here: pytester's inner runs cannot re-import numpy
import harness.report.build  # noqa: F401
import harness.report.gate_text  # noqa: F401

pytest_plugins = ["pytester"]


@pytest.fixture
def one_variant(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The extract suite with only its v1 prompt (replays from v1's recordings), as CI sees it."""
    monkeypatch.setenv("CI", "1")
    monkeypatch.setenv("LOCAL_LLM_URL", DEAD_URL)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    suite = extract_project(pytester.path)
    data = yaml.safe_load(suite.read_text(encoding="utf-8"))
    data["prompts"] = {"v1": data["prompts"]["v1"]}
    suite.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return suite


def test_a_suite_with_nothing_to_gate_says_so_instead_of_exit_5(pytester: pytest.Pytester, one_variant: Path) -> None:
    result = pytester.runpytest("--harness", "suites/examples/extract.yaml")
    assert result.ret == 0  # not pytest's 5 ("no tests ran")
    result.assert_outcomes(skipped=1)
    text = result.stdout.str()
    assert "prompt-harness gate" in text and "nothing to gate" in text and "--harness-baseline" in text


def test_baseline_run_gates_an_in_place_edit(pytester: pytest.Pytester, one_variant: Path) -> None:
    first = pytester.runpytest("--harness", "suites/examples/extract.yaml")
    assert first.ret == 0
    runs = sorted((pytester.path / "reports" / "extract").iterdir())
    assert len(runs) == 1
    # SUITE@latest is resolved before this session's run: it is the first run, not the new one.
    second = pytester.runpytest("--harness", "suites/examples/extract.yaml", "--harness-baseline", "extract@latest",
                                "-rA")  # fmt: skip
    second.assert_outcomes(passed=1)
    text = second.stdout.str()
    assert "this run vs baseline run" in text and "+0.0 pts" in text
    assert len(list((pytester.path / "reports" / "extract").iterdir())) == 2
    folder = pytester.runpytest("--harness", "suites/examples/extract.yaml", "--harness-baseline", str(runs[0]))
    folder.assert_outcomes(passed=1)
    missing = pytester.runpytest("--harness", "suites/examples/extract.yaml", "--harness-baseline", "extract@nope")
    assert missing.ret != 0 and "extract@nope" in missing.stdout.str()
