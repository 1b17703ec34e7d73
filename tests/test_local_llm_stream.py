"""Streaming and ``n`` against the real local model (llama-server with SmolLM2-135M, marker ``llm``): what the
server supports, and a streamed ``n`` run recorded, then replayed offline with identical records."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.execute.provider import CallFailed, Completion, call, make_client
from harness.render import Request
from harness.suite.model import ModelSpec
from harness.testing.local_llm import LocalServer, running

pytestmark = pytest.mark.llm
DEAD_URL = "http://127.0.0.1:9/v1"


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with running() as srv:
        yield srv


def ask(server: LocalServer, api: str, body: dict[str, object]) -> Completion:
    model = ModelSpec(id="smollm2", name="smollm2", base_url=server.base_url, api_key_env="", api=api)  # type: ignore[arg-type]

    async def go() -> Completion:
        client = make_client(model, "no-key", None, 2)
        try:
            return await call(client, Request(api, {"model": "smollm2", **body}, "r0"), 120)  # type: ignore[arg-type]
        finally:
            await client.close()

    return asyncio.run(go())


CHAT = {"messages": [{"role": "user", "content": "What is the capital of France?"}], "max_tokens": 8}


def test_llama_server_streams_chat_with_usage_and_n(server: LocalServer) -> None:
    streamed = ask(server, "chat", {**CHAT, "stream": True, "n": 2, "temperature": 0.8, "seed": 1,
                                    "stream_options": {"include_usage": True}})
    assert len(streamed.outputs()) == 2 and all(o.text and o.finish_reason for o in streamed.outputs())
    assert streamed.usage["prompt_tokens"] > 0 and streamed.usage["completion_tokens"] > 0
    assert streamed.ttft_ms is not None and streamed.ttft_ms > 0
    plain = ask(server, "chat", {**CHAT, "n": 3, "temperature": 0.8, "seed": 1})
    assert len(plain.outputs()) == 3
    # Greedy decoding: the streamed text equals the non-streamed one.
    greedy = {**CHAT, "temperature": 0.0}
    assert ask(server, "chat", {**greedy, "stream": True}).text == ask(server, "chat", greedy).text


def test_llama_server_legacy_completions_n_and_stream(server: LocalServer) -> None:
    body = {"prompt": "The capital of France is", "max_tokens": 6, "temperature": 0.8, "seed": 1}
    try:
        several = ask(server, "completions", {**body, "n": 2})
    except CallFailed as failure:  # what docs/streaming-samples-cost.md says this server does
        assert "does not support n" in failure.error.message
    else:
        assert len(several.outputs()) == 2
    streamed = ask(server, "completions", {**body, "stream": True, "stream_options": {"include_usage": True}})
    assert streamed.text and streamed.finish_reason and streamed.ttft_ms is not None


def harness(*args: str, url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LOCAL_LLM_URL": url}
    env.pop("CI", None)
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


SUITE = """suite: local-samples
models:
  - {name: smollm2, base_url: "${LOCAL_LLM_URL}", api_key_env: null, price: {input: 0.02, output: 0.04}}
temperatures: [0.8]
params: {max_tokens: 6, n: 3, stream: true}
prompts:
  v1: [{role: user, content: "What is the capital of {{ country }}? One word."}]
cases:
  - {id: fr, vars: {country: France, capital: Paris}}
  - {id: it, vars: {country: Italy, capital: Rome}}
graders:
  - {type: exact, value: "{{ capital }}", case_sensitive: false, strip_punctuation: true}
"""


def test_streamed_choices_record_then_replay_offline(server: LocalServer, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "suite.yaml").write_text(SUITE)
    recorded = harness("run", "suite.yaml", "--record", "record", "--run-id", "rec", "--quiet", url=server.base_url,
                       cwd=tmp_path)
    assert recorded.returncode == 0, recorded.stderr
    replayed = harness("run", "suite.yaml", "--record", "replay", "--run-id", "rep", "--quiet", url=DEAD_URL,
                       cwd=tmp_path)
    assert replayed.returncode == 0, replayed.stderr

    def records(run: str) -> list[dict[str, object]]:
        lines = (tmp_path / "reports/local-samples" / run / "results.jsonl").read_text().splitlines()
        keep = ("trial_id", "output", "passed", "ttft_ms", "latency_ms", "usage", "cost", "answer")
        return sorted(({k: json.loads(line)[k] for k in keep} for line in lines), key=lambda r: str(r["trial_id"]))

    rec = records("rec")
    assert len(rec) == 6 and rec == records("rep")
    heads = [r for r in rec if "~" not in str(r["trial_id"])]
    assert all(r["ttft_ms"] is not None and r["cost"] is not None for r in heads)
    for fmt in ("json", "markdown"):
        a = harness("report", "reports/local-samples/rec", "--format", fmt, url=DEAD_URL, cwd=tmp_path).stdout
        b = harness("report", "reports/local-samples/rep", "--format", fmt, url=DEAD_URL, cwd=tmp_path).stdout
        assert a.replace("samples/rec", "samples/RUN") == b.replace("samples/rep", "samples/RUN") and a
