"""Record/replay through the real openai SDK with per-client RecordingTransports.

Upstreams: the project's fault server (echoes the last user message; faults on demand) and, for what it
does not do (gzip, cookies, leaky response headers, byte-fixed bodies), a small stub server below.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import random
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
import vcr.serialize
from openai import AsyncOpenAI
from vcr.request import Request as VcrRequest
from vcr.serializers import jsonserializer

from harness.errors import EXIT_REPLAY_MISS, ReplayMissError, StorageError
from harness.execute import cassette as cassette_module
from harness.execute.replay import (
    Cassette,
    CassetteError,
    RecordingTransport,
    RecordMode,
    ReplayMiss,
    cassette_path,
    close_cassette,
    match_key,
    open_cassette,
    parse_mode,
    slugify,
)
from harness.testing.fault_server import Fault, FaultConfig, FaultServer

CHAT_PATH = "/v1/chat/completions"


# -- helpers -----------------------------------------------------------------------------------------------


def dead_base_url() -> str:
    """A 127.0.0.1 URL where nothing listens (bound, then closed without listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


class CountingTransport(httpx2.AsyncBaseTransport):
    """The real network transport, counting how often it is asked to send."""

    def __init__(self) -> None:
        self.calls = 0
        self._real = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.calls += 1
        return await self._real.handle_async_request(request)

    async def aclose(self) -> None:
        await self._real.aclose()


def make_client(
    base_url: str,
    cassette: Cassette | None,
    mode: RecordMode | str,
    *,
    api_key: str = "sk-test",
    default_headers: dict[str, str] | None = None,
) -> tuple[AsyncOpenAI, RecordingTransport, CountingTransport]:
    inner = CountingTransport()
    transport = RecordingTransport(cassette, mode, inner=inner)
    client = AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, default_headers=default_headers,
                         http_client=httpx2.AsyncClient(transport=transport, timeout=30))
    return client, transport, inner


async def ask(client: AsyncOpenAI, text: str, sample: str = "0", **params: Any) -> Any:
    return await client.chat.completions.create(
        model=params.pop("model", "m"), messages=[{"role": "user", "content": text}],
        extra_headers={"X-Harness-Sample": sample}, **params,
    )


async def ask_all(client: AsyncOpenAI, prompts: list[str], concurrency: int) -> dict[str, str]:
    """Ask every prompt, at most ``concurrency`` at a time, all with one sample key: only bodies differ."""
    gate = asyncio.Semaphore(concurrency)

    async def one(prompt: str) -> tuple[str, str]:
        async with gate:
            reply = await ask(client, prompt, sample="0")
            return prompt, reply.choices[0].message.content

    return dict(await asyncio.gather(*(one(p) for p in prompts)))


def interactions(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8"))["interactions"]


@pytest.fixture
def fault() -> Iterator[FaultServer]:
    with FaultServer(FaultConfig()) as server:
        yield server


class StubServer:
    """An OpenAI-ish chat endpoint with fixed bodies, leaky headers, cookies and optional gzip.

    The reply is a pure function of the request, so two recordings are byte-identical. A user message
    ``status:NNN`` makes it answer with that HTTP status.
    """

    def __init__(self, use_gzip: bool = False) -> None:
        self.use_gzip = use_gzip
        self.received: list[dict[str, str]] = []  # request headers, lower-cased
        self.sent: list[bytes] = []  # response bodies before compression
        self.gzipped = 0
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                stub.received.append(headers)
                payload = json.loads(body)
                text = payload["messages"][-1]["content"]
                sample = headers.get("x-harness-sample", "")
                status = int(text.split(":", 1)[1]) if text.startswith("status:") else 200
                if status == 200:
                    reply: dict[str, Any] = {
                        "id": "chatcmpl-stub", "object": "chat.completion", "created": 1700000000,
                        "model": payload["model"],
                        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None, "message": {
                            "role": "assistant",
                            "content": f"echo {text} [{sample}] seed={payload.get('seed')}"}}],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
                    }
                else:
                    reply = {"error": {"message": f"stub says {status}", "type": "invalid_request_error",
                                       "param": None, "code": None}}
                # ensure_ascii=False: non-ASCII goes out as raw UTF-8 bytes, which replay must reproduce.
                data = json.dumps(reply, ensure_ascii=False).encode("utf-8")
                stub.sent.append(data)
                wire = data
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Set-Cookie", "__cf_bm=COOKIE-SECRET-42; Path=/; HttpOnly")
                self.send_header("OpenAI-Organization", "org-secret-resp")
                self.send_header("OpenAI-Project", "proj_secret_resp")
                self.send_header("X-Request-Id", "req_SECRET_ID_7")
                self.send_header("X-RateLimit-Remaining-Requests", "99")
                if stub.use_gzip and "gzip" in headers.get("accept-encoding", ""):
                    wire = gzip.compress(data, mtime=0)
                    stub.gzipped += 1
                    self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(wire)))
                self.end_headers()
                self.wfile.write(wire)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def stub() -> Iterator[StubServer]:
    server = StubServer()
    yield server
    server.stop()


