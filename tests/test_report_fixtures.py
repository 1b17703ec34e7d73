"""Shared builders for the report tests (imported by the other test_report*/test_cli_report* files), and the
tests of finding a run folder from what a user types."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.pipeline import RunOptions, run_suite
from harness.report.locate import locate_run, output_format
from harness.store import RESULTS_FILE, Manifest, ResultsWriter, TrialError, TrialResult
from harness.suite import load_suite
from harness.testing.fault_server import FaultConfig, FaultServer, _sample_suffix

URL_VARIABLE = "REPORT_TEST_LLM_URL"
# The suffix the fault server appends to repeat 0's answers at temperature > 0: a grader looking for it
# passes repeat 0 and fails repeat 1, which makes the "dice" case flaky at T=0.7 only.
FLAKY_MARK = _sample_suffix("r0", 0).strip()
SCRIPT_OUTPUT = "<script>alert('owned')</script> material"

TINY_SUITE = f"""\
suite: tiny
models:
  - name: fault-server
    base_url: ${{{URL_VARIABLE}:-http://127.0.0.1:9/v1}}
    api_key_env: null
    price: {{input: 1.0, output: 2.0}}
    max_concurrency: 4
temperatures: [0.0, 0.7]
repeats: 2
prompts:
  v1:
    - {{role: user, content: "{{{{ item }}}}"}}
  v2:
    - {{role: system, content: "Name the category of the item in one word."}}
    - {{role: user, content: "item: {{{{ item }}}}"}}
baseline: {{prompt: v1}}
cases:
  - {{id: apple, vars: {{item: apple}}, graders: [{{type: contains, value: fruit}}]}}
  - {{id: banana, vars: {{item: banana}}, graders: [{{type: exact, value: fruit}}]}}
  - {{id: carrot, vars: {{item: carrot}}, graders: [{{type: contains, value: vegetable}}]}}
  - {{id: potato, vars: {{item: potato}}, graders: [{{type: contains, value: vegetable}}]}}
  - {{id: stone, vars: {{item: stone}}, graders: [{{type: contains, value: rock}}]}}
  - {{id: glass, vars: {{item: glass}}, graders: [{{type: contains, value: material}}]}}
  - {{id: dice, vars: {{item: dice}}, graders: [{{type: contains, value: "{FLAKY_MARK}"}}]}}
"""

# First match wins: "item: stone" (prompt v2) answers right, plain "stone" (v1) does not.
RULES = {
    "item: stone": "rock",
    "stone": "pebble",
    "glass": SCRIPT_OUTPUT,
    "apple": "fruit",
    "banana": "fruit",
    "carrot": "vegetable",
    "potato": "fruit",
}


@contextlib.contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@dataclass(frozen=True)
class TinyProject:
    suite_path: Path
    reports: Path
    cassettes: Path

    def run(self, run_id: str, record: str = "replay") -> Path:
        """Run the suite (replays go to a dead address: only the cassettes can answer)."""
        suite = load_suite(self.suite_path)
        options = RunOptions(reports_root=self.reports, cassettes_root=self.cassettes, run_id=run_id,
                             record=record, progress=False)  # fmt: skip
        outcome = run_suite(suite, options)
        assert outcome.manifest.status == "complete", outcome.manifest.status
        return outcome.directory


def tiny_project(root: Path) -> TinyProject:
    """The tiny suite recorded against the fault server, ready to replay offline."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'tiny'\n", encoding="utf-8")
    suite_path = root / "tiny.yaml"
    suite_path.write_text(TINY_SUITE, encoding="utf-8")
    project = TinyProject(suite_path, root / "reports", root / "cassettes")
    with FaultServer(FaultConfig(rules=dict(RULES), vary_by_sample=True)) as server, _env(URL_VARIABLE,
                                                                                          server.base_url):
        project.run("recorded", record="record")
    return project


def replay(project: TinyProject, run_id: str) -> Path:
    with _env(URL_VARIABLE, dead_url()):
        return project.run(run_id)


def trial(
    case: str,
    passed: bool | None,
    *,
    prompt: str = "v1",
    model: str = "m",
    temperature: float = 0.0,
    repeat: int = 0,
    score: float | None = None,
    error: bool = False,
    cost: float | None = 0.001,
    latency_ms: float | None = 400.0,
    output: str | None = "answer",
) -> TrialResult:
    return TrialResult(
        trial_id=f"{model}/{prompt}/{temperature}/{case}/{repeat}",
        case_id=case, prompt=prompt, model=model, temperature=temperature, repeat=repeat,
        request={"model": model, "messages": [{"role": "user", "content": f"question {case}"}]},
        output=None if error else output,
        passed=None if error else passed,
        score=(None if error else (float(passed) if score is None and passed is not None else score)),
        usage={"prompt_tokens": 100, "completion_tokens": 20}, cost=cost, latency_ms=latency_ms,
        error=TrialError("timeout", "timed out after 30 s") if error else None,
    )  # fmt: skip


def write_run(
    root: Path,
    results: Sequence[TrialResult],
    *,
    suite: str = "synthetic",
    run_id: str = "run-1",
    baseline: dict[str, object] | None = None,
    margin: float = 0.05,
    metrics: Sequence[str] = ("pass_rate",),
    suite_hash: str = "0123456789abcdef",
) -> Path:
    """A run folder as the pipeline writes it, from hand-made results."""
    directory = root / suite / run_id
    models = list(dict.fromkeys(r.model for r in results))
    prompts = list(dict.fromkeys(r.prompt for r in results))
    temperatures = list(dict.fromkeys(float(r.temperature) for r in results))
    Manifest(
        suite=suite, run_id=run_id, suite_file=f"{suite}.yaml", suite_hash=suite_hash, harness_version="test",
        record_mode="replay", models=models, prompts=prompts, temperatures=temperatures,
        repeats=max((r.repeat for r in results), default=0) + 1, trials_planned=len(results), started_at=1.0,
        finished_at=2.0, status="complete", trials_done=len(results),
        settings={"baseline": baseline or {"model": None, "prompt": None, "temperature": None},
                  "gate": {"metrics": list(metrics), "margin": margin, "tolerance": 0.0, "mode": "default"}},
    ).write(directory)  # fmt: skip
    with ResultsWriter(directory / RESULTS_FILE) as writer:
        for result in results:
            writer.write(result)
    return directory


def binary_variant(passes: Sequence[bool], prompt: str, **kwargs: object) -> list[TrialResult]:
    return [trial(f"c{i:02d}", p, prompt=prompt, **kwargs) for i, p in enumerate(passes)]  # type: ignore[arg-type]


# -- locating a run ------------------------------------------------------------------------------------


def test_locate_run_accepts_folder_file_suite_folder_and_run_id(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    first = write_run(reports, binary_variant([True, False], "v1"), run_id="old")
    second = write_run(reports, binary_variant([True, True], "v1"), run_id="new")
    manifest = Manifest.read(second)
    manifest.started_at = 5.0
    manifest.write(second)
    assert locate_run(first, reports) == first
    assert locate_run(first / RESULTS_FILE, reports) == first
    assert locate_run(reports / "synthetic", reports) == second  # the latest run of a suite folder
    assert locate_run("old", reports) == first
    assert locate_run("synthetic/old", reports) == first
    with pytest.raises(HarnessError, match="no run 'nope'"):
        locate_run("nope", reports)


def test_output_format_comes_from_flag_or_suffix() -> None:
    assert output_format(Path("r.md"), ()) == "markdown"
    assert output_format(Path("r.HTML"), ()) == "html"
    assert output_format(Path("r.out"), ("json",)) == "json"
    with pytest.raises(HarnessError, match="cannot tell the format"):
        output_format(Path("r.out"), ())
    with pytest.raises(HarnessError, match="one format"):
        output_format(Path("r.md"), ("json", "html"))
