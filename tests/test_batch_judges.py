"""Judge calls by batch: a second batch after the answers, recorded into the judge cassette, replayed after."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_batch_fixtures import batch_options, results, state
from test_judge_fixtures import JUDGE_RULES, write_judged_suite

from harness.execute.cassette import BATCH_HEADER, Cassette, cassette_path
from harness.pipeline import RunOptions, run_suite
from harness.suite import load_suite
from harness.testing.fault_server import FaultConfig, FaultServer
from harness.testing.fault_server.batch_faults import BatchFaults


def _run(path: Path, tmp: Path, run_id: str, record: str, batch: bool) -> object:
    options = RunOptions(reports_root=tmp / "reports", run_id=run_id, record=record, progress=False,
                         batch=batch_options(enabled=batch))
    return run_suite(load_suite(path), options)


def test_judge_calls_go_by_batch_after_the_answers_and_replay_offline(tmp_path: Path) -> None:
    with FaultServer(FaultConfig(rules=JUDGE_RULES)) as server:
        path = write_judged_suite(tmp_path, server.base_url, ("France", "Spain", "Italy"))
        batched = _run(path, tmp_path, "batched", "record-missing", True)
        assert batched.manifest.status == "complete"
        assert server.stats()["by_path"].get("/v1/chat/completions", 0) == 0  # neither answers nor judges live
        chunks = state(batched.directory)
        assert [(c["kind"], c["count"], c["phase"]) for c in chunks] == \
            [("trials", 3, "ingested"), ("judge", 3, "ingested")]
        assert server.stats()["batches"]["batches_created"] == 2
    stored = results(batched)
    verdicts = {r["case_id"]: r["passed"] for r in stored.values()}
    assert verdicts == {"france": True, "italy": True, "spain": False}
    for record in stored.values():  # judge calls answered by batch are billed at half the judge's 3.0
        usage = record["judge_usage"]
        assert record["judge_cost"] == pytest.approx((usage["prompt_tokens"] + usage["completion_tokens"]) * 1.5 / 1e6)
    judge = Cassette(cassette_path(tmp_path / "cassettes", "judged", "strict-judge.judge"))
    assert len(judge) == 3 and all(BATCH_HEADER in i.response["headers"] for i in judge._index.values())
    replayed = _run(path, tmp_path, "replayed", "replay", False)  # the server is gone
    assert replayed.manifest.status == "complete"
    assert results(replayed) == stored


def test_judge_batches_across_resumes_with_wait_none(tmp_path: Path) -> None:
    # A batch is done at its first status request: each resume finds the previous step's batch finished.
    with FaultServer(FaultConfig(rules=JUDGE_RULES, batch=BatchFaults(polls_to_complete=1))) as server:
        path = write_judged_suite(tmp_path, server.base_url, ("France", "Spain", "Italy"))

        def again(wait: float | None, resume: bool) -> object:
            options = RunOptions(reports_root=tmp_path / "reports", run_id="ci", record="record-missing",
                                 resume=resume, progress=False, batch=batch_options(enabled=True, wait=wait))
            return run_suite(load_suite(path), options)

        first = again(0, resume=False)
        assert first.batches_pending == 1 and not results(first)
        second = again(0, resume=True)  # the answers are in; their judge calls are submitted, not waited for
        assert not results(second) and [c["kind"] for c in state(second.directory)] == ["trials", "judge"]
        third = again(None, resume=True)
        assert third.manifest.status == "complete" and len(results(third)) == 3
        assert server.stats()["batches"]["batches_created"] == 2
        assert server.stats()["by_path"].get("/v1/chat/completions", 0) == 0
