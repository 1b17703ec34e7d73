"""Several choices per request (``n``): every choice stored and graded as a sample of its case; pass@k with the
unbiased estimator; majority vote; cost per sample; TTFT in every report format and as a gate metric; the
offline replay reproduces every report byte for byte."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from math import comb
from pathlib import Path

import pytest

from harness.stats.choices import k_values, majority_vote, pass_at_k
from harness.store import TrialError, TrialResult
from harness.testing.fault_server import FaultConfig, FaultServer


def test_pass_at_k_is_the_unbiased_estimator() -> None:
    for n in range(1, 11):
        for c in range(n + 1):
            for k in range(1, n + 1):
                exact = 1 - comb(n - c, k) / comb(n, k)
                assert pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12), (n, c, k)
    assert pass_at_k(200, 1, 1) == pytest.approx(1 / 200)
    assert 0.0 <= pass_at_k(1000, 3, 500) <= 1.0  # no overflow where comb() would be astronomic
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 5)
    assert k_values(1) == [1] and k_values(4) == [1, 2, 4] and k_values(6) == [1, 2, 4, 6]


def _sample(case: str, repeat: int, choice: int, answer: str | None, passed: bool | None,
            error: bool = False) -> TrialResult:
    return TrialResult(trial_id=f"{case}{repeat}~{choice}", case_id=case, prompt="p", model="m", temperature=1.0,
                       repeat=repeat, passed=None if error else passed, answer=answer, choice=choice,
                       error=TrialError("server", "x") if error else None)


def test_majority_vote_counts_each_case_once_with_first_seen_ties() -> None:
    trials = [
        # a: "x" wins 2-1 and passed → right
        _sample("a", 0, 0, "y", False), _sample("a", 0, 1, "x", True), _sample("a", 1, 0, "x", True),
        # b: a tie between "z" (first seen, wrong) and "w" → wrong
        _sample("b", 0, 0, "z", False), _sample("b", 0, 1, "w", True),
        # c: no answers (an errored sample and no grader answer) → not voted
        _sample("c", 0, 0, None, True), _sample("c", 0, 1, None, None, error=True),
    ]
    interval, voted = majority_vote(trials)
    assert voted == 2 and interval is not None and interval.estimate == 0.5
    assert interval.low is not None and interval.high is not None and interval.low < 0.5 < interval.high


def harness(*args: str, cwd: Path, url: str = "http://127.0.0.1:9/v1") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SAMPLES_URL": url}
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)


SUITE = """suite: samples
models:
  - {{name: gpt-4o-mini, id: a, base_url: "${{SAMPLES_URL}}", api_key_env: null}}
  - {{name: gpt-4o-mini, id: b, base_url: "${{SAMPLES_URL}}", api_key_env: null, params: {{n: 2}}}}
temperatures: [0.0]
repeats: 2
params: {{stream: true, n: 4}}
baseline: {{model: a}}
gate: {{metrics: [pass_rate, ttft_p95]}}
prompts:
  v1: [{{role: user, content: "{{{{ q }}}}"}}]
cases:
  - {{id: fr, vars: {{q: "capital of France?"}}, graders: [{{type: exact, value: paris, case_sensitive: false}}]}}
  - {{id: it, vars: {{q: "capital of Italy?"}}, graders: [{{type: exact, value: Rome}}]}}
  - {{id: es, vars: {{q: "capital of Spain?"}}, graders: [{{type: exact, value: Madrid}}]}}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("samples")
    (root / "pyproject.toml").write_text("")
    config = FaultConfig(rules={"France": "Paris", "Italy": "Roma"}, stream_first_token_ms=40)
    with FaultServer(config) as server:
        (root / "suite.yaml").write_text(SUITE.format())
        done = harness("run", "suite.yaml", "--record", "record-missing", "--run-id", "rec", "--quiet", cwd=root,
                       url=server.base_url)
        assert done.returncode == 0, done.stderr
    # Offline: the same suite against nothing (the default URL), from the cassettes.
    done = harness("run", "suite.yaml", "--record", "replay", "--run-id", "rep", "--quiet", cwd=root)
    assert done.returncode == 0, done.stderr
    return root