@pytest.fixture
def gzip_stub() -> Iterator[StubServer]:
    server = StubServer(use_gzip=True)
    yield server
    server.stop()


# -- modes, keys, paths -------------------------------------------------------------------------------------


def test_parse_mode_accepts_the_user_spellings() -> None:
    assert parse_mode("replay") is RecordMode.replay
    assert parse_mode("record-missing") is RecordMode.record_missing
    assert parse_mode(" Record_Missing ") is RecordMode.record_missing
    assert parse_mode("record") is RecordMode.record
    assert parse_mode("live") is RecordMode.live
    assert parse_mode(RecordMode.live) is RecordMode.live
    with pytest.raises(ValueError, match="record-missing"):
        parse_mode("new_episodes")


def test_match_key_canonical_json_and_its_inputs() -> None:
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hé"}], "seed": 3}).encode()
    same = b'{ "seed": 3,\n "messages": [{"content": "h\\u00e9", "role": "user"}], "model": "m" }'
    key = match_key("POST", CHAT_PATH, "0", body)
    assert len(key) == 64 and int(key, 16) >= 0
    assert match_key("post", CHAT_PATH, "0", same) == key
    assert match_key("POST", CHAT_PATH, "1", body) != key
    assert match_key("POST", "/v2/chat/completions", "0", body) != key
    assert match_key("GET", CHAT_PATH, "0", body) != key
    assert match_key("POST", CHAT_PATH, "0", body.replace(b"3", b"4")) != key
    # Not JSON: raw bytes, still stable and distinct.
    assert match_key("POST", CHAT_PATH, "", b"\xff\x00") == match_key("POST", CHAT_PATH, None, b"\xff\x00")
    assert match_key("POST", CHAT_PATH, "", b"\xff\x00") != match_key("POST", CHAT_PATH, "", b"\xff\x01")
    # Field boundaries cannot be shifted: ("a", "b|c") vs ("a|b", "c")-style collisions.
    assert match_key("POST", "/v1/x", "ab", b"") != match_key("POST", "/v1/xa", "b", b"")


def test_cassette_path_slugs_are_safe_and_distinct(tmp_path: Path) -> None:
    expected = tmp_path / "support-bot" / "gpt-4o-mini.json"
    assert cassette_path(tmp_path, "support-bot", "gpt-4o-mini") == expected
    assert slugify("gpt-3.5-turbo") == "gpt-3.5-turbo"
    odd = ["meta-llama/Llama-3-8B", "meta-llama-llama-3-8b", "GPT-4o", "gpt-4o", "../../etc/passwd", "..", "",
           "con", "a b:c*?"]
    slugs = [slugify(name) for name in odd]
    assert len(set(slugs)) == len(odd)
    for slug in slugs:
        assert slug and slug == slug.lower() and "/" not in slug and not slug.startswith(".")
        assert set(slug) <= set("abcdefghijklmnopqrstuvwxyz0123456789._-")
    path = cassette_path(tmp_path, "../suite", "org/model")
    assert path.parent.parent == tmp_path


# -- record, replay, miss -----------------------------------------------------------------------------------


