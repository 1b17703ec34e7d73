"""Batch execution through the ``harness`` command in a subprocess: kills, resumes, status, export/import."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_batch_fixtures import results, state, write_suite
from test_cli_subprocess_fixtures import harness_command

from harness.testing.fault_server import FaultConfig, FaultServer
from harness.testing.fault_server.batch_faults import BatchFaults

SLOW = FaultConfig(batch=BatchFaults(polls_to_complete=10**9))


@pytest.fixture()
def server() -> Iterator[FaultServer]:
    with FaultServer(FaultConfig()) as s:
        yield s


def harness(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*harness_command(), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def start_run(suite: Path, tmp: Path, *extra: str) -> subprocess.Popen[bytes]:
    args = ["run", str(suite), "--record", "record-missing", "--reports", str(tmp / "reports"), "--batch",
            "--batch-poll", "0.01", *extra]
    return subprocess.Popen([*harness_command(), *args], cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_phase(directory: Path, phase: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if any(c["phase"] == phase for c in state(directory)):
                return
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.01)
    raise AssertionError(f"no batch reached {phase!r} (exit {proc.poll()})")


def test_sigkill_during_polling_then_resume_submits_nothing_twice(server: FaultServer, tmp_path: Path) -> None:
    server.config = SLOW
    suite = write_suite(tmp_path, server.base_url, n_cases=6)
    directory = tmp_path / "reports" / "batchy" / "polled"
    proc = start_run(suite, tmp_path, "--run-id", "polled")
    wait_for_phase(directory, "submitted", proc)
    time.sleep(0.2)  # well into polling
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert server.stats()["batches"]["batches_created"] == 1
    server.config = FaultConfig()  # the batch finishes while nobody watches
    done = harness("run", str(suite), "--resume", "polled", "--reports", str(tmp_path / "reports"),
                   "--record", "record-missing", "--batch", "--batch-poll", "0.01", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert server.stats()["batches"]["batches_created"] == 1
    assert server.stats()["by_path"].get("/v1/chat/completions", 0) == 0
    assert len(results(directory)) == 6 and all(r["passed"] for r in results(directory).values())


def test_sigkill_at_random_points_never_submits_a_trial_twice(server: FaultServer, tmp_path: Path) -> None:
    suite = write_suite(tmp_path, server.base_url, n_cases=20)
    directory = tmp_path / "reports" / "batchy" / "random"
    rng = random.Random(7)
    for _ in range(5):
        args = ["--resume", "random"] if directory.exists() else ["--run-id", "random"]
        proc = start_run(suite, tmp_path, "--batch-max-requests", "3", *args)
        deadline = time.monotonic() + 60  # start-up time varies a lot on a busy machine: count from the run folder
        while not (directory / "manifest.json").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    done = harness("run", str(suite), "--resume", "random", "--reports", str(tmp_path / "reports"),
                   "--record", "record-missing", "--batch", "--batch-max-requests", "3", "--batch-poll", "0.01",
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    stored = results(directory)  # raises on a trial stored twice
    assert len(stored) == 20
    counters = server.stats()["batches"]
    chunks = state(directory)
    assert counters["batches_created"] == len([c for c in chunks if c["batch_id"]])
    assert counters["requests_submitted"] == 20  # every trial submitted exactly once


def test_wait_none_exits_0_with_the_resume_command_and_batches_shows_and_cancels(
        server: FaultServer, tmp_path: Path) -> None:
    server.config = SLOW
    suite = write_suite(tmp_path, server.base_url, n_cases=4)
    first = harness("run", str(suite), "--run-id", "ci", "--reports", str(tmp_path / "reports"), "--record",
                    "record-missing", "--batch", "--batch-wait", "none", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "harness run" in first.stderr and "--resume ci" in first.stderr and "--batch" in first.stderr
    shown = harness("batches", "ci", "--reports", str(tmp_path / "reports"), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "batch_000001" in shown.stdout and "validating" in shown.stdout
    cancelled = harness("batches", "ci", "--reports", str(tmp_path / "reports"), "--cancel", cwd=tmp_path)
    assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout
    assert server.stats()["batches"]["cancelled"] == 1
    # The cancelled batch's trials are pending again: a live resume runs them, once each.
    server.config = FaultConfig()
    live = harness("run", str(suite), "--resume", "ci", "--reports", str(tmp_path / "reports"), "--record",
                   "record-missing", "--no-batch", cwd=tmp_path)
    assert live.returncode == 0, live.stderr
    assert len(results(tmp_path / "reports" / "batchy" / "ci")) == 4
    assert server.stats()["by_path"]["/v1/chat/completions"] == 4


def _engine(requests: Path, answers: Path) -> None:
    """A stand-in for vLLM's run-batch: answers each line (echo), in reverse order, in the batch output format."""
    lines = [json.loads(line) for line in requests.read_text(encoding="utf-8").splitlines()]
    with answers.open("w", encoding="utf-8") as out:
        for i, line in enumerate(reversed(lines)):
            text = line["body"]["messages"][-1]["content"]
            body = {"id": f"cmpl-{i}", "object": "chat.completion", "created": 0, "model": line["body"]["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": f"engine: {text}"}}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}
            out.write(json.dumps({"id": f"vllm-{i}", "custom_id": line["custom_id"],
                                  "response": {"status_code": 200, "request_id": f"r{i}", "body": body},
                                  "error": None}) + "\n")


def test_export_then_engine_then_import_then_replay(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, "http://127.0.0.1:9/v1", n_cases=5)  # no server: nothing may call it
    requests = tmp_path / "requests.jsonl"
    exported = harness("batch", "export", str(suite), "-o", str(requests), "--run-id", "ext",
                       "--reports", str(tmp_path / "reports"), cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert "harness batch import" in exported.stderr
    lines = [json.loads(line) for line in requests.read_text().splitlines()]
    assert len(lines) == 5 and {line["url"] for line in lines} == {"/v1/chat/completions"}
    assert all(set(line) == {"custom_id", "method", "url", "body"} for line in lines)

    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(['{"custom_id": "nope", "response": {"status_code": 200, "body": {}}}', "{not json",
                              json.dumps({"custom_id": lines[0]["custom_id"], "response": {"status_code": "x"}})]))
    refused = harness("batch", "import", "ext", str(bad), "--reports", str(tmp_path / "reports"), cwd=tmp_path)
    assert refused.returncode == 2
    assert f"{bad}:1: custom_id 'nope' is not a trial" in refused.stderr
    assert f"{bad}:2: not JSON" in refused.stderr and f"{bad}:3: response.status_code" in refused.stderr
    directory = tmp_path / "reports" / "batchy" / "ext"
    assert not (directory / "results.jsonl").read_text()

    answers = tmp_path / "answers.jsonl"
    _engine(requests, answers)
    imported = harness("batch", "import", "ext", str(answers), "--reports", str(tmp_path / "reports"), cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    stored = results(directory)
    assert len(stored) == 5 and all(r["output"].startswith("engine: case") and r["batch"] for r in stored.values())
    again = harness("batch", "import", "ext", str(answers), "--reports", str(tmp_path / "reports"), cwd=tmp_path)
    assert again.returncode == 2 and "no exported batch waits" in again.stderr
    replay = harness("run", str(suite), "--run-id", "replayed", "--record", "replay", "--reports",
                     str(tmp_path / "reports"), cwd=tmp_path)
    assert replay.returncode == 0, replay.stderr
    assert results(tmp_path / "reports" / "batchy" / "replayed") == stored
