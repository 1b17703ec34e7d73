"""Tests for harness.testing.fault_server, driven through the real openai SDK and raw HTTP."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI, OpenAI

from harness.testing.fault_server import (
    Fault,
    FaultConfig,
    FaultServer,
    parse_args,
    remote_reset,
    remote_stats,
    spawn_server,
)


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as srv:
        yield srv


def client(srv: FaultServer, **kwargs: Any) -> OpenAI:
    return OpenAI(base_url=srv.base_url, api_key="test", max_retries=kwargs.pop("max_retries", 0), **kwargs)


def ask(c: OpenAI, text: str, **kwargs: Any) -> Any:
    messages = [{"role": "user", "content": text}]
    return c.chat.completions.create(model="test-model", messages=messages, **kwargs)


def raw(srv: FaultServer, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(srv.url + path, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# -- normal replies ----------------------------------------------------------------------------------------


def test_chat_reply_shape_echo_and_usage(server: FaultServer) -> None:
    messages: list[Any] = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "an answer"},
        {"role": "user", "content": [{"type": "text", "text": "second "},
                                     {"type": "text", "text": "question here"}]},
    ]
    r = client(server).chat.completions.create(model="my-model", messages=messages)
    assert r.object == "chat.completion"
    assert r.id.startswith("chatcmpl-")
    assert isinstance(r.created, int)
    assert r.model == "my-model"
    assert len(r.choices) == 1
    assert r.choices[0].index == 0
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content == "second question here"
    assert r.usage is not None
    # Tokens are whitespace words: 2 + 2 + 2 + 3 in the prompt, 3 in the reply.
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (9, 3, 12)


def test_completions_echo_prompt_and_batches(server: FaultServer) -> None:
    c = client(server)
    r = c.completions.create(model="m", prompt="say this back")
    assert r.object == "text_completion"
    assert [ch.text for ch in r.choices] == ["say this back"]
    assert r.choices[0].finish_reason == "stop"
    batch = c.completions.create(model="m", prompt=["one", "two three"], n=2)
    assert [(ch.index, ch.text) for ch in batch.choices] == [
        (0, "one"), (1, "one"), (2, "two three"), (3, "two three"),
    ]
    assert batch.usage is not None and batch.usage.completion_tokens == 6


def test_rules_map_substrings_to_fixed_replies(server: FaultServer) -> None:
    server.config = FaultConfig(rules={"capital of France": "Paris", "France": "never reached", "2+2": "4"})
    c = client(server)
    assert ask(c, "What is the capital of France?").choices[0].message.content == "Paris"
    assert ask(c, "what is 2+2").choices[0].message.content == "4"
    assert ask(c, "no rule matches").choices[0].message.content == "no rule matches"
    # The config object is read per request, so mutating it in place takes effect too.
    server.config.rules["matches"] = "now it does"
    assert ask(c, "no rule matches").choices[0].message.content == "now it does"


def test_tool_call_mode_defaults_to_requested_tool_and_echo_arguments(server: FaultServer) -> None:
    server.config = FaultConfig(tool_call=True)
    function = {"name": "lookup", "parameters": {"type": "object"}}
    tools: list[Any] = [{"type": "function", "function": function}]
    r = ask(client(server), "find cats", tools=tools)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None and len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "lookup"
    assert json.loads(call.function.arguments) == {"text": "find cats"}


def test_tool_call_mode_with_configured_name_and_arguments(server: FaultServer) -> None:
    arguments = {"city": "Oslo", "days": 3}
    server.config = FaultConfig(tool_call=True, tool_name="get_weather", tool_arguments=arguments)
    call = ask(client(server), "weather?").choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == arguments


def test_n_choices_are_identical_without_vary_by_sample(server: FaultServer) -> None:
    r = ask(client(server), "same", n=3, temperature=1.0, extra_headers={"X-Harness-Sample": "a"})
    assert [ch.index for ch in r.choices] == [0, 1, 2]
    assert {ch.message.content for ch in r.choices} == {"same"}


def test_vary_by_sample_differs_by_sample_header_and_is_reproducible(server: FaultServer) -> None:
    server.config = FaultConfig(vary_by_sample=True)
    c = client(server)

    def text(sample: str, **kwargs: Any) -> str:
        r = ask(c, "repeat me", extra_headers={"X-Harness-Sample": sample}, **kwargs)
        return str(r.choices[0].message.content)

    a, b = text("0", temperature=0.7), text("1", temperature=0.7)
    assert a.startswith("repeat me") and b.startswith("repeat me")
    assert a != b
    assert text("0", temperature=0.7) == a
    # An absent temperature means the API default of 1, which varies too; temperature 0 does not.
    assert text("1") == b
    assert text("0", temperature=0) == text("1", temperature=0) == "repeat me"
    several = ask(c, "repeat me", n=3, temperature=0.5, extra_headers={"X-Harness-Sample": "0"})
    assert len({ch.message.content for ch in several.choices}) == 3


def test_max_tokens_truncates_and_reports_length(server: FaultServer) -> None:
    r = ask(client(server), "one two three four five", max_tokens=2)
    assert r.choices[0].message.content == "one two"
    assert r.choices[0].finish_reason == "length"


def test_streaming_reply(server: FaultServer) -> None:
    chunks = list(ask(client(server), "streamed words", stream=True, stream_options={"include_usage": True}))
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == "streamed words"
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 2


def test_models_and_health(server: FaultServer) -> None:
    server.config = FaultConfig(models=("alpha", "beta"))
    assert [m.id for m in client(server).models.list()] == ["alpha", "beta"]
    assert raw(server, "GET", "/health") == (200, b'{"status":"ok"}')


def test_bad_requests_get_openai_errors(server: FaultServer) -> None:
    status, body = raw(server, "POST", "/v1/chat/completions", b"{not json")
    assert status == 400
    assert json.loads(body)["error"]["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError):
        ask(client(server), "x", n=0)
    status, body = raw(server, "GET", "/nowhere")
    assert status == 404 and "error" in json.loads(body)


# -- faults ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "exc_type", "status", "code"),
    [
        ("429", openai.RateLimitError, 429, "rate_limit_exceeded"),
        ("500", openai.InternalServerError, 500, None),
        ("503", openai.InternalServerError, 503, "service_unavailable"),
        ("400", openai.BadRequestError, 400, "invalid_request"),
        ("401", openai.AuthenticationError, 401, "invalid_api_key"),
        ("404", openai.NotFoundError, 404, "model_not_found"),
    ],
)
def test_error_faults_raise_the_matching_sdk_exception(
    server: FaultServer, fault: str, exc_type: type[openai.APIStatusError], status: int, code: str | None
) -> None:
    server.config = FaultConfig(always_fail={"*": Fault(fault)})
    with pytest.raises(exc_type) as info:
        ask(client(server), "hello")
    assert info.value.status_code == status
    assert info.value.code == code
    assert info.value.response.headers["x-harness-fault"] == fault
    assert server.stats()["faults"] == {fault: 1}


def test_rate_limit_carries_retry_after_headers(server: FaultServer) -> None:
    server.config = FaultConfig(always_fail={"*": "429"}, retry_after_s=2, retry_after_ms=1500)
    with pytest.raises(openai.RateLimitError) as info:
        ask(client(server), "hello")
    assert info.value.response.headers["retry-after"] == "2"
    assert info.value.response.headers["retry-after-ms"] == "1500"
    server.config = FaultConfig(always_fail={"*": "429"}, retry_after_s=None)
    with pytest.raises(openai.RateLimitError) as info:
        ask(client(server), "hello")
    assert "retry-after" not in info.value.response.headers


def test_slow_fault_times_the_client_out(server: FaultServer) -> None:
    # stop() cancels the sleeping handler, so the long slow_s does not hold the test up.
    server.config = FaultConfig(always_fail={"/v1/chat/completions": "slow"}, slow_s=30)
    with pytest.raises(openai.APITimeoutError):
        ask(client(server, timeout=0.3), "hello")


def test_dropped_connection_is_a_connection_error(server: FaultServer) -> None:
    server.config = FaultConfig(always_fail={"*": "drop"})
    with pytest.raises(openai.APIConnectionError) as info:
        ask(client(server), "hello")
    assert type(info.value) is openai.APIConnectionError  # not its APITimeoutError subclass
    stats = server.stats()
    assert stats["faults"] == {"drop": 1}
    assert stats["responses_total"] == 0


def test_malformed_json_fails_to_parse(server: FaultServer) -> None:
    server.config = FaultConfig(always_fail={"*": "malformed"})
    with pytest.raises(json.JSONDecodeError):
        ask(client(server), "hello")


def test_missing_choices_fails_validation(server: FaultServer) -> None:
    server.config = FaultConfig(always_fail={"*": "no_choices"})
    with pytest.raises(openai.APIResponseValidationError):
        ask(client(server, _strict_response_validation=True), "hello")
    assert ask(client(server), "hello").choices is None


def test_always_fail_is_per_path(server: FaultServer) -> None:
    server.config = FaultConfig(always_fail={"/v1/completions": "500"})
    c = client(server)
    with pytest.raises(openai.InternalServerError):
        c.completions.create(model="m", prompt="x")
    assert ask(c, "chat still works").choices[0].message.content == "chat still works"
    assert [m.id for m in c.models.list()] == ["fault-server"]


def test_first_n_attempts_of_each_distinct_request_fail(server: FaultServer) -> None:
    server.config = FaultConfig(fail_first_n=2, fail_first_with="503")
    c = client(server)
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            ask(c, "alpha")
    assert ask(c, "alpha").choices[0].message.content == "alpha"
    assert ask(c, "alpha").choices[0].message.content == "alpha"
    # A different body, or the same body as another sample, is a distinct request with its own count.
    with pytest.raises(openai.InternalServerError):
        ask(c, "beta")
    with pytest.raises(openai.InternalServerError):
        ask(c, "alpha", extra_headers={"X-Harness-Sample": "7"})
    server.reset()
    with pytest.raises(openai.InternalServerError):
        ask(c, "alpha")


def test_sdk_retries_recover_from_first_n_rate_limits(server: FaultServer) -> None:
    # retry-after-ms=1 makes the SDK wait 1 ms instead of its exponential backoff.
    server.config = FaultConfig(fail_first_n=2, fail_first_with="429", retry_after_s=None, retry_after_ms=1)
    r = ask(client(server, max_retries=2), "persist")
    assert r.choices[0].message.content == "persist"
    stats = server.stats()
    assert stats["requests_total"] == 3
    assert stats["faults"] == {"429": 2}
    assert stats["by_status"] == {"200": 1, "429": 2}


def _outcomes(c: OpenAI, count: int) -> list[str]:
    out = []
    for i in range(count):
        try:
            ask(c, f"request {i}")
            out.append("ok")
        except openai.APIStatusError as exc:
            out.append(str(exc.status_code))
    return out


def test_fault_rates_are_deterministic_per_seed_and_attempt(server: FaultServer) -> None:
    server.config = FaultConfig(seed=1, fault_rates={"500": 0.3, "429": 0.2})
    c = client(server)
    first = _outcomes(c, 60)
    assert {"ok", "500", "429"} <= set(first)
    assert server.stats()["faults"] == {k: first.count(k) for k in ("500", "429") if k in first}
    server.reset()
    assert _outcomes(c, 60) == first
    server.config = FaultConfig(seed=2, fault_rates={"500": 0.3, "429": 0.2})
    server.reset()
    assert _outcomes(c, 60) != first
    # Without a reset, a retry is a new attempt with its own draw: a failed request eventually succeeds.
    failed = next(i for i, o in enumerate(_outcomes(c, 60)) if o != "ok")
    for _ in range(30):
        try:
            assert ask(c, f"request {failed}").choices[0].message.content == f"request {failed}"
            break
        except openai.APIStatusError:
            continue
    else:
        pytest.fail("a retried request never succeeded")


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        FaultConfig(fault_rates={"500": 0.7, "429": 0.5})
    with pytest.raises(ValueError):
        FaultConfig(fault_rates={"418": 0.1})
    with pytest.raises(ValueError):
        FaultConfig(always_fail={"*": "explode"})
    assert FaultConfig(fault_rates={"drop": 0.5}).fault_rates == {Fault.DROP: 0.5}


# -- stats, concurrency, protocol --------------------------------------------------------------------------


def test_stats_counters_and_http_endpoints(server: FaultServer) -> None:
    server.config = FaultConfig(fail_first_n=1, fail_first_with="500")
    c = client(server)
    for sample in ("s1", "s2"):
        with pytest.raises(openai.InternalServerError):
            ask(c, "same text", extra_headers={"X-Harness-Sample": sample})
        ask(c, "same text", extra_headers={"X-Harness-Sample": sample})
    ask(c, "same text", extra_headers={"X-Harness-Sample": "s1"})  # attempt 3 of s1's request
    c.models.list()  # /v1/models is not in fault_paths, so fail_first_n leaves it alone
    stats = server.stats()
    assert stats["requests_total"] == 6
    assert stats["responses_total"] == 6
    assert stats["by_path"] == {"/v1/chat/completions": 5, "/v1/models": 1}
    assert stats["by_sample"] == {"s1": 3, "s2": 2}
    assert stats["faults"] == {"500": 2}
    assert stats["by_status"] == {"200": 4, "500": 2}
    assert stats["distinct_requests"] == 3
    assert stats["in_flight"] == 0
    status, body = raw(server, "GET", "/_stats")
    assert status == 200 and json.loads(body) == stats
    assert raw(server, "POST", "/_reset", b"")[0] == 200
    after = server.stats()
    assert (after["requests_total"], after["faults"], after["by_sample"]) == (0, {}, {})


def test_200_concurrent_async_requests_each_get_their_own_echo(server: FaultServer) -> None:
    server.config = FaultConfig(latency_ms=200)

    async def main() -> list[str]:
        async with AsyncOpenAI(base_url=server.base_url, api_key="test", max_retries=0) as ac:
            replies = await asyncio.gather(*(
                ac.chat.completions.create(model="m", messages=[{"role": "user", "content": f"message {i}"}])
                for i in range(200)
            ))
        return [str(r.choices[0].message.content) for r in replies]

    assert asyncio.run(main()) == [f"message {i}" for i in range(200)]
    stats = server.stats()
    assert stats["requests_total"] == 200
    # The latency is an asyncio.sleep, so requests overlap rather than queueing one behind another.
    assert stats["max_in_flight"] > 1


def test_keep_alive_chunked_bodies_and_connection_close(server: FaultServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "chunked"}]}).encode()
    conn.request("POST", "/v1/chat/completions", body=iter([body[:10], body[10:]]),
                 headers={"Content-Type": "application/json"}, encode_chunked=True)
    resp = conn.getresponse()
    assert resp.status == 200
    assert json.loads(resp.read())["choices"][0]["message"]["content"] == "chunked"
    sock = conn.sock
    conn.request("GET", "/health")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.read() == b'{"status":"ok"}'
    assert conn.sock is sock  # the same connection served both requests
    conn.request("GET", "/health", headers={"Connection": "close"})
    resp = conn.getresponse()
    assert resp.getheader("Connection") == "close"
    resp.read()
    conn.close()


def _recv_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_pipelined_requests_and_malformed_request_line(server: FaultServer) -> None:
    bodies = [json.dumps({"model": "m", "messages": [{"role": "user", "content": t}]}).encode() for t in "ab"]
    wire = b"".join(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(b), b)
        for b in bodies
    ) + b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(wire)
        data = _recv_all(sock)
    assert data.count(b"HTTP/1.1 200 OK") == 3
    assert data.index(b'"content": "a"') < data.index(b'"content": "b"') < data.index(b'{"status":"ok"}')

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"NONSENSE\r\n\r\n")
        data = _recv_all(sock)  # returns once the server closes the connection
    assert data.startswith(b"HTTP/1.1 400 ")


def test_http_1_0_closes_by_default(server: FaultServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.0\r\n\r\n")
        data = _recv_all(sock)
    assert b"Connection: close" in data and data.endswith(b'{"status":"ok"}')


def test_stop_is_idempotent_and_restart_requires_a_new_port() -> None:
    srv = FaultServer().start()
    port = srv.port
    with pytest.raises(RuntimeError):
        srv.start()
    srv.stop()
    srv.stop()
    with pytest.raises(RuntimeError):
        _ = srv.base_url
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=5):
        pass


# -- process mode ------------------------------------------------------------------------------------------


def test_cli_flags_round_trip_the_config() -> None:
    config = FaultConfig(
        seed=3, latency_ms=12.5, jitter_ms=2, fault_rates={"429": 0.1, "drop": 0.05},
        fault_paths=("/v1/chat/completions",), fail_first_n=2, fail_first_with="503",
        always_fail={"/v1/models": "404"}, retry_after_s=None, retry_after_ms=250, slow_s=4,
        rules={"a=b": "c d"}, tool_call=True, tool_name="f", tool_arguments={"x": [1, 2]},
        vary_by_sample=True, models=("m1", "m2"),
    )
    assert parse_args([*config.to_cli_args(), "--port", "5"]) == (config, 5)
    assert parse_args([]) == (FaultConfig(), 0)


def test_process_mode_serves_and_reports_stats() -> None:
    config = FaultConfig(rules={"ping": "pong"}, fail_first_n=1, fail_first_with="500")
    proc, base_url = spawn_server(config)
    try:
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        c = OpenAI(base_url=base_url, api_key="test", max_retries=0)
        with pytest.raises(openai.InternalServerError):
            ask(c, "ping?")
        assert ask(c, "ping?").choices[0].message.content == "pong"
        stats = remote_stats(base_url)
        assert (stats["requests_total"], stats["faults"]) == (2, {"500": 1})
        remote_reset(base_url)
        assert remote_stats(base_url)["requests_total"] == 0
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0  # SIGTERM is a clean shutdown, not a crash