def test_record_then_replay_with_upstream_stopped(tmp_path: Path, fault: FaultServer) -> None:
    path = tmp_path / "c.json"
    prompts = ["What is 2+2?", "Capital of France?", "naïve café ☃"]

    async def record() -> list[dict[str, Any]]:
        client, transport, inner = make_client(fault.base_url, Cassette(path), "record")
        replies = [(await ask(client, p, sample=str(i), seed=7)).model_dump() for i, p in enumerate(prompts)]
        await client.close()  # closing the client saves the cassette
        assert inner.calls == 3 and transport.recorded == 3
        return replies

    recorded = asyncio.run(record())
    assert [r["choices"][0]["message"]["content"] for r in recorded] == prompts
    assert fault.stats()["requests_total"] == 3
    fault.stop()

    async def replay() -> list[dict[str, Any]]:
        client, transport, inner = make_client(dead_base_url(), Cassette(path), "replay")
        replies = [(await ask(client, p, sample=str(i), seed=7)).model_dump() for i, p in enumerate(prompts)]
        await client.close()
        assert inner.calls == 0 and transport.hits == 3
        return replies

    assert asyncio.run(replay()) == recorded


def test_replay_miss_is_wrapped_and_never_reaches_the_network(tmp_path: Path, fault: FaultServer) -> None:
    path = tmp_path / "c.json"

    async def go() -> None:
        client, _, _ = make_client(fault.base_url, Cassette(path), "record")
        await ask(client, "recorded", sample="0")
        await client.close()
        before = fault.stats()["requests_total"]

        # The upstream is alive and reachable: a miss must still not be sent to it.
        client, transport, inner = make_client(fault.base_url, Cassette(path), "replay")
        with pytest.raises(openai.APIConnectionError) as caught:
            await ask(client, "never recorded", sample="2", temperature=0.5)
        miss = caught.value.__cause__
        assert isinstance(miss, ReplayMiss)
        assert isinstance(miss, ReplayMissError) and miss.exit_code == EXIT_REPLAY_MISS
        sent = {"messages": [{"role": "user", "content": "never recorded"}], "model": "m", "temperature": 0.5}
        assert miss.key == match_key("POST", CHAT_PATH, "2", json.dumps(sent).encode())
        assert (miss.method, miss.path, miss.sample) == ("POST", CHAT_PATH, "2")
        assert "never recorded" in miss.summary and "model=m" in miss.summary
        assert "never recorded" in str(miss) and str(path) in str(miss)
        # Same body, different sample key: also a miss.
        with pytest.raises(openai.APIConnectionError):
            await ask(client, "recorded", sample="1")
        assert (await ask(client, "recorded", sample="0")).choices[0].message.content == "recorded"
        await client.close()
        assert inner.calls == 0 and transport.hits == 1
        assert fault.stats()["requests_total"] == before

    asyncio.run(go())


def test_record_missing_calls_upstream_only_for_misses(tmp_path: Path, fault: FaultServer) -> None:
    path = tmp_path / "c.json"

    async def go() -> None:
        client, _, _ = make_client(fault.base_url, Cassette(path), "record")
        for text in ["a", "b", "c"]:
            await ask(client, text)
        await client.close()
        fault.reset()

        client, transport, inner = make_client(fault.base_url, Cassette(path), "record-missing")
        answers = [(await ask(client, text)).choices[0].message.content for text in ["a", "b", "c", "d", "e"]]
        await client.close()
        assert answers == ["a", "b", "c", "d", "e"]
        assert fault.stats()["requests_total"] == 2 and inner.calls == 2
        assert (transport.hits, transport.recorded) == (3, 2)
        assert len(Cassette(path)) == 5

    asyncio.run(go())


def test_record_mode_rerecords_and_replaces(tmp_path: Path, fault: FaultServer) -> None:
    path = tmp_path / "c.json"

    async def run(base_url: str, mode: str) -> list[str]:
        client, _, _ = make_client(base_url, Cassette(path), mode)
        answers = [(await ask(client, text)).choices[0].message.content for text in ["hello", "bye"]]
        await client.close()
        return answers

    assert asyncio.run(run(fault.base_url, "record")) == ["hello", "bye"]
    fault.reset()
    fault.config = FaultConfig(rules={"hello": "NEW ANSWER"})
    assert asyncio.run(run(fault.base_url, "record")) == ["NEW ANSWER", "bye"]
    assert fault.stats()["requests_total"] == 2  # record asks upstream even for recorded requests
    assert len(interactions(path)) == 2  # replaced, not appended
    fault.stop()
    assert asyncio.run(run(dead_base_url(), "replay")) == ["NEW ANSWER", "bye"]


