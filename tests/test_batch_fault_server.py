"""The fault server's Files and Batches endpoints, driven by the ``openai`` SDK itself."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import openai
import pytest

from harness.testing.fault_server import FaultConfig, FaultServer
from harness.testing.fault_server.batch_faults import BatchFaults


@pytest.fixture()
def server() -> Iterator[FaultServer]:
    with FaultServer(FaultConfig(batch=BatchFaults(polls_to_complete=3))) as s:
        yield s


def _client(server: FaultServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)


def _upload(client: openai.OpenAI, texts: list[str]) -> str:
    lines = [json.dumps({"custom_id": f"id-{i}", "method": "POST", "url": "/v1/chat/completions",
                         "body": {"model": "m", "messages": [{"role": "user", "content": text}]}})
             for i, text in enumerate(texts)]
    data = io.BytesIO(("\n".join(lines) + "\n").encode())
    return client.files.create(file=("in.jsonl", data, "application/jsonl"), purpose="batch").id


def test_a_batch_goes_through_its_states_and_answers_every_line(server: FaultServer) -> None:
    client = _client(server)
    batch = client.batches.create(input_file_id=_upload(client, ["a", "b", "c"]), endpoint="/v1/chat/completions",
                                  completion_window="24h", metadata={"harness_run": "r"})
    assert batch.status == "validating" and batch.request_counts.total == 3
    seen = [client.batches.retrieve(batch.id).status for _ in range(3)]
    assert seen == ["validating", "in_progress", "completed"]
    done = client.batches.retrieve(batch.id)
    assert done.output_file_id and done.error_file_id is None and done.metadata == {"harness_run": "r"}
    lines = [json.loads(line) for line in client.files.content(done.output_file_id).text.splitlines()]
    answers = {line["custom_id"]: line["response"]["body"]["choices"][0]["message"]["content"] for line in lines}
    assert answers == {"id-0": "a", "id-1": "b", "id-2": "c"}


def test_list_pages_newest_first_and_cancel(server: FaultServer) -> None:
    client = _client(server)
    file_id = _upload(client, ["x"])
    ids = [client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions",
                                 completion_window="24h").id for _ in range(3)]
    listed = [b.id for b in client.batches.list(limit=2)]  # the SDK follows `after` to the second page
    assert listed == list(reversed(ids))
    assert client.batches.cancel(ids[0]).status == "cancelling"
    assert client.batches.retrieve(ids[0]).status == "cancelled"
    with pytest.raises(openai.ConflictError):
        client.batches.cancel(ids[0])
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_nope")


def test_faults_429_on_submission_limits_error_file_and_expiry(server: FaultServer) -> None:
    server.config = FaultConfig(batch=BatchFaults(polls_to_complete=1, submit_429=1, max_requests=2,
                                                  error_on={"bad": 400}, expire_first=0))
    client = _client(server)
    small = _upload(client, ["ok", "bad"])
    with pytest.raises(openai.RateLimitError):
        client.batches.create(input_file_id=small, endpoint="/v1/chat/completions", completion_window="24h")
    batch = client.batches.create(input_file_id=small, endpoint="/v1/chat/completions", completion_window="24h")
    done = client.batches.retrieve(batch.id)
    assert done.status == "completed" and done.request_counts.failed == 1
    error = json.loads(client.files.content(done.error_file_id).text)
    assert error["custom_id"] == "id-1" and error["response"]["status_code"] == 400
    too_many = client.batches.create(input_file_id=_upload(client, ["1", "2", "3"]),
                                     endpoint="/v1/chat/completions", completion_window="24h")
    assert too_many.status == "failed" and "over the limit" in too_many.errors.data[0].message
    with pytest.raises(openai.BadRequestError):
        client.batches.create(input_file_id=small, endpoint="/v1/chat/completions", completion_window="1h")
    server.config = FaultConfig(batch=BatchFaults(polls_to_complete=1, expire_first=10, expire_done=0.5))
    expired = client.batches.retrieve(client.batches.create(
        input_file_id=_upload(client, ["1", "2", "3", "4"]), endpoint="/v1/chat/completions",
        completion_window="24h").id)
    assert expired.status == "expired" and expired.request_counts.completed == 2
    lines = client.files.content(expired.error_file_id).text.splitlines()
    codes = [json.loads(line)["error"]["code"] for line in lines]
    assert codes == ["batch_expired", "batch_expired"]
