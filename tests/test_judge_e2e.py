"""End to end with a real model as judge (SmolLM2 on llama-server: a poor judge, but a real one).

Record through the real CLI, stop the server, replay offline against a dead address and get identical
grades; then change the rubric and see the replay stop with exit code 3 naming the judge.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.store import RESULTS_FILE, read_results
from harness.testing.local_llm import running

SUITE = """\
suite: judge-e2e
models:
  - name: smollm2
    base_url: ${{LOCAL_LLM_URL}}
    api_key_env: null
judges:
  - id: e2e-judge
    name: smollm2
    base_url: ${{LOCAL_LLM_URL}}
    api_key_env: null
    price: {{input: 1.0, output: 2.0}}
params: {{max_tokens: 12}}
prompts:
  v1:
    - {{role: user, content: "{{{{ question }}}}"}}
cases:
  - {{id: france, vars: {{question: "What is the capital of France?", answer: Paris}}, label: pass}}
  - {{id: sky, vars: {{question: "What colour is the sky on a clear day?", answer: Blue}}, label: pass}}
graders:
  - type: judge
    model: e2e-judge
    rubric: "{rubric}"
    reference: "{{{{ answer }}}}"
    structured: json_schema
    max_tokens: 80
    reason_max_chars: 160
"""


def write_suite(folder: Path, rubric: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "suite.yaml"
    path.write_text(SUITE.format(rubric=rubric), encoding="utf-8")
    return path


def harness_run(suite: Path, tmp: Path, record: str, run_id: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LOCAL_LLM_URL": url}
    env.pop("CI", None)
    return subprocess.run(
        [sys.executable, "-m", "harness", "run", str(suite), "--record", record, "--run-id", run_id, "--quiet",
         "--reports", str(tmp / "reports"), "--cassettes", str(tmp / "cassettes")],
        capture_output=True, text=True, env=env, timeout=300,
    )


def graded(tmp: Path, run_id: str) -> list[tuple[Any, ...]]:
    results = read_results(tmp / "reports" / "judge-e2e" / run_id / RESULTS_FILE)
    return sorted((r.case_id, r.output, r.passed, r.judge_usage, r.judge_cost,
                   [(g.passed, g.score, g.reason, g.error, g.details) for g in r.grades]) for r in results)


@pytest.mark.llm
def test_real_judge_records_replays_offline_and_misses_on_a_new_rubric(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "a", "The answer states the reference fact.")
    with running() as server:
        recorded = harness_run(suite, tmp_path, "record", "rec", server.base_url)
    assert recorded.returncode == 0, recorded.stderr
    first = graded(tmp_path, "rec")
    assert [row[0] for row in first] == ["france", "sky"]
    for case_id, output, _, judge_usage, judge_cost, grades in first:
        assert output and judge_usage["prompt_tokens"] > 0 and judge_cost > 0
        (grade,) = grades
        details = grade[4]
        # The real model answered through the grammar-constrained JSON schema: a parsed verdict.
        assert details["votes"][0]["parse"] == "json", (case_id, grade)
        assert grade[0] in (True, False) and details["verdict"] in ("PASS", "FAIL")
    assert (tmp_path / "cassettes" / "judge-e2e" / "e2e-judge.judge.json").is_file()

    dead = "http://127.0.0.1:9/v1"
    replayed = harness_run(suite, tmp_path, "replay", "rep", dead)
    assert replayed.returncode == 0, replayed.stderr
    assert graded(tmp_path, "rep") == first

    changed = write_suite(tmp_path / "b", "The answer states the reference fact, politely.")
    missed = harness_run(changed, tmp_path, "replay", "miss", dead)
    assert missed.returncode == 3, missed.stderr
    assert "replay miss: 2 judge grade(s) have no recorded judge call" in missed.stderr
    assert "judge 'e2e-judge' request is not recorded" in missed.stderr
    assert "Traceback" not in missed.stderr
