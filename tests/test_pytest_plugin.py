"""The pytest plugin, driven by pytest's own ``pytester``: suites collected as gated items, replayed offline
from the example extract suite's committed cassettes (real SmolLM2 outputs)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_gate_fixtures import DEAD_URL, extract_project

# pytester's in-process runs drop the modules first imported inside them, and numpy refuses a second import:
# load what the plugin imports lazily here, once, so every inner run finds it.
import harness.gate  # noqa: F401
import harness.report.build  # noqa: F401
import harness.report.gate_text  # noqa: F401
from harness.pipeline import RunOptions, run_suite
from harness.suite import load_suite
from harness.testing.fault_server import FaultConfig, FaultServer

pytest_plugins = ["pytester"]


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project holding the extract suite, as CI sees it: CI set, the model's address dead."""
    monkeypatch.setenv("CI", "1")
    monkeypatch.setenv("LOCAL_LLM_URL", DEAD_URL)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return extract_project(pytester.path)


def test_suites_are_collected_and_gated(pytester: pytest.Pytester, project: Path) -> None:
    result = pytester.runpytest("suites/", "-rA")
    result.assert_outcomes(passed=1, failed=1)
    # The broken prompt's item fails with its verdict line, the flipped cases and what the suite can detect.
    result.stdout.fnmatch_lines([
        "*PASSED suites/examples/extract.yaml::pass_rate[[]v2 vs v1[]]*",
        "*FAILED suites/examples/extract.yaml::pass_rate[[]v3-broken vs v1[]]*",
    ])  # fmt: skip
    text = result.stdout.str()
    assert "BLOCK         extract · pass_rate · v3-broken vs v1: -83.3 pts" in text
    assert "ahmed-istanbul: pass → fail" in text and "candidate: This text is a factual description" in text
    assert "this suite detects a drop of" in text
    assert "Traceback" not in text
    # v2 fixes 3 cases, breaks none: mid-p McNemar p = 0.0625 for the gain, so not an IMPROVEMENT.
    result.stdout.fnmatch_lines(["*prompt-harness gate*", "NON_INFERIOR *v2 vs v1*", "BLOCK *v3-broken vs v1*"])
    # It ran through the pipeline (replaying: CI is set) into a run folder, like `harness run`.
    runs = list((pytester.path / "reports" / "extract").iterdir())
    assert len(runs) == 1
    manifest = json.loads((runs[0] / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["record_mode"] == "smollm2=replay"


def test_harness_option_collects_only_the_named_suite(pytester: pytest.Pytester, project: Path) -> None:
    pytester.makepyfile(test_unit="def test_unit():\n    assert False, 'unit tests must not run'\n")
    pytester.makeini("[pytest]\ntestpaths = .\n")
    result = pytester.runpytest("--harness", "suites/examples/extract.yaml")
    result.assert_outcomes(passed=1, failed=1)
    assert "unit tests must not run" not in result.stdout.str()
    # Next to explicit paths, --harness adds its suites.
    both = pytester.runpytest("test_unit.py", "--harness", "suites/examples/extract.yaml")
    both.assert_outcomes(passed=1, failed=2)


def test_suite_files_elsewhere_are_collected_only_when_named(pytester: pytest.Pytester, project: Path) -> None:
    # Suite files under tests/ are often deliberately broken fixtures: walking tests/ must leave them alone.
    fixtures = pytester.path / "tests" / "fixtures"
    fixtures.mkdir(parents=True)
    shutil.move(project, fixtures / "extract.yaml")
    (pytester.path / "tests" / "test_unit.py").write_text("def test_unit():\n    pass\n", encoding="utf-8")
    pytester.runpytest("tests/").assert_outcomes(passed=1)
    pytester.runpytest("tests/fixtures/extract.yaml").assert_outcomes(passed=1, failed=1)
    pytester.runpytest("tests/", "--harness", "tests/fixtures").assert_outcomes(passed=2, failed=1)
    pytester.makeini("[pytest]\nharness_suites = tests/fixtures\n")
    pytester.runpytest("tests/").assert_outcomes(passed=2, failed=1)


def test_one_item_per_case_for_deterministic_suites(pytester: pytest.Pytester, project: Path) -> None:
    result = pytester.runpytest("suites/", "--harness-per-case", "-rf")
    # 2 gated comparisons + 24 cases × 2 candidates; a case item fails when it passed under v1 and fails now.
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] + outcomes["failed"] == 2 + 48
    failed_cases = [line for line in result.stdout.lines if line.startswith("FAILED") and "[v3-broken]" in line]
    assert len(failed_cases) == 20  # the 20 pass → fail flips the BLOCK lists
    assert "FAILED suites/examples/extract.yaml::maria-madrid[v3-broken]" in result.stdout.str()
    result.stdout.fnmatch_lines(["*case maria-madrid passed under the baseline and fails under*v3-broken*"])
    pytester.makeini("[pytest]\nharness_per_case = true\n")
    again = pytester.runpytest("suites/", "-q")
    assert sum(again.parseoutcomes().values()) - again.parseoutcomes().get("warnings", 0) == 50


def test_holm_runs_over_every_suite_of_the_session(pytester: pytest.Pytester, project: Path) -> None:
    # A second suite with the same prompts under another name; its recordings are the same exchanges.
    twin = project.with_name("extract_twin.yaml")
    twin.write_text(project.read_text().replace("suite: extract", "suite: extract-twin"), encoding="utf-8")
    shutil.copytree(pytester.path / "cassettes" / "extract", pytester.path / "cassettes" / "extract-twin")
    result = pytester.runpytest("suites/")
    result.assert_outcomes(passed=2, failed=2)
    assert result.stdout.str().count("over 4, mid-p McNemar") >= 4  # one family of four, not two of two


def test_replay_miss_is_a_clear_collection_error(pytester: pytest.Pytester, project: Path) -> None:
    shutil.rmtree(pytester.path / "cassettes" / "extract")
    result = pytester.runpytest("suites/")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    text = result.stdout.str()
    assert "trial(s) have no recording in" in text and "--record record-missing" in text
    assert "Traceback" not in text


def test_invalid_suite_names_file_line_and_field(pytester: pytest.Pytester, project: Path) -> None:
    (project.parent / "bad.yaml").write_text("suite: bad\nmodels: []\nprompts: {v1: [{role: user}]}\n",
                                             encoding="utf-8")  # fmt: skip
    result = pytester.runpytest("suites/examples/bad.yaml")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert "bad.yaml:" in result.stdout.str() and "Traceback" not in result.stdout.str()


def test_plugin_is_inert_for_ordinary_projects(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    (pytester.path / "config.yaml").write_text("name: not a suite\nsuite_like: no\n", encoding="utf-8")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert "prompt-harness gate" not in result.stdout.str()


def test_importing_the_plugin_is_cheap() -> None:
    code = ("import sys, harness.pytest_plugin; "
            "print(sorted(m for m in ('numpy', 'scipy', 'openai', 'harness.suite', 'harness.gate') "
            "if m in sys.modules))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# The fault server echoes the last user message, so each case's output (and pass) is set by its vars:
# v2 says "bad" where v1 says "ok" on five cases, a one-sided mid-p of 1/64: a WARN, not a BLOCK.
ECHO_SUITE = """\
suite: echo
models:
  - name: echo
    base_url: ${ECHO_URL:-http://127.0.0.1:9/v1}
    api_key_env: null
temperatures: [0.0]
repeats: REPEATS
prompts:
  v1:
    - {role: user, content: "{{ a }}"}
  v2:
    - {role: user, content: "{{ b }}"}
baseline: {prompt: v1}
cases:
  - file: cases.jsonl
graders:
  - {type: contains, value: ok}
"""


def echo_project(root: Path, monkeypatch: pytest.MonkeyPatch, repeats: int = 1) -> None:
    """An echo suite under root/suites/, its cassettes recorded from the fault server, then the server gone."""
    (root / "pyproject.toml").write_text("[project]\nname = 'demo'\n", encoding="utf-8")
    suites = root / "suites"
    suites.mkdir()
    (suites / "echo.yaml").write_text(ECHO_SUITE.replace("REPEATS", str(repeats)), encoding="utf-8")
    rows = [{"id": f"c{i:02d}", "a": "ok" if i < 32 else "no", "b": "bad" if i < 5 else ("ok" if i < 32 else "no")}
            for i in range(40)]  # fmt: skip
    (suites / "cases.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with FaultServer(FaultConfig()) as server:
        monkeypatch.setenv("ECHO_URL", server.base_url)
        outcome = run_suite(load_suite(suites / "echo.yaml"), RunOptions(
            reports_root=root / "recording", cassettes_root=root / "cassettes", record="record", progress=False))
    assert outcome.manifest.status == "complete"
    monkeypatch.setenv("ECHO_URL", DEAD_URL)
    monkeypatch.setenv("CI", "1")


def test_warn_passes_with_a_warning_unless_strict(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    echo_project(pytester.path, monkeypatch)
    result = pytester.runpytest("suites/", "-W", "always")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*HarnessGateWarning: WARN *echo · pass_rate · v2 vs v1*"])
    strict = pytester.runpytest("suites/", "--harness-strict")
    strict.assert_outcomes(failed=1)
    strict.stdout.fnmatch_lines(["*WARN *echo · pass_rate · v2 vs v1*", "*5 case(s) pass → fail:*"])


def test_per_case_items_need_a_deterministic_suite(pytester: pytest.Pytester,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    echo_project(pytester.path, monkeypatch, repeats=2)
    result = pytester.runpytest("suites/", "--harness-per-case", "-W", "always")
    # Only the gate item; it WARNs (paired t on per-case means with two repeats each: p ≈ 0.01).
    result.assert_outcomes(passed=1, warnings=2)
    result.stdout.fnmatch_lines(["*per-case items need temperature 0 and one repeat*"])
    result.stdout.fnmatch_lines(["*HarnessGateWarning: WARN *paired t (one-sided)*"])
