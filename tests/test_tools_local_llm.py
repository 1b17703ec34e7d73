"""Chat prompts on the completions endpoint against the real local model (llama-server with SmolLM2-135M):
recorded, then replayed offline with the endpoint pointing at a dead port, identical in results and reports.

(Tool round trips, moderation and images are tested against the fault server only: llama-server with this
model answers tool requests with text, has no moderation endpoint and the model reads no images.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.testing.local_llm import LocalServer, running

pytestmark = pytest.mark.llm

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / "suites" / "examples" / "completions.yaml"
DEAD_URL = "http://127.0.0.1:9/v1"


@pytest.fixture()
def server() -> Iterator[LocalServer]:
    with running() as srv:
        yield srv


def harness(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LOCAL_LLM_URL": url}
    env.pop("CI", None)
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=900)


def rows(run: Path) -> dict[str, dict[str, Any]]:
    lines = (run / "results.jsonl").read_text().splitlines()
    return {r["trial_id"]: {k: v for k, v in r.items() if k != "finished_at"} for r in map(json.loads, lines)}


def test_a_conversation_on_the_completions_endpoint_records_and_replays(server: LocalServer, tmp_path: Path) -> None:
    common = ["--reports", str(tmp_path / "reports"), "--cassettes", str(tmp_path / "cassettes"), "--quiet"]
    recorded = harness("run", str(SUITE), "--record", "record", "--run-id", "rec", *common, url=server.base_url)
    assert recorded.returncode == 0, recorded.stderr
    server.stop()
    replayed = harness("run", str(SUITE), "--record", "replay", "--run-id", "rep", *common, url=DEAD_URL)
    assert replayed.returncode == 0, replayed.stderr
    runs = tmp_path / "reports" / "completions"
    first, second = rows(runs / "rec"), rows(runs / "rep")
    assert first == second
    prompts = {(r["prompt"], r["case_id"]): r["request"]["prompt"] for r in first.values()}
    assert prompts[("labels", "follow-up")].endswith("User: My name is Ada.\n\nAssistant: Nice to meet you, Ada."
                                                     "\n\nUser: What is my name?\n\nAssistant:")
    assert prompts[("chatml", "capital")].endswith("<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
                                                   "<|im_start|>assistant\n")
    # Real answers, counted by the real tokenizer; the model knows the capital through either template.
    assert all(r["error"] is None and r["usage"]["prompt_tokens"] > 10 for r in first.values())
    assert any("Paris" in (r["output"] or "") for r in first.values())
    for fmt in ("table", "markdown", "json", "html"):
        a = harness("report", str(runs / "rec"), "--format", fmt, url=DEAD_URL)
        b = harness("report", str(runs / "rep"), "--format", fmt, url=DEAD_URL)
        assert a.returncode == 0 and a.stdout == b.stdout, fmt
