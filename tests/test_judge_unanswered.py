"""A judge that cannot answer never makes a run look finished or a gate look green (issue 10).

Real CLI runs against the fault server: the model answers, the judge's endpoint is down. The run exits 4 with
the resume command, the case whose other grader already failed is a fail (not undecided), the gate refuses to
pass (exit 4), and a resume with the judge back redoes exactly those judge calls.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from test_report_fixtures import dead_url

from harness.errors import EXIT_INCOMPLETE, EXIT_OK
from harness.store import RESULTS_FILE, read_results
from harness.testing.fault_server import FaultConfig, FaultServer

SUITE = """\
suite: judged
models:
  - name: m
    base_url: ${MODEL_URL}
    api_key_env: null
judges:
  - id: j
    name: j
    base_url: ${JUDGE_URL}
    api_key_env: null
prompts:
  v1:
    - {role: user, content: "{{ item }}"}
  v2:
    - {role: user, content: "say {{ item }}"}
cases:
  - {id: apple, vars: {item: apple}}
  - {id: pear, vars: {item: pear}}
  - {id: stone, vars: {item: stone}}
graders:
  - {type: contains, value: fruit}
  - {type: judge, model: j, rubric: "The answer names a category.", structured: none}
"""
RULES = {"apple": "a fruit", "pear": "a fruit", "stone": "a rock"}


def harness(*args: str, model: str, judge: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODEL_URL": model, "JUDGE_URL": judge}
    env.pop("CI", None)
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, env=env,
                          timeout=300)  # fmt: skip


def test_a_judge_that_cannot_answer_fails_the_run_and_the_gate_until_resumed(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    reports, cassettes = tmp_path / "reports", tmp_path / "cassettes"
    common = ["--reports", str(reports), "--cassettes", str(cassettes), "--quiet"]
    with FaultServer(FaultConfig(rules=RULES)) as model:
        down = dead_url()
        first = harness("run", str(suite), "--record", "record", "--run-id", "r1", *common,
                        model=model.base_url, judge=down)  # fmt: skip
        assert first.returncode == EXIT_INCOMPLETE, first.stderr
        assert "judge call that could not answer" in first.stderr and "--resume r1" in first.stderr
        run = reports / "judged" / "r1"
        assert json.loads((run / "manifest.json").read_text())["status"] == "incomplete"
        results = {(r.prompt, r.case_id): r for r in read_results(run / RESULTS_FILE)}
        # "stone" failed `contains` already: a fail whatever the judge says, not an undecided case.
        assert results[("v1", "stone")].passed is False and results[("v2", "stone")].passed is False
        assert results[("v1", "apple")].passed is None and not results[("v1", "apple")].finished

        gate = harness("gate", str(run), model=model.base_url, judge=down)
        assert gate.returncode == EXIT_INCOMPLETE, gate.stdout + gate.stderr
        assert "0/6" in gate.stdout + gate.stderr  # no trial of the run finished: nothing passes

        with FaultServer(FaultConfig(rules={"": "VERDICT: PASS"})) as judge:
            resumed = harness("run", str(suite), "--record", "record", "--resume", "r1", *common,
                              model=model.base_url, judge=judge.base_url)  # fmt: skip
            assert resumed.returncode == EXIT_OK, resumed.stderr
        again = {(r.prompt, r.case_id): r for r in read_results(run / RESULTS_FILE)}
        assert len(again) == 6 and all(r.finished for r in again.values())
        assert again[("v1", "apple")].passed is True and again[("v1", "stone")].passed is False
        assert json.loads((run / "manifest.json").read_text())["status"] == "complete"
        passed_gate = harness("gate", str(run), model=model.base_url, judge=down)
        assert passed_gate.returncode == EXIT_OK, passed_gate.stdout + passed_gate.stderr
