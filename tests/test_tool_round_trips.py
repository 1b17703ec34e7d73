"""Tool round trips and legacy function calling, end to end: suite → recorded steps → grades → offline replay."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.execute.cassette import Cassette, cassette_path
from harness.execute.inventory import inventory
from harness.grade import Output, ToolCall, build_grader
from harness.grade.base import GradeContext
from harness.pipeline import RunOptions, run_suite
from harness.report.render import FORMATS, render_run
from harness.suite import load_suite
from harness.testing.fault_server import FaultConfig, FaultServer

TOOLS_PY = '''
CALLS = []

def get_weather(city, unit="C"):
    CALLS.append(city)
    return {"city": city, "temp": 21, "unit": unit}

def broken(city):
    raise RuntimeError("database down")

def not_json(city):
    return {"at": object()}
'''


def suite_text(base_url: str, *, extra: str = "", max_turns: int = 3, tools_py: str = "get_weather") -> str:
    return f"""
suite: trips
models:
  - {{name: m, base_url: "{base_url}", api_key_env: null}}
max_tool_turns: {max_turns}
tool_functions: {{get_weather: "tools.py:{tools_py}"}}
prompts:
  tools:
    messages: [{{role: user, content: "Weather in {{{{ city }}}}?"}}]
    tools:
      - {{type: function, function: {{name: get_weather, parameters: {{type: object}}}}}}
      - {{type: function, function: {{name: get_time, parameters: {{type: object}}}}}}
  legacy:
    messages: [{{role: user, content: "Weather in {{{{ city }}}}?"}}]
    functions:
      - {{name: get_weather, parameters: {{type: object}}}}
      - {{name: get_time, parameters: {{type: object}}}}
{extra}
cases:
  - id: paris
    vars: {{city: Paris}}
    tool_results: {{get_time: "12:00"}}
    graders:
      - {{type: tool_call, name: get_weather, arguments: {{city: Paris}}, step: 1}}
      - {{type: contains, value: "21"}}
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "tools.py").write_text(TOOLS_PY)
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return path


def records(path: Path, reports: Path, record: str) -> dict[str, dict[str, Any]]:
    outcome = run_suite(load_suite(path), RunOptions(reports_root=reports, record=record, progress=False))
    rows = [json.loads(line) for line in outcome.results_path.read_text().splitlines()]
    return {r["prompt"]: {**r, "directory": outcome.directory} for r in rows}


def assert_same_reports(first: Path, second: Path) -> str:
    """Every report format of a replay is byte-identical to the recording run's; returns the HTML."""
    for fmt in FORMATS:
        assert render_run(first, fmt) == render_run(second, fmt), fmt
    return render_run(first, "html")


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in ("finished_at", "directory")}


def test_round_trip_with_a_python_tool_records_every_step_and_replays_offline(tmp_path: Path) -> None:
    config = FaultConfig(tool_call=True, tool_arguments={"city": "Paris"})
    with FaultServer(config) as server:
        path = write(tmp_path, suite_text(server.base_url))
        recorded = records(path, tmp_path / "r1", "record")
        calls = server.stats()["by_path"]["/v1/chat/completions"]
    assert calls == 4  # two prompts, each: the tool call, then the final answer
    for prompt, record in recorded.items():
        assert record["passed"] is True, (prompt, record["grades"])
        assert "21" in record["output"] and record["tool_calls"] == []
        roles = [m["role"] for m in record["transcript"]]
        assert roles == ["assistant", "function" if prompt == "legacy" else "tool", "assistant"]
        assert json.loads(record["transcript"][1]["content"]) == {"city": "Paris", "temp": 21, "unit": "C"}
        # Tokens of both steps are counted.
        assert record["usage"]["prompt_tokens"] > 3
    legacy_call = recorded["legacy"]["transcript"][0]
    assert legacy_call["function_call"]["name"] == "get_weather" and "tool_calls" not in legacy_call
    tool_message = recorded["tools"]["transcript"][1]
    assert tool_message["tool_call_id"] == recorded["tools"]["transcript"][0]["tool_calls"][0]["id"]
    cassette = Cassette(cassette_path(tmp_path / "cassettes", "trips", "m"))
    assert len(cassette.keys()) == 4  # every step has its own match key

    # The server is gone: the replay walks the same steps from the cassette and grades identically.
    replayed = records(path, tmp_path / "r2", "replay")
    assert {p: comparable(r) for p, r in replayed.items()} == {p: comparable(r) for p, r in recorded.items()}
    # `harness cassettes` walks the round trips through the cassette: every step needed, none unused.
    (item,) = inventory(load_suite(path), tmp_path / "cassettes")
    assert (item.expected, len(item.missing), item.unused) == (4, 0, [])
    html = assert_same_reports(recorded["tools"]["directory"], replayed["tools"]["directory"])
    assert "tool round trip · 3 messages" in html and "function result · get_weather" in html
    assert "tool result · get_weather" in html  # a tool result is labelled with its call's function
    assert "call get_weather({&#34;city&#34;: &#34;Paris&#34;})" in html