def test_sample_key_separates_repeats(tmp_path: Path, fault: FaultServer) -> None:
    fault.config = FaultConfig(vary_by_sample=True)
    path = tmp_path / "c.json"

    async def run(base_url: str, mode: str) -> tuple[list[str], RecordingTransport]:
        client, transport, _ = make_client(base_url, Cassette(path), mode)
        answers = [(await ask(client, "same", sample=s, temperature=0.8)).choices[0].message.content
                   for s in ["0", "1", "2", "0"]]
        await client.close()
        return answers, transport

    recorded, transport = asyncio.run(run(fault.base_url, "record-missing"))
    assert transport.upstream_calls == 3 and transport.hits == 1  # the repeated sample "0" was a hit
    assert recorded[0] == recorded[3] and len(set(recorded[:3])) == 3
    assert len(interactions(path)) == 3
    fault.stop()
    assert asyncio.run(run(dead_base_url(), "replay"))[0] == recorded


def test_recorded_400_replays_as_400(tmp_path: Path, fault: FaultServer) -> None:
    path = tmp_path / "c.json"

    async def run(base_url: str, mode: str) -> tuple[int, Any]:
        client, _, _ = make_client(base_url, Cassette(path), mode)
        with pytest.raises(openai.BadRequestError) as caught:
            await ask(client, "too many", n=500)  # the fault server rejects n > 128 with a real 400
        await client.close()
        return caught.value.status_code, caught.value.body

    recorded = asyncio.run(run(fault.base_url, "record"))
    assert recorded[0] == 400 and "n must be" in json.dumps(recorded[1])
    assert [i["response"]["status"]["code"] for i in interactions(path)] == [400]
    fault.stop()
    assert asyncio.run(run(dead_base_url(), "replay")) == recorded


@pytest.mark.parametrize(("fault_kind", "error"), [
    (Fault.RATE_LIMIT, openai.RateLimitError),
    (Fault.SERVER_ERROR, openai.InternalServerError),
    (Fault.UNAVAILABLE, openai.InternalServerError),
    (Fault.UNAUTHORIZED, openai.AuthenticationError),
])
def test_transient_and_auth_failures_are_not_recorded(
    tmp_path: Path, fault: FaultServer, fault_kind: Fault, error: type[Exception]
) -> None:
    fault.config = FaultConfig(fail_first_n=1, fail_first_with=fault_kind, retry_after_s=3)
    path = tmp_path / "c.json"

    async def go() -> None:
        cassette = Cassette(path)
        client, transport, _ = make_client(fault.base_url, cassette, "record-missing")
        with pytest.raises(error) as caught:
            await ask(client, "flaky")
        if fault_kind is Fault.RATE_LIMIT:  # passed through untouched: the scheduler needs Retry-After
            assert caught.value.response.headers["retry-after"] == "3"
        assert len(cassette) == 0 and not cassette.dirty
        assert (await ask(client, "flaky")).choices[0].message.content == "flaky"  # the retry is recorded
        await client.close()
        assert transport.recorded == 1

    asyncio.run(go())
    assert [i["response"]["status"]["code"] for i in interactions(path)] == [200]


def test_transport_errors_are_not_recorded(tmp_path: Path) -> None:
    async def go() -> None:
        cassette = Cassette(tmp_path / "c.json")
        client, _, inner = make_client(dead_base_url(), cassette, "record")
        with pytest.raises(openai.APIConnectionError) as caught:
            await ask(client, "hello")
        await client.close()
        assert isinstance(caught.value.__cause__, httpx2.ConnectError)
        assert inner.calls == 1 and len(cassette) == 0

    asyncio.run(go())
    assert not (tmp_path / "c.json").exists()


