"""Batch answers into the run and the cassette, through the very path a live call takes.

Each answer is handed to ``provider.call`` as the HTTP response to the trial's own request: a
``BatchAnswerTransport`` under the SDK answers with it and records it into the model's cassette exactly as a
live recording is made (``make_interaction`` / ``Cassette.record``), so the SDK parses it, ``classify`` judges
its failures, the grader and the store see what a live call gives, and a later ``--record replay`` without
``--batch`` replays the batch run identically. Recordings carry the batch marker (no latency of their own,
billed at the batch rate), which replays keep.

Answer files are read a line at a time; lines are matched to trials by ``custom_id`` (output order is not
input order), and every malformed line is reported with its file and line number.
"""

from __future__ import annotations

import contextvars
import http
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx2

from harness.errors import HarnessError
from harness.execute.cassette import BATCH_HEADER, Cassette, make_interaction, match_key
from harness.execute.replay import SAMPLE_HEADER, is_recordable, note_recorded, rebuild_response

# Error codes of lines a batch never ran (the window closed, the batch was cancelled or failed): their trials
# stay pending, for a resume, instead of being stored as errors.
NOT_RUN_CODES = frozenset({"batch_expired", "batch_cancelled", "batch_failed"})


class AnswerFileError(HarnessError):
    """A line of an answer file that is not a batch answer; the message names the file and line."""


@dataclass(frozen=True)
class Answer:
    """One line of an output or error file."""

    custom_id: str
    status: int | None  # None: the request never ran (``error`` says why)
    body: bytes
    error: str | None = None
    code: str | None = None

    @property
    def ran(self) -> bool:
        return self.status is not None


def parse_answer(raw: bytes, where: str) -> Answer:
    """Parse one answer line (OpenAI's batch output format, as vLLM's ``run-batch`` writes it too)."""
    try:
        item = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise AnswerFileError(f"{where}: not JSON ({type(exc).__name__}: {exc})") from None
    if not isinstance(item, dict):
        raise AnswerFileError(f"{where}: expected a JSON object, got {type(item).__name__}")
    custom_id = item.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        raise AnswerFileError(f"{where}: custom_id: missing or not a string")
    response, error = item.get("response"), item.get("error")
    if response is None:
        if not isinstance(error, dict):
            raise AnswerFileError(f"{where}: neither a response nor an error for custom_id {custom_id!r}")
        return Answer(custom_id, None, b"", str(error.get("message") or error), str(error.get("code") or ""))
    if not isinstance(response, dict):
        raise AnswerFileError(f"{where}: response: expected an object")
    status = response.get("status_code")
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise AnswerFileError(f"{where}: response.status_code: expected an HTTP status, got {status!r}")
    body = response.get("body")
    if body is None:
        raise AnswerFileError(f"{where}: response.body: missing")
    content = body.encode("utf-8") if isinstance(body, str) else \
        json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Answer(custom_id, status, content)


class AnswerIndex:
    """Where each custom id's answer is in a set of answer files (file, byte offset, line), built by streaming
    them once: a few dozen bytes per answer in memory instead of the answers, so trials can be taken in plan
    order (never all held) and each answer read back when its trial's turn comes. Repeated ids keep the first."""

    def __init__(self, files: list[Path]) -> None:
        self.files = [path for path in files if path.exists()]
        self.where: dict[str, tuple[int, int, int]] = {}
        self.repeated = 0
        self._handles: dict[int, IO[bytes]] = {}
        for index, path in enumerate(self.files):
            offset = 0
            with path.open("rb") as fh:
                for number, raw in enumerate(fh, start=1):
                    if raw.strip():
                        custom_id = parse_answer(raw, f"{path}:{number}").custom_id
                        if custom_id in self.where:
                            self.repeated += 1
                        else:
                            self.where[custom_id] = (index, offset, number)
                    offset += len(raw)

    def read(self, custom_id: str) -> Answer:
        index, offset, number = self.where[custom_id]
        handle = self._handles.get(index)
        if handle is None:
            handle = self._handles[index] = self.files[index].open("rb")
        handle.seek(offset)
        return parse_answer(handle.readline(), f"{self.files[index]}:{number}")

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()


def read_answers(path: Path) -> Iterator[Answer]:
    """The answers of one file, streamed; raises ``AnswerFileError`` at the first bad line."""
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if raw.strip():
                yield parse_answer(raw, f"{path}:{number}")


def check_answers(path: Path, known: set[str] | None, limit: int = 20) -> list[str]:
    """Every problem of an answer file (bad lines, unknown or repeated custom ids), streamed, up to ``limit``."""
    problems: list[str] = []
    seen: set[str] = set()
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            where = f"{path}:{number}"
            try:
                answer = parse_answer(raw, where)
            except AnswerFileError as exc:
                problems.append(str(exc))
            else:
                if known is not None and answer.custom_id not in known:
                    problems.append(f"{where}: custom_id {answer.custom_id!r} is not a trial of this run")
                elif answer.custom_id in seen:
                    problems.append(f"{where}: custom_id {answer.custom_id!r} answered twice")
                seen.add(answer.custom_id)
            if len(problems) >= limit:
                problems.append("… (stopped after this many problems)")
                break
    return problems


# The answer for the call being made: set by the caller around ``provider.call``, read by the transport.
CURRENT_ANSWER: contextvars.ContextVar[Answer | None] = contextvars.ContextVar("harness_batch_answer", default=None)


class BatchAnswerTransport(httpx2.AsyncBaseTransport):
    """Answers each request with ``CURRENT_ANSWER`` and records the exchange as a live recording would be."""

    def __init__(self, cassette: Cassette | None) -> None:
        self.cassette = cassette
        self.recorded = 0

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        answer = CURRENT_ANSWER.get()
        if answer is None or answer.status is None:
            raise RuntimeError("a batch answer transport was called without an answer")
        body = await request.aread()
        path = request.url.raw_path.decode("ascii")
        sample = request.headers.get(SAMPLE_HEADER, "")
        key = match_key(request.method, path, sample, body)
        reason = reason_phrase(answer.status)
        interaction = make_interaction(
            key=key, method=request.method, uri=path, sample=sample, request_body=body,
            request_headers=request.headers.multi_items(), status=answer.status, reason=reason,
            response_headers=[("content-type", "application/json"), (BATCH_HEADER, "1")], content=answer.body,
        )
        if self.cassette is not None and is_recordable(answer.status) and self.cassette.record(interaction):
            self.recorded += 1
        note_recorded(interaction)
        return rebuild_response(interaction, request)


def reason_phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def answer_context(answer: Answer) -> contextvars.Token[Any]:
    return CURRENT_ANSWER.set(answer)
