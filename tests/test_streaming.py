"""Streaming (``stream: true``) end to end: the fault server's paced SSE → the SDK → the recording transport
→ results; a replay reproduces text, TTFT and latency; broken streams are retried, never graded or recorded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.execute.streaming import first_token_offset, stream_complete
from harness.pipeline import RunOptions, run_suite
from harness.suite import load_suite
from harness.testing.fault_server import FaultConfig, FaultServer

FIRST_TOKEN_MS = 120.0


def suite_text(url: str, params: str = "{stream: true, n: 3}", extra: str = "") -> str:
    return f"""
suite: streamed
models:
  - {{name: m, base_url: "{url}", api_key_env: null, price: {{input: 1.0, cached_input: 0.5, output: 2.0}}}}
temperatures: [0.7]
params: {params}
retry: {{max_attempts: 3, base_delay: 0.01, max_delay: 0.02}}
prompts:
  v1: [{{role: user, content: "say {{{{ word }}}} twice please"}}]
cases:
  - {{id: a, vars: {{word: alpha}}, graders: [{{type: contains, value: alpha}}]}}
  - {{id: b, vars: {{word: beta}}, graders: [{{type: contains, value: gamma}}]}}
{extra}"""


def run(tmp_path: Path, text: str, record: str, run_id: str) -> tuple[list[dict[str, Any]], Any]:
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    outcome = run_suite(load_suite(path), RunOptions(reports_root=tmp_path / "r", cassettes_root=tmp_path / "c",
                                                     record=record, run_id=run_id, progress=False))
    records = [json.loads(line) for line in outcome.results_path.read_text().splitlines()]
    return sorted(records, key=lambda r: r["trial_id"]), outcome


def test_stream_with_choices_records_ttft_and_replays_identically(tmp_path: Path) -> None:
    config = FaultConfig(vary_by_sample=True, stream_first_token_ms=FIRST_TOKEN_MS, cached_tokens=2,
                         reasoning_tokens=1)
    with FaultServer(config) as server:
        recorded, _ = run(tmp_path, suite_text(server.base_url), "record-missing", "rec")
        requests = server.stats()["requests_total"]
    assert requests == 2  # one streamed request per case, three choices each
    assert len(recorded) == 6
    heads = [r for r in recorded if r["choice"] == 0]
    assert len(heads) == 2
    for head in heads:
        assert head["request"]["stream"] is True
        assert head["request"]["stream_options"] == {"include_usage": True}
        # The server waits before its first token: the recorded TTFT includes that wait, and precedes the end.
        assert FIRST_TOKEN_MS <= head["ttft_ms"] <= head["latency_ms"]
        assert head["usage"]["cached_tokens"] == 2 and head["usage"]["reasoning_tokens"] == 3
    for r in recorded:
        assert r["finish_reason"] == "stop"
        assert r["output"].startswith("say ") and " ~" in r["output"]  # assembled from word deltas
        if r["choice"]:
            assert r["latency_ms"] is None and r["ttft_ms"] is None and r["usage"] == {}
    outputs = {r["output"] for r in recorded}
    assert len(outputs) == 6  # every choice is its own sample
    # Cost is the request's, shared by its choices; cached prompt tokens at the cached rate.
    head = heads[0]
    usage = head["usage"]
    expected = ((usage["prompt_tokens"] - 2) * 1.0 + 2 * 0.5 + usage["completion_tokens"] * 2.0) / 1e6
    shares = [r["cost"] for r in recorded if r["trial_id"].split("~")[0] == head["trial_id"]]
    assert len(shares) == 3 and abs(sum(shares) - expected) < 1e-15
    by_case = {r["case_id"]: r["passed"] for r in recorded}
    assert by_case == {"a": True, "b": False}

    # Offline: the server is gone, the replay gives the same records (timings included).
    replayed, outcome = run(tmp_path, suite_text("http://127.0.0.1:9/v1"), "replay", "rep")
    assert outcome.execute.replay_misses == []
    keep = ("trial_id", "output", "ttft_ms", "latency_ms", "usage", "cost", "passed", "choice")
    assert [{k: r[k] for k in keep} for r in replayed] == [{k: r[k] for k in keep} for r in recorded]


def test_broken_stream_is_retried_and_never_recorded(tmp_path: Path) -> None:
    config = FaultConfig(fail_first_n=1, fail_first_with="stream_break")
    with FaultServer(config) as server:
        records, _ = run(tmp_path, suite_text(server.base_url, "{stream: true}"), "record-missing", "r1")
        assert server.stats()["faults"] == {"stream_break": 2}
    assert [r["attempts"] for r in records] == [2, 2]
    assert all(r["error"] is None and r["passed"] is not None for r in records)
    cassette = next((tmp_path / "c").rglob("*.json")).read_text()
    assert cassette.count('"x-harness-ttft-ms"') == 2  # only the complete streams


def test_stream_that_always_breaks_is_an_error_not_a_grade(tmp_path: Path) -> None:
    config = FaultConfig(always_fail={"*": "stream_break"})
    with FaultServer(config) as server:
        records, outcome = run(tmp_path, suite_text(server.base_url, "{stream: true}"), "record-missing", "r1")
    assert len(records) == 2
    for r in records:
        assert r["error"]["kind"] == "stream" and "broke" in r["error"]["message"]
        assert r["passed"] is None and r["grades"] == [] and r["output"] is None and r["attempts"] == 3
    assert not list((tmp_path / "c").rglob("*.json")) or "x-harness-ttft" not in \
        next((tmp_path / "c").rglob("*.json")).read_text()
    assert outcome.manifest.trials_done == 0  # a resume redoes them


def test_live_stream_without_usage_has_unknown_cost_and_tool_call_fragments(tmp_path: Path) -> None:
    config = FaultConfig(tool_call=True, tool_arguments={"city": "Paris, France", "days": [1, 2, 3]})
    params = "{stream: true, n: 2, stream_options: {include_usage: false}}"
    with FaultServer(config) as server:
        records, _ = run(tmp_path, suite_text(server.base_url, params), "live", "r1")
    assert len(records) == 4
    for r in records:
        assert r["usage"] == {} and r["cost"] is None  # no usage arrived: unknown, never zero
        (call,) = r["tool_calls"]
        # The arguments arrive in 8-character fragments and are joined back exactly.
        assert json.loads(call["arguments"]) == {"city": "Paris, France", "days": [1, 2, 3]}
        assert call["id"].startswith("call_") and r["finish_reason"] == "tool_calls"
    assert len({r["tool_calls"][0]["id"] for r in records}) == 4
    heads = [r for r in records if r["choice"] == 0]
    assert all(r["ttft_ms"] is not None and r["ttft_ms"] <= r["latency_ms"] for r in heads)


def test_sse_parsing_helpers() -> None:
    role = b'data: {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}\n\n'
    token = b'data: {"choices": [{"index": 0, "delta": {"content": "Hi"}}]}\r\n\r\n'
    finish = b'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\n\n'
    assert first_token_offset(role + token) == len(role + token)
    assert first_token_offset(role) is None and first_token_offset(b"") is None
    assert not stream_complete(role + token)  # cut short: no finish, no [DONE]
    assert stream_complete(role + token + finish)  # a server that omits [DONE]
    assert stream_complete(role + b"data: [DONE]\n\n")
    assert not stream_complete(b"data: {not json\n\n")