def test_live_mode_passes_through_without_a_cassette(stub: StubServer) -> None:
    async def go() -> None:
        client, _, inner = make_client(stub.base_url, None, "live")
        raw = await client.chat.completions.with_raw_response.create(
            model="m", messages=[{"role": "user", "content": "hi"}])
        await client.close()
        assert inner.calls == 1
        assert raw.headers["x-request-id"] == "req_SECRET_ID_7"  # nothing filtered in live mode
        assert raw.parse().choices[0].message.content == "echo hi [] seed=None"

    asyncio.run(go())
    with pytest.raises(ValueError, match="needs a cassette"):
        RecordingTransport(None, "replay")


# -- concurrency --------------------------------------------------------------------------------------------


def test_many_requests_replayed_shuffled_at_high_concurrency(tmp_path: Path, fault: FaultServer) -> None:
    path = tmp_path / "c.json"
    prompts = [f"question {i}: what is {i} squared?" for i in range(240)]

    async def run(base_url: str, mode: str, order: list[str], concurrency: int) -> dict[str, str]:
        client, _, inner = make_client(base_url, Cassette(path), mode)
        answers = await ask_all(client, order, concurrency)
        await client.close()
        assert inner.calls == (len(order) if mode == "record" else 0)
        return answers

    recorded = asyncio.run(run(fault.base_url, "record", prompts, 32))
    assert recorded == {p: p for p in prompts}
    fault.stop()
    shuffled = prompts[:]
    random.Random(1).shuffle(shuffled)
    assert asyncio.run(run(dead_base_url(), "replay", shuffled, 48)) == recorded


def test_two_cassettes_used_concurrently_do_not_cross(tmp_path: Path) -> None:
    # Two upstreams answer the *same* requests differently, so both cassettes hold the same match keys:
    # only each transport's own cassette can give each client its own answers.
    prompts = [f"p{i}" for i in range(60)]
    paths = [cassette_path(tmp_path, "suite", "model-one"), cassette_path(tmp_path, "suite", "model-two")]

    async def run(base_urls: list[str], mode: str) -> list[dict[str, str]]:
        pairs = [make_client(url, Cassette(p), mode) for url, p in zip(base_urls, paths, strict=True)]
        results = await asyncio.gather(*(ask_all(client, prompts, 32) for client, _, _ in pairs))
        for client, _, _ in pairs:
            await client.close()
        return list(results)

    with FaultServer(FaultConfig(rules={"p": "from one"})) as one, \
            FaultServer(FaultConfig(rules={"p": "from two"})) as two:
        recorded = asyncio.run(run([one.base_url, two.base_url], "record"))
    assert recorded == [dict.fromkeys(prompts, "from one"), dict.fromkeys(prompts, "from two")]
    assert {i["request"]["headers"]["x-harness-match-key"][0] for i in interactions(paths[0])} == \
        {i["request"]["headers"]["x-harness-match-key"][0] for i in interactions(paths[1])}
    dead = dead_base_url()
    assert asyncio.run(run([dead, dead], "replay")) == recorded


def test_registry_shares_one_cassette_per_file(tmp_path: Path, fault: FaultServer) -> None:
    path = tmp_path / "suite" / "m.json"
    shared = open_cassette(path)
    assert open_cassette(str(path)) is shared
    assert open_cassette(tmp_path / "suite" / ".." / "suite" / "m.json") is shared

    async def go() -> None:
        # Two clients (say a model and its judge) record into one file at the same time.
        a, _, _ = make_client(fault.base_url, open_cassette(path), "record-missing")
        b, _, _ = make_client(fault.base_url, open_cassette(path), "record-missing")
        await asyncio.gather(ask_all(a, [f"a{i}" for i in range(40)], 16),
                             ask_all(b, [f"b{i}" for i in range(40)], 16))
        await a.close()
        await b.close()

    asyncio.run(go())
    assert len(interactions(path)) == 80
    close_cassette(path)
    reopened = open_cassette(path)
    assert reopened is not shared and len(reopened) == 80
    close_cassette(path)


# -- file format and hygiene --------------------------------------------------------------------------------