def test_static_results_per_case_and_a_sequence_of_calls(tmp_path: Path) -> None:
    # The server calls get_weather, then get_time (the request's functions in turn), then answers.
    config = FaultConfig(tool_call=True, tool_arguments={"city": "Paris"}, tool_turns=2)
    extra = """
graders:
  - {type: tool_call, sequence: [get_weather, get_time], allow_other_calls: false}
  - {type: tool_call, name: get_time, call: last}
  - {type: tool_call, name: get_weather, step: 2}
"""
    with FaultServer(config) as server:
        path = write(tmp_path, suite_text(server.base_url, extra=extra))
        recorded = records(path, tmp_path / "r", "record")
    record = recorded["tools"]
    # Suite graders, then the case's (whose `contains: 21` fails: the last result is the static "12:00").
    assert [g["passed"] for g in record["grades"]] == [True, True, False, True, False]
    assert "no call to 'get_weather' in turn 2" in record["grades"][2]["reason"]
    assert record["output"] == "Tool result: 12:00"  # the case's static result, as the last one
    assert record["transcript"][3] == {"role": "tool", "tool_call_id": record["transcript"][2]["tool_calls"][0]["id"],
                                       "content": "12:00"}


def test_exceeding_max_tool_turns_is_a_graded_failure_with_a_clear_reason(tmp_path: Path) -> None:
    config = FaultConfig(tool_call=True, tool_arguments={"city": "Paris"}, tool_turns=10)
    with FaultServer(config) as server:
        path = write(tmp_path, suite_text(server.base_url, max_turns=2))
        recorded = records(path, tmp_path / "r", "live")
        calls = server.stats()["by_path"]["/v1/chat/completions"]
    assert calls == 2 * 3  # the first call and two rounds of results, per prompt
    for record in recorded.values():
        loop = record["grades"][-1]
        assert loop["grader"] == "tool_loop" and loop["passed"] is False
        assert "max_tool_turns=2" in loop["reason"]
        assert record["passed"] is False and record["error"] is None


def test_a_tool_without_a_result_is_undecided_and_a_crashing_tool_is_the_trials_error(tmp_path: Path) -> None:
    config = FaultConfig(tool_call=True, tool_arguments={"city": "Paris"}, tool_name="get_time")
    with FaultServer(config) as server:
        text = suite_text(server.base_url).replace('tool_results: {get_time: "12:00"}', "tool_results: {}")
        recorded = records(write(tmp_path, text), tmp_path / "r", "live")
    loop = recorded["tools"]["grades"][-1]
    assert loop["grader"] == "tool_loop" and loop["passed"] is None and "no result for it" in loop["error"]
    # Another grader failed outright (no "21" in the answer), which decides the trial despite the undecided one.
    assert recorded["tools"]["grades"][1]["passed"] is False and recorded["tools"]["passed"] is False

    config = FaultConfig(tool_call=True, tool_arguments={"city": "Paris"})
    with FaultServer(config) as server:
        recorded = records(write(tmp_path, suite_text(server.base_url, tools_py="broken")), tmp_path / "r2", "live")
    error = recorded["tools"]["error"]
    assert error["kind"] == "tool" and "database down" in error["message"]

    with FaultServer(config) as server:
        recorded = records(write(tmp_path, suite_text(server.base_url, tools_py="not_json")), tmp_path / "r3", "live")
    error = recorded["tools"]["error"]
    assert error["kind"] == "tool" and "returned a dict that is not JSON" in error["message"]


