"""Batch execution in-process against the fault server's Files and Batches endpoints."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_batch_fixtures import batch_options, results, run, state, write_suite

from harness.errors import HarnessError
from harness.execute.batch.ingest import check_answers
from harness.execute.cassette import BATCH_HEADER, Cassette, cassette_path
from harness.plan import count_trials
from harness.report.build import build_report
from harness.suite import load_suite
from harness.testing.fault_server import FaultConfig, FaultServer
from harness.testing.fault_server.batch_faults import BatchFaults


@pytest.fixture()
def server() -> Iterator[FaultServer]:
    with FaultServer(FaultConfig()) as s:
        yield s


def _cassette(suite_path: Path) -> Cassette:
    return Cassette(cassette_path(suite_path.parent / "cassettes", "batchy", "fault-server"))


def test_whole_suite_by_batch_then_replayed_offline_identically(server: FaultServer, tmp_path: Path) -> None:
    path = write_suite(tmp_path, server.base_url, n_cases=8, repeats=2)
    batched = run(path, tmp_path, "batched", batch=batch_options())
    assert batched.manifest.status == "complete"
    stats = server.stats()
    assert stats["batches"]["batches_created"] == 1
    assert stats["batches"]["requests_submitted"] == 16
    assert stats["by_path"].get("/v1/chat/completions", 0) == 0  # not one live call
    first = results(batched)
    assert len(first) == 16 and all(r["batch"] and r["passed"] for r in first.values())
    assert all(r["latency_ms"] is None for r in first.values())  # a batch answer has no response time
    # Every recording is marked as a batch answer, and a replay (no --batch, no server) gives the same records.
    cassette = _cassette(path)
    assert len(cassette) == 16
    assert all(BATCH_HEADER in json.dumps(i.response) for i in cassette._index.values())
    server.stop()
    replayed = run(path, tmp_path, "replayed", record="replay")
    assert replayed.manifest.status == "complete"
    assert results(replayed) == first


def test_output_order_is_not_input_order_and_answers_match_their_trials(server: FaultServer, tmp_path: Path) -> None:
    path = write_suite(tmp_path, server.base_url, n_cases=12)
    outcome = run(path, tmp_path, "order", batch=batch_options())
    chunk = state(outcome.directory)[0]
    sent = [json.loads(line)["custom_id"] for line in
            (outcome.directory / "batches" / chunk["requests"]).read_text().splitlines()]
    answered = [json.loads(line)["custom_id"] for line in
                (outcome.directory / "batches" / f"{chunk['chunk_id']}.output.jsonl").read_text().splitlines()]
    assert sorted(sent) == sorted(answered) and sent != answered
    for record in results(outcome).values():
        assert record["output"] == record["request"]["messages"][-1]["content"]


def test_cost_is_at_the_batch_price(server: FaultServer, tmp_path: Path) -> None:
    path = write_suite(tmp_path, server.base_url, n_cases=4, price="{input: 2.0, output: 4.0}")
    live = results(run(path, tmp_path, "live", record="live"))
    batched = results(run(path, tmp_path, "batched", record="live", batch=batch_options()))
    assert live.keys() == batched.keys()
    for trial_id, record in batched.items():
        usage = record["usage"]
        assert usage == live[trial_id]["usage"]
        assert record["cost"] == pytest.approx((usage["prompt_tokens"] * 1.0 + usage["completion_tokens"] * 2.0) / 1e6)
        assert live[trial_id]["cost"] == pytest.approx(2 * record["cost"])
    notes = build_report(tmp_path / "reports" / "batchy" / "batched").notes
    assert any(note.startswith("4 of 4 trials ran by batch") for note in notes)
    assert not any("by batch" in note for note in build_report(tmp_path / "reports" / "batchy" / "live").notes)
    explicit = write_suite(tmp_path, server.base_url, n_cases=4,
                           price="{input: 2.0, output: 4.0, batch: {input: 0.5, output: 3.0}}")
    for record in results(run(explicit, tmp_path, "explicit", record="record", batch=batch_options())).values():
        usage = record["usage"]
        assert record["cost"] == pytest.approx((usage["prompt_tokens"] * 0.5 + usage["completion_tokens"] * 3.0) / 1e6)


@pytest.mark.parametrize("limit", [{"max_requests": 4}, {"max_bytes": 700}])
def test_limits_split_a_suite_into_several_batches(server: FaultServer, tmp_path: Path, limit: dict[str, int]) -> None:
    server.config = FaultConfig(batch=BatchFaults(max_requests=limit.get("max_requests", 50_000),
                                                  max_bytes=limit.get("max_bytes", 1 << 30)))
    path = write_suite(tmp_path, server.base_url, n_cases=15)
    outcome = run(path, tmp_path, "split", batch=batch_options(**limit))
    chunks = state(outcome.directory)
    assert len(chunks) == server.stats()["batches"]["batches_created"] > 2
    assert sum(c["count"] for c in chunks) == 15
    assert all(c["count"] <= limit.get("max_requests", 15) and c["size"] <= limit.get("max_bytes", 1 << 30)
               for c in chunks)
    assert all(c["status"] == "completed" for c in chunks)  # the server enforces the same limits
    assert len(results(outcome)) == 15 and outcome.manifest.status == "complete"


def test_error_file_lines_become_trial_errors_with_the_providers_message(server: FaultServer, tmp_path: Path) -> None:
    server.config = FaultConfig(batch=BatchFaults(error_on={"case 3": 400, "case 5": 500}))
    path = write_suite(tmp_path, server.base_url, n_cases=8)
    outcome = run(path, tmp_path, "errors", batch=batch_options())
    by_case = {r["case_id"]: r for r in results(outcome).values()}
    assert len(by_case) == 8
    assert by_case["c003"]["error"]["kind"] == "client" and by_case["c003"]["error"]["status"] == 400
    assert "injected 400" in by_case["c003"]["error"]["message"]
    assert by_case["c005"]["error"]["kind"] == "server" and "injected 500" in by_case["c005"]["error"]["message"]
    assert all(by_case[c]["passed"] for c in by_case if c not in ("c003", "c005"))
    # The 400 is final (recorded, as a live 400 would be); the 500 is redone by a resume, live this time.
    assert outcome.unfinished_errors == {"server": 1}
    resumed = run(path, tmp_path, "errors", resume=True, batch=batch_options(enabled=False))
    assert resumed.manifest.status == "complete"
    assert results(resumed)[by_case["c005"]["trial_id"]]["passed"] is True
    assert server.stats()["by_path"]["/v1/chat/completions"] == 1


def test_expired_batch_leaves_its_trials_for_a_resume_with_no_batch(server: FaultServer, tmp_path: Path) -> None:
    server.config = FaultConfig(batch=BatchFaults(expire_first=1, expire_done=0.5))
    path = write_suite(tmp_path, server.base_url, n_cases=10)
    first = run(path, tmp_path, "expiry", batch=batch_options())
    assert state(first.directory)[0]["status"] == "expired"
    done = results(first)
    assert len(done) == 5 and first.manifest.status == "incomplete"
    resumed = run(path, tmp_path, "expiry", resume=True, batch=batch_options(enabled=False))
    assert resumed.manifest.status == "complete"
    everything = results(resumed)
    assert len(everything) == 10 and all(r["passed"] for r in everything.values())
    assert {k: v for k, v in everything.items() if k in done} == done  # nothing redone
    assert sum(not r["batch"] for r in everything.values()) == 5
    assert server.stats()["by_path"]["/v1/chat/completions"] == 5  # exactly the unfinished ones, live
    assert server.stats()["batches"]["batches_created"] == 1


def test_expired_batch_resumed_by_batch_again(server: FaultServer, tmp_path: Path) -> None:
    server.config = FaultConfig(batch=BatchFaults(expire_first=1, expire_done=0.3))
    path = write_suite(tmp_path, server.base_url, n_cases=10)
    run(path, tmp_path, "again", batch=batch_options())
    resumed = run(path, tmp_path, "again", resume=True, batch=batch_options())
    assert resumed.manifest.status == "complete" and len(results(resumed)) == 10
    chunks = state(resumed.directory)
    assert [c["count"] for c in chunks] == [10, 7] and server.stats()["batches"]["requests_submitted"] == 17


def test_a_429_on_submission_is_retried(server: FaultServer, tmp_path: Path) -> None:
    server.config = FaultConfig(batch=BatchFaults(submit_429=2))
    path = write_suite(tmp_path, server.base_url, n_cases=3)
    outcome = run(path, tmp_path, "limited", batch=batch_options())
    assert outcome.manifest.status == "complete"
    assert server.stats()["batches"]["submit_attempts"] == 3
    assert server.stats()["batches"]["batches_created"] == 1


def test_batch_true_per_model_and_recorded_trials_replay_instead(server: FaultServer, tmp_path: Path) -> None:
    path = write_suite(tmp_path, server.base_url, n_cases=6, batch_flag=True)
    suite = load_suite(path)
    assert suite.models[0].batch
    assert run(path, tmp_path, "some", batch=batch_options(enabled=None)).manifest.status == "complete"
    more = write_suite(tmp_path, server.base_url, n_cases=9, batch_flag=True)
    outcome = run(more, tmp_path, "more", batch=batch_options(enabled=None))
    assert outcome.manifest.status == "complete" and len(results(outcome)) == count_trials(load_suite(more))
    assert server.stats()["batches"]["requests_submitted"] == 6 + 3  # the recorded six were replayed


def test_wait_none_submits_and_a_resume_collects(server: FaultServer, tmp_path: Path) -> None:
    path = write_suite(tmp_path, server.base_url, n_cases=5)
    first = run(path, tmp_path, "later", batch=batch_options(wait=0))
    assert first.batches_pending == 1 and not (first.directory / "results.jsonl").read_text()
    assert state(first.directory)[0]["phase"] == "submitted"
    resumed = run(path, tmp_path, "later", resume=True, batch=batch_options(enabled=False))
    assert resumed.manifest.status == "complete" and len(results(resumed)) == 5
    assert server.stats()["batches"]["batches_created"] == 1
    assert server.stats()["by_path"].get("/v1/chat/completions", 0) == 0


def test_a_kill_between_create_and_saving_the_id_does_not_submit_twice(server: FaultServer, tmp_path: Path) -> None:
    path = write_suite(tmp_path, server.base_url, n_cases=4)
    first = run(path, tmp_path, "lost-id", batch=batch_options(wait=0))
    # What a kill right after batches.create returned leaves behind: the intent, but no batch id.
    data = json.loads((first.directory / "batches.json").read_text())
    data["chunks"][0].update(phase="submitting", batch_id=None, status=None)
    (first.directory / "batches.json").write_text(json.dumps(data))
    resumed = run(path, tmp_path, "lost-id", resume=True, batch=batch_options())
    assert resumed.manifest.status == "complete" and len(results(resumed)) == 4
    assert server.stats()["batches"]["batches_created"] == 1
    assert state(resumed.directory)[0]["note"] == "found after an interrupted submission"


def test_a_request_too_large_for_any_batch_is_sent_live(server: FaultServer, tmp_path: Path) -> None:
    path = write_suite(tmp_path, server.base_url, n_cases=3)
    outcome = run(path, tmp_path, "huge", batch=batch_options(max_bytes=60))
    assert outcome.manifest.status == "complete" and len(results(outcome)) == 3
    assert server.stats()["batches"]["batches_created"] == 0
    assert server.stats()["by_path"]["/v1/chat/completions"] == 3
    assert any("larger than --batch-max-bytes were sent live" in note for note in outcome.notes)


def test_answer_file_problems_name_their_lines(tmp_path: Path) -> None:
    good = {"custom_id": "a", "response": {"status_code": 200, "body": {"choices": []}}}
    lines = [
        json.dumps(good),
        json.dumps({**good, "custom_id": "zzz"}),                          # 2: not a trial
        "[" * 100_000 + "]" * 100_000,                                    # 3: nested past the parser's depth
        json.dumps(["not", "an", "object"]),                              # 4
        json.dumps({"custom_id": "b", "response": {"status_code": 200}}),  # 5: no body
        "",                                                               # blank lines are skipped
        json.dumps(good),                                                 # 7: answered twice
        json.dumps({"custom_id": "b", "response": None, "error": None}),   # 8: neither
    ]
    path = tmp_path / "answers.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    problems = check_answers(path, {"a", "b"})
    assert [p.split(": ", 1)[0] for p in problems] == [f"{path}:{n}" for n in (2, 3, 4, 5, 7, 8)]
    assert "not a trial of this run" in problems[0] and "RecursionError" in problems[1]
    assert "answered twice" in problems[4]


@pytest.mark.parametrize(("line", "field"), [
    ("    batch: yes please\n", "models[0].batch"),
    ("    price: {input: 1.0, output: 2.0, batch: {input: -1, output: 1}}\n", "models[0].price.batch.input"),
    ("    price: {input: 1.0, output: 2.0, batch: {input: 0.5, speed: 2}}\n", "models[0].price.batch"),
])
def test_validate_names_a_bad_batch_setting(tmp_path: Path, line: str, field: str) -> None:
    path = write_suite(tmp_path, "http://127.0.0.1:9/v1", n_cases=1)
    text = path.read_text(encoding="utf-8").replace("    max_concurrency: 3\n", "    max_concurrency: 3\n" + line)
    if "price:" in line:
        text = text.replace("    price: {input: 2.0, output: 4.0}\n", "")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(HarnessError) as caught:
        load_suite(path)
    assert field in str(caught.value) and "suite.yaml:" in str(caught.value)


def test_a_tampered_batch_state_cannot_point_outside_the_run(server: FaultServer, tmp_path: Path) -> None:
    path = write_suite(tmp_path, server.base_url, n_cases=2)
    first = run(path, tmp_path, "tampered", batch=batch_options(wait=0))
    data = json.loads((first.directory / "batches.json").read_text())
    data["chunks"][0]["chunk_id"] = "../../../escape"
    (first.directory / "batches.json").write_text(json.dumps(data))
    with pytest.raises(HarnessError, match="not a plain file name"):
        run(path, tmp_path, "tampered", resume=True, batch=batch_options())
    assert not (tmp_path / "escape.output.jsonl").exists()
