"""Replays answered from the cassette without the SDK give exactly what the SDK path gives, or step aside.

Each recorded body is answered both ways: by ``DirectReplay`` and by the SDK through the recording transport
(the path every replay took before). Wherever the direct path answers, the completions are equal; for bodies
of any other shape it returns None and the SDK path answers (with its own words for errors).
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest
from test_cli_subprocess_fixtures import cli_loading

from harness.execute.cassette import Cassette, make_interaction, match_key
from harness.execute.direct_replay import DirectReplay
from harness.execute.provider import CallFailed, call, make_client
from harness.execute.replay import RecordingTransport, RecordMode
from harness.render import SAMPLE_HEADER, Request
from harness.suite.model import ModelSpec

REPO = Path(__file__).resolve().parents[1]
BASE = "http://127.0.0.1:9/v1"

CHAT: dict[str, Any] = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "hello"}}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
}  # fmt: skip
TEXT: dict[str, Any] = {
    "id": "cmpl-1", "object": "text_completion", "created": 1, "model": "m",
    "choices": [{"index": 0, "finish_reason": "length", "text": "once upon", "logprobs": None}],
    "usage": {"prompt_tokens": 2, "completion_tokens": 4, "total_tokens": 6},
}  # fmt: skip


def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node: Any = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is _DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return doc


_DELETE = object()
CALL = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\": 1}"}}
CHAT_VARIANTS: list[Any] = [
    CHAT,
    _set(CHAT, "choices.0.message.content", None),
    _set(CHAT, "choices.0.message.content", 7),
    _set(CHAT, "choices.0.message.content", ["a"]),
    _set(CHAT, "choices.0.message.tool_calls", [CALL]),
    _set(CHAT, "choices.0.message.tool_calls", [CALL, {**CALL, "id": None}]),
    _set(CHAT, "choices.0.message.tool_calls", [{**CALL, "function": None}]),
    _set(CHAT, "choices.0.message.tool_calls", [{**CALL, "function": {"name": None, "arguments": "{}"}}]),
    _set(CHAT, "choices.0.message.tool_calls", [{**CALL, "function": {"name": "f", "arguments": None}}]),
    _set(CHAT, "choices.0.message.tool_calls", [{**CALL, "function": {"name": "f", "arguments": {"a": 1}}}]),
    _set(CHAT, "choices.0.message.tool_calls", {"not": "a list"}),
    _set(CHAT, "choices.0.message.tool_calls", None),
    _set(CHAT, "choices.0.message.function_call", {"name": "legacy", "arguments": "{}"}),
    _set(CHAT, "choices.0.message.function_call", {"name": None, "arguments": None}),
    _set(CHAT, "choices.0.message.function_call", "oops"),
    _set(CHAT, "choices.0.message", None),
    _set(CHAT, "choices.0.message", _DELETE),
    _set(CHAT, "choices.0.finish_reason", None),
    _set(CHAT, "choices.0.finish_reason", 3),
    _set(CHAT, "choices.0.index", "0"),
    _set(CHAT, "choices.0.index", None),
    _set(CHAT, "choices.0.index", True),
    _set(CHAT, "choices", []),
    _set(CHAT, "choices", None),
    _set(CHAT, "choices", _DELETE),
    _set(CHAT, "choices", [CHAT["choices"][0], {**CHAT["choices"][0], "index": 2},
                           {**CHAT["choices"][0], "index": 1, "message": {"content": "b"}}]),
    _set(CHAT, "usage", None),
    _set(CHAT, "usage", _DELETE),
    _set(CHAT, "usage", "lots"),
    _set(CHAT, "usage", {}),
    _set(CHAT, "usage.prompt_tokens", "3"),
    _set(CHAT, "usage.prompt_tokens", 3.0),
    _set(CHAT, "usage.prompt_tokens", True),
    _set(CHAT, "usage.prompt_tokens", -1),
    _set(CHAT, "usage.prompt_tokens", None),
    _set(CHAT, "usage.prompt_tokens_details", {"cached_tokens": 2}),
    _set(CHAT, "usage.prompt_tokens_details", {"cached_tokens": 0}),
    _set(CHAT, "usage.prompt_tokens_details", {"cached_tokens": None}),
    _set(CHAT, "usage.prompt_tokens_details", None),
    _set(CHAT, "usage.prompt_tokens_details", 5),
    _set(CHAT, "usage.completion_tokens_details", {"reasoning_tokens": 9, "accepted_prediction_tokens": 1}),
    _set(CHAT, "usage.completion_tokens_details", {"reasoning_tokens": "9"}),
    {**CHAT, "extra_field": {"anything": [1, 2]}, "system_fingerprint": None},
    {"error": {"message": "overloaded", "type": "server_error"}},
    {"error": "plain"},
    [CHAT],
    "text",
    None,
]
TEXT_VARIANTS: list[Any] = [
    TEXT,
    _set(TEXT, "choices.0.text", None),
    _set(TEXT, "choices.0.text", 12),
    _set(TEXT, "choices", [TEXT["choices"][0], {**TEXT["choices"][0], "index": 1, "text": "two"}]),
    _set(TEXT, "usage", None),
    _set(TEXT, "choices", []),
]


def _model() -> ModelSpec:
    return ModelSpec(id="m", name="m", base_url=BASE, api_key_env="", max_concurrency=4, timeout=5.0)


def _request(api: str, n: int | None = None) -> Request:
    body: dict[str, Any] = {"model": "m", "temperature": 0}
    if api == "chat":
        body["messages"] = [{"role": "user", "content": "hi"}]
    else:
        body["prompt"] = "hi"
    if n is not None:
        body["n"] = n
    return Request(api=api, body=body, sample="0")  # type: ignore[arg-type]


def _record(cassette: Cassette, request: Request, content: bytes, status: int = 200,
            content_type: str = "application/json") -> None:
    body = json.dumps(request.body).encode()
    path = "/v1" + request.path
    cassette.record(make_interaction(
        key=match_key("POST", path, request.sample, body), method="POST", uri=path, sample=request.sample,
        request_body=body, request_headers=[(SAMPLE_HEADER, request.sample)], status=status, reason="OK",
        response_headers=[("content-type", content_type), ("x-harness-latency-ms", "12.5")], content=content,
    ))  # fmt: skip


def _through_sdk(cassette: Cassette, request: Request) -> Any:
    """What the SDK path answers: a completion, or the kind and message of its error."""
    async def go() -> Any:
        transport = RecordingTransport(cassette, RecordMode.replay)
        client = make_client(_model(), "no-key", transport, 4)
        try:
            return await call(client, request, 5.0)
        except CallFailed as exc:
            return ("error", exc.error.kind)
        finally:
            await client.close()

    return asyncio.run(go())


def _both(tmp_path: Path, api: str, document: Any, n: int | None = None, **record: Any) -> tuple[Any, Any]:
    cassette = Cassette(tmp_path / f"c{len(list(tmp_path.iterdir()))}.json")
    request = _request(api, n)
    _record(cassette, request, json.dumps(document).encode(), **record)
    direct = DirectReplay(cassette, _model())
    try:
        fast: Any = direct.answer(request)
    except CallFailed as exc:
        fast = ("error", exc.error.kind)
    return fast, _through_sdk(cassette, request)


@pytest.mark.parametrize("document", CHAT_VARIANTS, ids=range(len(CHAT_VARIANTS)))
def test_chat_bodies_answer_as_the_sdk_does_or_step_aside(tmp_path: Path, document: Any) -> None:
    fast, sdk = _both(tmp_path, "chat", document)
    assert fast is None or fast == sdk


@pytest.mark.parametrize("document", TEXT_VARIANTS, ids=range(len(TEXT_VARIANTS)))
def test_text_bodies_answer_as_the_sdk_does_or_step_aside(tmp_path: Path, document: Any) -> None:
    fast, sdk = _both(tmp_path, "completions", document)
    assert fast is None or fast == sdk


def test_the_plain_shapes_are_answered_directly_with_their_recorded_latency(tmp_path: Path) -> None:
    for api, document in (("chat", CHAT), ("completions", TEXT)):
        fast, sdk = _both(tmp_path, api, document)
        assert fast is not None and fast == sdk
        assert fast.recorded_latency_ms == 12.5
    fast, sdk = _both(tmp_path, "chat", CHAT_VARIANTS[4])  # a tool call
    assert fast is not None and fast.tool_calls[0].name == "lookup" and fast == sdk


def test_a_wrong_number_of_choices_fails_the_same_way(tmp_path: Path) -> None:
    fast, sdk = _both(tmp_path, "chat", CHAT, n=3)
    assert fast == sdk == ("error", "client")


@pytest.mark.parametrize(("status", "content_type"), [(200, "text/plain"), (201, "application/json"),
                                                      (500, "application/json")])
def test_other_statuses_and_types_go_through_the_sdk(tmp_path: Path, status: int, content_type: str) -> None:
    fast, _ = _both(tmp_path, "chat", CHAT, status=status, content_type=content_type)
    assert fast is None


def test_streamed_and_azure_requests_are_left_to_the_sdk(tmp_path: Path) -> None:
    cassette = Cassette(tmp_path / "c.json")
    request = Request(api="chat", body={"model": "m", "messages": [], "stream": True}, sample="0")
    _record(cassette, request, json.dumps(CHAT).encode())
    assert DirectReplay(cassette, _model()).answer(request) is None
    azure = ModelSpec(id="a", name="a", base_url="https://x.openai.azure.com", provider="azure", api_version="1")
    assert DirectReplay(cassette, azure).prefix is None


def test_every_example_recording_is_answered_as_the_sdk_answers_it(tmp_path: Path) -> None:
    answered = 0
    for path in sorted((REPO / "cassettes").rglob("*.json")):
        recorded = Cassette(path)
        for key in sorted(recorded.keys()):
            interaction = recorded.lookup(key)
            assert interaction is not None
            uri = interaction.request.get("uri", "")
            api = "chat" if uri.endswith("/chat/completions") else "completions" if uri.endswith("/completions") \
                else None
            if api is None or interaction.status != 200:
                continue
            try:
                document = json.loads(interaction.content)
            except ValueError:
                continue  # a streamed (SSE) answer: always the SDK's
            fast, sdk = _both(tmp_path, api, document)
            assert fast is None or fast == sdk, path
            answered += fast is not None
    assert answered >= 50  # the examples' plain answers do take the direct path


def test_a_replay_of_plain_answers_never_imports_the_sdk(tmp_path: Path) -> None:
    args = ["run", str(REPO / "suites" / "examples" / "classify.yaml"), "--record", "replay", "--quiet",
            "--reports", str(tmp_path / "reports")]
    _, loaded = cli_loading(args, ["openai"], REPO, {k: v for k, v in os.environ.items() if k != "CI"})
    assert loaded == {"openai": False}



def _results(directory: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (directory / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    for row in rows:
        row.pop("finished_at", None)
    return sorted(rows, key=lambda r: (r["trial_id"], r.get("choice") or 0))


@pytest.mark.parametrize("suite_file", sorted((REPO / "suites" / "examples").glob("*.yaml")), ids=lambda p: p.stem)
def test_example_replays_store_the_same_results_with_and_without_the_direct_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suite_file: Path) -> None:
    from harness.pipeline import RunOptions, run_suite
    from harness.suite import load_suite

    monkeypatch.delenv("CI", raising=False)
    suite = load_suite(suite_file)
    direct = run_suite(suite, RunOptions(reports_root=tmp_path / "direct", record="replay", progress=False))
    monkeypatch.setattr(DirectReplay, "answer", lambda self, request: None)
    sdk = run_suite(suite, RunOptions(reports_root=tmp_path / "sdk", record="replay", progress=False))
    assert direct.execute.replay_misses == sdk.execute.replay_misses == []
    assert _results(direct.directory) == _results(sdk.directory)


@pytest.mark.parametrize("body", [
    {"model": "m", "messages": [{"role": "user", "content": "héllo ✓ \u2028 \"q\" \\ /"}], "temperature": 0.7},
    {"b": 1, "a": [1.5, 1e300, -0.0, 10**30, None, True, {"z": {"y": []}}], "seed": 3},
    {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]},
    {"n": float("nan")},
])
def test_the_direct_key_is_the_transport_key(body: dict[str, Any]) -> None:
    from harness.execute.interaction import json_match_key

    assert json_match_key("POST", "/v1/chat/completions", "2", body) == \
        match_key("POST", "/v1/chat/completions", "2", json.dumps(body).encode("utf-8"))


def test_the_direct_key_steps_aside_for_keys_json_would_rewrite() -> None:
    from harness.execute.interaction import json_match_key

    assert json_match_key("POST", "/p", "0", {"a": {1: "x", "b": 2}}) is None
    assert json_match_key("POST", "/p", "0", {"a": [{2: 1}]}) is None


def test_record_missing_answers_hits_directly_and_records_the_rest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.pipeline import RunOptions, run_suite
    from harness.suite import load_suite
    from harness.testing.fault_server import FaultServer

    monkeypatch.delenv("CI", raising=False)
    answered: list[bool] = []
    original = DirectReplay.answer

    def counting(self: DirectReplay, request: Request) -> Any:
        result = original(self, request)
        answered.append(result is not None)
        return result

    monkeypatch.setattr(DirectReplay, "answer", counting)

    def suite_with(cases: int) -> Path:
        path = tmp_path / "suite.yaml"
        path.write_text(
            "suite: rm\nmodels:\n  - name: fault-server\n    base_url: ${RM_URL}\n    api_key_env: null\n"
            "    price: {input: 0, output: 0}\nprompts:\n  v1:\n    - {role: user, content: '{{ text }}'}\n"
            "cases:\n" + "".join(f"  - {{id: c{i}, vars: {{text: 'item {i}'}}}}\n" for i in range(cases)) +
            "graders:\n  - {type: contains, value: item}\n", encoding="utf-8")
        return path

    with FaultServer() as server:
        monkeypatch.setenv("RM_URL", server.base_url)
        first = run_suite(load_suite(suite_with(3)), RunOptions(reports_root=tmp_path / "r", record="record",
                                                                progress=False))
        assert first.finished == 3 and answered == []  # `record` always calls
        before = server.stats()["requests_total"]
        again = run_suite(load_suite(suite_with(4)), RunOptions(reports_root=tmp_path / "r", record="record-missing",
                                                                progress=False))
        assert again.finished == 4
        assert server.stats()["requests_total"] - before == 1  # only the new case went out
    assert sorted(answered) == [False, True, True, True]  # three hits answered directly, the miss by the SDK
    replay = run_suite(load_suite(suite_with(4)), RunOptions(reports_root=tmp_path / "r", record="replay",
                                                             progress=False))
    assert replay.finished == 4 and answered[-4:] == [True] * 4  # the new recording replays directly too