def test_every_choice_is_stored_and_graded(project: Path) -> None:
    lines = (project / "reports/samples/rec/results.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    # 3 cases × 2 repeats: model a 4 choices, model b 2 (its own n wins over the suite's).
    assert len(records) == 3 * 2 * 4 + 3 * 2 * 2
    by_request: dict[str, list[dict]] = {}
    for r in records:
        by_request.setdefault(r["trial_id"].split("~")[0], []).append(r)
    assert len(by_request) == 12
    for request in by_request.values():
        # Choice 0 is written last: once it is in the file the whole request is.
        assert request[-1]["choice"] == 0 and sorted(r["choice"] for r in request) == list(range(len(request)))
    assert {r["case_id"]: r["passed"] for r in records} == {"fr": True, "it": False, "es": False}
    assert {r["answer"] for r in records if r["case_id"] == "fr"} == {"paris"}  # exact's normalised output


def test_report_json_has_pass_at_k_majority_and_cost_per_sample(project: Path) -> None:
    done = harness("report", "reports/samples/rec", "--format", "json", cwd=project)
    assert done.returncode == 0, done.stderr
    variants = {v["model"]: v for v in json.loads(done.stdout)["variants"]}
    a, b = variants["a"], variants["b"]
    assert a["k_max"] == 8 and b["k_max"] == 4  # samples per case: choices × repeats, clustered by case
    assert a["pass_rate"]["estimate"] == pytest.approx(1 / 3) and a["pass_rate"]["n"] == 3
    choices = a["choices"]
    assert choices["choices_per_request"] == 4 and choices["requests"] == 6
    assert set(choices["pass_at_k"]) == {"1", "2", "4", "8"} and set(b["choices"]["pass_at_k"]) == {"1", "2", "4"}
    assert choices["pass_at_k"]["8"]["estimate"] == pytest.approx(1 / 3)
    assert choices["majority_vote"]["estimate"] == pytest.approx(1 / 3) and choices["voted_cases"] == 3
    assert choices["cost_per_sample"] == pytest.approx(a["cost_total"] / 24)
    assert a["ttft_p50_s"]["estimate"] >= 0.040 and a["ttft_p95_s"]["method"] == "order-statistic"
    assert a["ttft_p95_s"]["n"] == 6  # one time to first token per request, not per choice
    assert a["tokens_per_s"] is not None and a["tokens_per_s"] > 0


@pytest.mark.parametrize("fmt", ["table", "markdown", "html", "json"])
def test_replay_reproduces_every_report_format(project: Path, fmt: str) -> None:
    rec = harness("report", "reports/samples/rec", "--format", fmt, cwd=project)
    rep = harness("report", "reports/samples/rep", "--format", fmt, cwd=project)
    assert rec.returncode == rep.returncode == 0, rec.stderr + rep.stderr
    assert rec.stdout.replace("samples/rec", "samples/RUN") == rep.stdout.replace("samples/rep", "samples/RUN")
    if fmt != "json":
        assert "pass@4" in rec.stdout and "p95 TTFT" in rec.stdout and "majority vote" in rec.stdout


def test_ttft_p95_gates_and_writes_junit(project: Path) -> None:
    done = harness("gate", "reports/samples/rep", "--metric", "ttft_p95", "--junit", "j.xml", cwd=project)
    assert done.returncode in (0, 1), done.stderr
    junit = (project / "j.xml").read_text()
    assert 'name="metric" value="ttft_p95"' in junit and "time to first token" in done.stdout


def test_resume_keeps_a_request_only_with_its_choice_zero(tmp_path: Path) -> None:
    from harness.store import ResultsWriter, prepare_resume, read_results

    path = tmp_path / "results.jsonl"
    whole = [_sample("a", 0, i, "x", True) for i in range(3)]
    whole = [TrialResult(**{**vars(r), "trial_id": "t1" if r.choice == 0 else f"t1~{r.choice}"}) for r in whole]
    cut = [TrialResult(**{**vars(r), "trial_id": f"t2~{r.choice}"}) for r in whole if r.choice]
    with ResultsWriter(path) as writer:
        writer.write_request(whole)
        writer.write_request(cut)  # a kill after choices 2 and 1 of t2, before its choice 0
    assert [r.trial_id for r in read_results(path)][:3] == ["t1~2", "t1~1", "t1"]  # choice 0 last
    done = prepare_resume(path, {"t1", "t2"})
    assert done & {"t1", "t2"} == {"t1"}
    assert sorted(r.trial_id for r in read_results(path)) == ["t1", "t1~1", "t1~2"]  # t2 is redone whole