def test_secrets_and_leaky_headers_never_reach_the_file(tmp_path: Path, stub: StubServer) -> None:
    path = tmp_path / "c.json"

    async def go() -> None:
        client, _, _ = make_client(stub.base_url, Cassette(path), "record",
                                   api_key="sk-test-SECRET123456789abcdef",
                                   default_headers={"OpenAI-Organization": "org-secret",
                                                    "OpenAI-Project": "proj-secret"})
        for text in ["one", "two", "three"]:
            await ask(client, text)
        await client.close()

    asyncio.run(go())
    # The leaks were really offered: the key and organisation went upstream on every request.
    assert stub.received[0]["authorization"] == "Bearer sk-test-SECRET123456789abcdef"
    assert stub.received[0]["openai-organization"] == "org-secret"
    # The client only ever sees the rebuilt response, without Set-Cookie, so it never echoes the cookie.
    assert not any("cookie" in h for h in stub.received)
    assert any(name.startswith("x-stainless") for name in stub.received[0])
    text = path.read_text(encoding="utf-8")
    for secret in ["SECRET123456789", "org-secret", "proj-secret", "COOKIE-SECRET-42", "req_SECRET_ID",
                   "proj_secret_resp"]:
        assert secret not in text
    lowered = text.lower()
    for name in ["authorization", "cookie", "openai-organization", "openai-project", "x-stainless",
                 "x-request-id", "ratelimit", "user-agent"]:
        assert name not in lowered
    for interaction in interactions(path):
        assert set(interaction["request"]["headers"]) == {"content-type", "x-harness-match-key",
                                                          "x-harness-sample"}
        assert set(interaction["response"]["headers"]) == {"content-type", "x-harness-latency-ms"}


def test_gzip_response_stored_decoded_and_replayed_byte_for_byte(
    tmp_path: Path, gzip_stub: StubServer
) -> None:
    path = tmp_path / "c.json"

    async def run(base_url: str, mode: str) -> list[bytes]:
        client, _, _ = make_client(base_url, Cassette(path), mode)
        contents = []
        for text in ["plain", "ünïcödé ☃ 雪"]:
            raw = await client.chat.completions.with_raw_response.create(
                model="m", messages=[{"role": "user", "content": text}])
            assert raw.parse().choices[0].message.content.startswith(f"echo {text}")
            assert "content-encoding" not in raw.headers
            contents.append(raw.http_response.content)
        await client.close()
        return contents

    recorded = asyncio.run(run(gzip_stub.base_url, "record"))
    assert gzip_stub.gzipped == 2
    assert [h["accept-encoding"] for h in gzip_stub.received] == ["gzip", "gzip"]
    assert recorded == gzip_stub.sent  # the decoded bytes the server produced, exactly
    stored = [i["response"]["body"]["string"] for i in interactions(path)]
    assert sorted(stored) == sorted(body.decode("utf-8") for body in gzip_stub.sent)  # readable text
    assert asyncio.run(run(dead_base_url(), "replay")) == recorded