def test_bad_arguments_reach_the_model_as_an_error_result(tmp_path: Path) -> None:
    config = FaultConfig(tool_call=True, tool_arguments={"town": "Paris"})
    with FaultServer(config) as server:
        recorded = records(write(tmp_path, suite_text(server.base_url)), tmp_path / "r", "live")
    result = json.loads(recorded["tools"]["transcript"][1]["content"])
    assert "bad arguments for get_weather" in result["error"]


def harness(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize(("change", "where", "message"), [
    (("max_tool_turns: 3", "max_tool_turns: 0"), "suite.yaml:5: max_tool_turns", "minimum"),
    (('tool_results: {get_time: "12:00"}', "tool_results: {get_tme: 1}"), "cases[0].tool_results.get_tme",
     "no prompt declares"),
    (('tool_functions: {get_weather: "tools.py:get_weather"}', 'tool_functions: {lookup: "tools.py:get_weather"}'),
     "suite.yaml:6: tool_functions.lookup", "no prompt declares"),
    (('tool_functions: {get_weather: "tools.py:get_weather"}', 'tool_functions: {get_weather: "../x.py:f"}'),
     "suite.yaml:6: tool_functions.get_weather", "'..' would leave the suite folder"),
    (('tool_functions: {get_weather: "tools.py:get_weather"}', 'tool_functions: {get_weather: "tools.py:nope"}'),
     "tool_functions.get_weather", "has no function 'nope'"),
    (("max_tool_turns: 3", "max_tool_turns: 3\nparams: {n: 2}"), "suite.yaml:6: params.n", "use repeats instead"),
    (('tool_results: {get_time: "12:00"}', "tool_results: {get_time: .nan}"), "cases[0].tool_results.get_time",
     "finite"),
])
def test_validate_rejects_misuse_with_file_line_and_field(tmp_path: Path, change: tuple[str, str], where: str,
                                                         message: str) -> None:
    text = suite_text("http://127.0.0.1:9/v1")
    assert change[0] in text
    write(tmp_path, text.replace(*change))
    done = harness("validate", "suite.yaml", cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert where in done.stderr and message in done.stderr, done.stderr


def grade(options: dict[str, Any], steps: list[list[ToolCall]], text: str = "done") -> Any:
    output = Output(text=text, tool_calls=tuple(steps[-1]), steps=tuple(tuple(s) for s in steps))
    return build_grader("tool_call", options).grade(output, GradeContext(case_id="c", vars={}))


def call(name: str, **arguments: Any) -> ToolCall:
    return ToolCall(name=name, arguments=json.dumps(arguments))


STEPS = [[call("search", q="x")], [call("fetch", id=1), call("fetch", id=2)], []]


@pytest.mark.parametrize(("options", "passed"), [
    ({"name": "fetch"}, True),  # any step
    ({"name": "fetch", "step": 1}, False),
    ({"name": "fetch", "step": 2, "arguments": {"id": 2}}, True),
    ({"name": "search", "call": "first"}, True),
    ({"name": "search", "call": "last"}, False),
    ({"name": "fetch", "call": "last", "arguments": {"id": 2}}, True),
    ({"name": "fetch", "step": 3}, False),  # the final answer called nothing
    ({"name": "fetch", "step": 4}, False),
    ({"sequence": ["search", "fetch"]}, True),
    ({"sequence": ["search", {"name": "fetch", "arguments": {"id": 2}}]}, True),
    ({"sequence": ["fetch", "search"]}, False),
    ({"sequence": ["search", "fetch"], "allow_other_calls": False}, False),
    ({"sequence": ["search", "fetch", "fetch"], "allow_other_calls": False}, True),
])
def test_tool_call_checks_any_step_first_last_or_a_sequence(options: dict[str, Any], passed: bool) -> None:
    result = grade(options, STEPS)
    assert result.passed is passed, result.reason


@pytest.mark.parametrize("options", [
    {"name": "a", "sequence": ["a"]}, {"sequence": []}, {"sequence": [{"nme": "a"}]}, {"name": "a", "step": 0},
    {"name": "a", "call": "middle"}, {"sequence": ["a"], "count": 2},
])
def test_tool_call_refuses_bad_step_options(options: dict[str, Any]) -> None:
    from harness.grade import GraderConfigError

    with pytest.raises(GraderConfigError):
        build_grader("tool_call", options)


def test_a_streamed_round_trip_records_and_replays_every_step(tmp_path: Path) -> None:
    config = FaultConfig(tool_call=True, tool_arguments={"city": "Paris"})
    with FaultServer(config) as server:
        path = write(tmp_path, suite_text(server.base_url, extra="params: {stream: true}"))
        recorded = records(path, tmp_path / "r1", "record")
    replayed = records(path, tmp_path / "r2", "replay")
    assert {p: comparable(r) for p, r in replayed.items()} == {p: comparable(r) for p, r in recorded.items()}
    for record in recorded.values():
        assert record["passed"] is True and record["request"]["stream"] is True
        assert record["ttft_ms"] is not None  # the first step's first token
        assert [m["role"] for m in record["transcript"]][-1] == "assistant"


def test_a_run_killed_mid_round_trips_resumes_to_exactly_the_plan_and_then_replays(tmp_path: Path) -> None:
    import signal
    import time

    from test_cli_subprocess_fixtures import harness_command

    cases = "\n".join(f"  - {{id: c{i:02d}, vars: {{city: Paris}}, graders: [{{type: contains, value: '21'}}]}}"
                      for i in range(20))
    config = FaultConfig(tool_call=True, tool_arguments={"city": "Paris"}, latency_ms=20)
    with FaultServer(config) as server:
        text = suite_text(server.base_url).split("cases:")[0] + "cases:\n" + cases + "\n"
        path = write(tmp_path, text.replace("max_tool_turns: 3", "max_tool_turns: 3\nrepeats: 1"))
        args = ["run", str(path), "--record", "record-missing", "--reports", str(tmp_path / "r"), "--quiet"]
        proc = subprocess.Popen([*harness_command(), *args, "--run-id", "killed"], cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        results = tmp_path / "r" / "trips" / "killed" / "results.jsonl"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if results.exists() and results.read_bytes().count(b"\n") >= 10:
                proc.send_signal(signal.SIGKILL)  # mid-run: other trials are between their steps
                break
            time.sleep(0.005)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
        done = subprocess.run([*harness_command(), *args, "--resume", "killed"], cwd=tmp_path, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert sorted(r["trial_id"] for r in rows) == sorted({r["trial_id"] for r in rows})  # once each
    assert len(rows) == 40 and all(r["passed"] is True and len(r["transcript"]) == 3 for r in rows)
    # Every step of every trial was recorded (by the killed run or the resume): a new run replays offline.
    replayed = subprocess.run([*harness_command(), "run", str(path), "--record", "replay", "--reports",
                               str(tmp_path / "r2"), "--quiet"], cwd=tmp_path, capture_output=True, text=True,
                              timeout=600)
    assert replayed.returncode == 0, replayed.stderr


def test_python_graders_see_every_steps_calls() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "checks.py").write_text(
            "def check(output, context):\n"
            "    names = [[c['name'] for c in calls] for calls in context['steps']]\n"
            "    return names == [['search'], ['fetch', 'fetch'], []]\n")
        grader = build_grader("python", {"function": "checks.py:check", "suite_dir": folder})
        output = Output(text="done", steps=tuple(tuple(s) for s in STEPS))
        assert grader.grade(output, GradeContext(case_id="c", vars={})).passed is True
