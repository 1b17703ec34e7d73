"""`harness gate` end to end: exit codes, the verdict lines, JUnit XML and the Markdown summary."""

from __future__ import annotations

import json
import shlex
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from test_gate_fixtures import DEAD_URL, extract_project, flips, write_run

from harness.cli import cli
from harness.cli.common import run_cli
from harness.cli.gate import METRIC_CHOICES
from harness.errors import EXIT_OK, EXIT_REGRESSION, EXIT_USAGE
from harness.pipeline import RunOptions, run_suite
from harness.stats.cases import METRICS
from harness.store import TrialResult
from harness.suite import load_suite


def harness(args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "argv", ["harness", *args])
    return run_cli(cli)


@pytest.fixture(scope="module")
def extract_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The example extract suite replayed offline from its committed cassettes; returns the run folder."""
    root = tmp_path_factory.mktemp("extract-cli")
    suite_path = extract_project(root)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LOCAL_LLM_URL", DEAD_URL)
        mp.chdir(root)
        outcome = run_suite(load_suite(suite_path), RunOptions(
            reports_root=root / "reports", cassettes_root=root / "cassettes", run_id="pr", record="replay",
            progress=False))  # fmt: skip
    yield outcome.directory


@pytest.fixture(autouse=True)
def no_step_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def test_broken_prompt_exits_1_and_lists_its_flips(extract_run: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    junit = tmp_path / "gate.xml"
    args = ["gate", str(extract_run), "--junit", str(junit), "--max-flips", "30"]
    assert harness(args, monkeypatch) == EXIT_REGRESSION
    out = capsys.readouterr().out
    lines = out.splitlines()
    # v2 fixes 3 cases and breaks none: mid-p McNemar p = 0.0625 for a gain, not enough for IMPROVEMENT, and
    # the interval beside the verdict reaches 0 rather than claim a gain the test does not confirm.
    assert lines[0].startswith("NON_INFERIOR") and "v2 vs v1" in lines[0] and "[+0.0, " in lines[0]
    assert lines[1].startswith("BLOCK") and "extract · pass_rate · v3-broken vs v1" in lines[1]
    assert "(90% CI)" in lines[1] and "mid-p McNemar" in lines[1] and "margin 5.0 pts" in lines[1]
    assert "case(s) pass → fail:" in out and "maria-madrid: pass → fail" in out
    assert "candidate: Maria Lopez is 34 years old" in out
    assert "this suite detects a drop of" in out
    assert lines[-1] == "gate: 1 BLOCK, 1 NON_INFERIOR → exit 1"

    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites" and root.get("tests") == "2" and root.get("failures") == "1"
    cases = root.findall("./testsuite[@name='extract']/testcase")
    assert [c.get("name") for c in cases] == ["pass_rate: v2 vs v1", "pass_rate: v3-broken vs v1"]
    assert cases[0].find("failure") is None and "NON_INFERIOR" in (cases[0].findtext("system-out") or "")
    failure = cases[1].find("failure")
    assert failure is not None and failure.get("type") == "BLOCK"
    assert (failure.get("message") or "").startswith("BLOCK")
    assert "maria-madrid: pass → fail" in (failure.text or "")
    props = {p.get("name"): p.get("value") for p in cases[1].iter("property")}
    assert props["verdict"] == "BLOCK" and float(props["p_holm"]) < 0.01 and props["n_cases"] == "24"


def test_markdown_goes_to_the_file_and_the_step_summary(extract_run: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    summary = tmp_path / "step_summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    target = tmp_path / "gate.md"
    assert harness(["gate", str(extract_run), "--markdown", str(target)], monkeypatch) == EXIT_REGRESSION
    text = target.read_text(encoding="utf-8")
    assert text.startswith("## 🛑 prompt-harness gate: BLOCK")
    assert "| 🛑 **BLOCK**" in text and "v3-broken vs v1" in text
    assert "<details><summary>extract · pass_rate · v3-broken vs v1:" in text and "| maria-madrid" in text
    assert "**What these suites can detect**" in text
    assert summary.read_text(encoding="utf-8") == "earlier step\n" + text  # appended, not overwritten
    assert "summary appended to" in capsys.readouterr().err


def test_warn_passes_unless_strict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    run = write_run(tmp_path, "warned", "r", flips(40, regressions=5))  # one-sided mid-p = 1/64
    assert harness(["gate", str(run)], monkeypatch) == EXIT_OK
    assert capsys.readouterr().out.splitlines()[0].startswith("WARN")
    junit = tmp_path / "strict.xml"
    assert harness(["gate", str(run), "--strict", "--junit", str(junit)], monkeypatch) == EXIT_REGRESSION
    assert "(strict: WARN fails too) → exit 1" in capsys.readouterr().out
    failure = ET.parse(junit).getroot().find(".//failure")
    assert failure is not None and failure.get("type") == "WARN"


def test_several_runs_and_a_baseline_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    reports = tmp_path / "reports"
    write_run(tmp_path / "main", "alpha", "m", {"v1": [True] * 30})
    write_run(reports, "alpha", "pr", {"v1": [True] * 29 + [False]})
    write_run(reports, "beta", "pr", flips(30, 0))
    code = harness(["gate", "alpha@pr", "beta@pr", "--baseline", str(tmp_path / "main" / "alpha" / "m"),
                    "--reports", str(reports)], monkeypatch)  # fmt: skip
    out = capsys.readouterr().out
    assert code == EXIT_OK
    first, second = out.splitlines()[:2]
    assert " over 2, " in first and " over 2, " in second and "m · v1 · T=0: this run vs baseline run" in first
    assert out.count("\n") > 4 and "beta · pass_rate · v2 vs v1" in out


def test_usage_errors_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    assert harness(["gate", str(tmp_path / "missing")], monkeypatch) == EXIT_USAGE
    assert "not a run folder, SUITE@RUN_ID" in capsys.readouterr().err
    run = write_run(tmp_path, "s", "r", flips(20, 0))
    assert harness(["gate", str(run), "--metric", "speed"], monkeypatch) == EXIT_USAGE
    assert harness(["gate"], monkeypatch) == EXIT_USAGE
    (run / "manifest.json").write_text("{not json", encoding="utf-8")
    assert harness(["gate", str(run)], monkeypatch) == EXIT_USAGE
    assert "unreadable manifest" in capsys.readouterr().err


def test_junit_survives_control_characters_in_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = write_run(tmp_path, "ctrl", "r", flips(30, regressions=10))
    lines = (run / "results.jsonl").read_text(encoding="utf-8").splitlines()
    patched = []
    for line in lines:
        trial = TrialResult.from_dict(json.loads(line))
        if trial.prompt == "v2" and not trial.passed:
            line = line.replace(": bad", ": \\u001b[31mbad\\u0000")
        patched.append(line)
    (run / "results.jsonl").write_text("\n".join(patched) + "\n", encoding="utf-8")
    junit = tmp_path / "ctrl.xml"
    assert harness(["gate", str(run), "--junit", str(junit)], monkeypatch) == EXIT_REGRESSION
    failure = ET.parse(junit).getroot().find(".//failure")  # parses: illegal characters were replaced
    assert failure is not None and "\ufffd[31mbad\ufffd" in (failure.text or "")


def test_metric_choices_match_the_stats_metrics() -> None:
    assert METRIC_CHOICES == METRICS


@pytest.mark.parametrize("workflow", sorted((Path(__file__).resolve().parents[1] / "examples" / "github-actions")
                                            .glob("*.yml")), ids=lambda p: p.name)  # fmt: skip
def test_example_workflows_use_real_commands_and_flags(workflow: Path) -> None:
    steps = [s for job in yaml.safe_load(workflow.read_text(encoding="utf-8"))["jobs"].values()
             for s in job["steps"]]  # fmt: skip
    used = 0
    for step in steps:
        for line in str(step.get("run", "")).replace("\\\n", " ").splitlines():
            words = shlex.split(line.split("||")[0].split(">")[0], comments=True)
            for i, word in enumerate(words[:-1]):
                if word != "harness":
                    continue
                command = cli.get_command(None, words[i + 1])  # type: ignore[arg-type]
                assert command is not None, f"{workflow.name}: no command harness {words[i + 1]}"
                known = {opt for p in command.params for opt in getattr(p, "opts", [])}
                flags = [w for w in words[i + 2:] if w.startswith("--")]
                assert set(flags) <= known, f"{workflow.name}: harness {words[i + 1]} has no {set(flags) - known}"
                used += 1
    assert used >= 3