def test_file_is_vcrpy_format_sorted_and_byte_identical_on_rerecord(tmp_path: Path, stub: StubServer) -> None:
    prompts = [f"prompt {i}" for i in range(12)]

    async def record(path: Path, order: list[str]) -> None:
        client, _, _ = make_client(stub.base_url, Cassette(path), "record")
        for i, text in enumerate(order):
            await ask(client, text, sample=str(i % 3), seed=i % 3)
        await client.close()

    first, second = tmp_path / "first.json", tmp_path / "second.json"
    asyncio.run(record(first, prompts))
    asyncio.run(record(second, prompts))
    # Two separate recordings differ only in the measured latency; everything else is byte-identical.
    latency = re.compile(rb'"x-harness-latency-ms": \[\s*"[0-9.]+"\s*\]')
    assert latency.sub(b"L", first.read_bytes()) == latency.sub(b"L", second.read_bytes())

    # Re-recording identical answers into the same file changes nothing, and does not even rewrite it.
    inode, mtime = first.stat().st_ino, first.stat().st_mtime_ns
    asyncio.run(record(first, prompts))
    assert (first.stat().st_ino, first.stat().st_mtime_ns) == (inode, mtime)
    assert latency.sub(b"L", first.read_bytes()) == latency.sub(b"L", second.read_bytes())

    text = first.read_text(encoding="utf-8")
    assert text.startswith('{\n    "version": 1,\n    "interactions": [')  # vcrpy's JSON serializer
    data = json.loads(text)
    keys = [i["request"]["headers"]["x-harness-match-key"][0] for i in data["interactions"]]
    assert keys == sorted(keys) and len(keys) == 12
    one = data["interactions"][0]
    assert list(one) == ["request", "response"]
    assert list(one["request"]) == ["method", "uri", "body", "headers"]
    assert one["request"]["method"] == "POST" and one["request"]["uri"] == CHAT_PATH
    body = json.loads(one["request"]["body"])
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert one["request"]["body"] == canonical
    assert one["request"]["headers"]["content-type"] == ["application/json"]
    assert one["response"]["status"] == {"code": 200, "message": "OK"}
    assert one["response"]["headers"]["content-type"] == ["application/json"]
    assert set(one["response"]["headers"]) == {"content-type", "x-harness-latency-ms"}
    assert json.loads(one["response"]["body"]["string"])["object"] == "chat.completion"
    # vcrpy itself reads the file.
    requests, responses = vcr.serialize.deserialize(text, jsonserializer)
    assert len(requests) == 12 and requests[0].path == CHAT_PATH
    assert responses[0]["body"]["string"].startswith(b"{")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_save_is_atomic_when_the_write_fails(tmp_path: Path, stub: StubServer,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.json"

    async def record(texts: list[str], cassette: Cassette) -> None:
        client, _, _ = make_client(stub.base_url, cassette, "record-missing")
        for text in texts:
            await ask(client, text)
        await client.close()

    asyncio.run(record(["a"], Cassette(path)))
    before = path.read_bytes()
    cassette = Cassette(path)
    asyncio.run(record(["b"], cassette))  # saved on close
    assert path.read_bytes() != before
    before = path.read_bytes()
    cassette = Cassette(path)
    transport = RecordingTransport(cassette, "record-missing")
    client = AsyncOpenAI(base_url=stub.base_url, api_key="k", max_retries=0,
                         http_client=httpx2.AsyncClient(transport=transport))

    def broken_replace(src: Any, dst: Any) -> None:
        raise OSError("disk full")

    async def go() -> None:
        await ask(client, "c")
        monkeypatch.setattr(cassette_module.os, "replace", broken_replace)
        with pytest.raises(StorageError, match="disk full"):
            await client.close()

    asyncio.run(go())
    assert path.read_bytes() == before  # the old file is untouched
    # The temp file is gone, and the recording that could not be saved waits in the journal.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json", "c.json.journal"]
    assert len(Cassette(path)) == 3  # a fresh open already sees it (its own merge fails quietly: disk full)
    assert path.read_bytes() == before
    assert cassette.dirty
    monkeypatch.undo()
    assert cassette.save() and len(Cassette(path)) == 3 and not cassette.dirty
    assert not cassette.save()


def test_each_recording_is_in_the_journal_before_the_answer_returns(tmp_path: Path, stub: StubServer) -> None:
    path = tmp_path / "c.json"
    cassette = Cassette(path)

    async def go() -> None:
        client, _, _ = make_client(stub.base_url, cassette, "record")
        for i in range(5):
            await ask(client, f"q{i}")
            # Not saved yet, but on disk: a process killed now loses nothing (a fresh open reads the journal).
            assert not path.exists()
            assert len((tmp_path / "c.json.journal").read_bytes().splitlines()) == i + 1
        await client.close()

    asyncio.run(go())
    assert len(interactions(path)) == 5
    assert not (tmp_path / "c.json.journal").exists()  # folded into the file on close


def test_used_keys_and_prune(tmp_path: Path, fault: FaultServer) -> None:
    path = tmp_path / "c.json"

    async def run(mode: str, texts: list[str], cassette: Cassette) -> None:
        client, _, _ = make_client(fault.base_url, cassette, mode)
        for text in texts:
            await ask(client, text)
        await client.close()

    asyncio.run(run("record", ["keep1", "keep2", "old"], Cassette(path)))
    cassette = Cassette(path)
    asyncio.run(run("replay", ["keep1", "keep2"], cassette))
    assert len(cassette.used_keys) == 2 and cassette.used_keys < cassette.keys()
    assert not cassette.dirty  # replaying changes nothing
    assert cassette.prune(cassette.used_keys) == 1
    assert cassette.prune(cassette.used_keys) == 0
    assert cassette.save()
    assert Cassette(path).keys() == cassette.used_keys
    assert "old" not in path.read_text(encoding="utf-8")


def test_binary_bodies_round_trip_as_base64(tmp_path: Path) -> None:
    from harness.execute.cassette import make_interaction

    path = tmp_path / "c.json"
    body = bytes(range(256))
    key = match_key("POST", "/v1/audio", "0", body)
    cassette = Cassette(path)
    cassette.record(make_interaction(
        key=key, method="POST", uri="/v1/audio", sample="0", request_body=body,
        request_headers=[("Content-Type", "application/octet-stream")], status=200, reason="OK",
        response_headers=[("Content-Type", "audio/wav"), ("Set-Cookie", "x=1")], content=body[::-1]))
    assert cassette.save()
    stored = interactions(path)[0]
    assert "base64_string" in stored["response"]["body"] and "base64_string" in stored["request"]["body"]
    found = Cassette(path).lookup(key)
    assert found is not None and found.content == body[::-1] and found.status == 200
    assert found.headers == [("content-type", "audio/wav")]


def test_cassette_without_stored_keys_is_indexed_by_hashing(tmp_path: Path) -> None:
    # A cassette written by vcrpy itself (no match-key header) still loads and matches.
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    request = VcrRequest("POST", "https://api.example.com/v1/chat/completions", body,
                         {"Content-Type": "application/json", "X-Harness-Sample": "3"})
    response = {"status": {"code": 200, "message": "OK"}, "headers": {"Content-Type": ["application/json"]},
                "body": {"string": b'{"ok": true}'}}
    path = tmp_path / "vcrpy.json"
    path.write_text(vcr.serialize.serialize({"requests": [request], "responses": [response]}, jsonserializer))
    found = Cassette(path).lookup(match_key("POST", CHAT_PATH, "3", body.encode()))
    assert found is not None and found.content == b'{"ok": true}'


def test_unreadable_cassette_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"interactions": [{"request": ', encoding="utf-8")
    with pytest.raises(CassetteError, match="broken.json"):
        Cassette(path)


def test_ten_thousand_interactions_load_and_look_up(tmp_path: Path, stub: StubServer) -> None:
    from harness.execute.cassette import make_interaction

    path = tmp_path / "big.json"
    cassette = Cassette(path)
    bodies = {}
    recorded = []
    for i in range(10_000):
        body = json.dumps({"model": "m", "messages": [{"role": "user", "content": f"big {i}"}]}).encode()
        key = match_key("POST", CHAT_PATH, str(i % 5), body)
        reply = json.dumps({"id": f"c{i}", "object": "chat.completion", "created": 0, "model": "m",
                            "choices": [{"index": 0, "finish_reason": "stop", "message": {
                                "role": "assistant", "content": f"answer {i}"}}]}).encode()
        recorded.append(make_interaction(
            key=key, method="POST", uri=CHAT_PATH, sample=str(i % 5), request_body=body,
            request_headers=[("content-type", "application/json")], status=200, reason="OK",
            response_headers=[("content-type", "application/json")], content=reply))
        bodies[key] = reply
    assert cassette.record_many(recorded) == 10_000
    assert cassette.save()

    loaded = Cassette(path)
    assert len(loaded) == 10_000
    for key, reply in bodies.items():
        found = loaded.lookup(key)
        assert found is not None and found.content == reply
    assert loaded.used_keys == frozenset(bodies)

    async def replay_some() -> None:
        client, _, inner = make_client(dead_base_url(), Cassette(path), "replay")
        for i in random.Random(2).sample(range(10_000), 50):
            reply = await ask(client, f"big {i}", sample=str(i % 5))
            assert reply.choices[0].message.content == f"answer {i}"
        await client.close()
        assert inner.calls == 0

    asyncio.run(replay_some())
    assert os.path.getsize(path) > 0
