"""Judge calls by batch: a second phase, after a batch's answers are in and before they are graded for good.

1. A *probe* grades the answers once with judge clients that answer from the judge cassette when they can and
   otherwise write the judge request (its exact body) to a judge request file, failing that vote as a replay
   miss. Nothing is stored.
2. The judge files are submitted, waited for and their answers recorded into the judge cassettes, exactly as
   live judge recordings (``make_interaction`` / ``Cassette.record``, with the batch marker).
3. The answers are then graded for good: every judge call now replays. A judge call the batch could not
   answer (a 5xx, an expiry) is made live at that point, as without batching.

Only judges in ``record-missing`` mode are batched: in ``record`` mode the final grading would call every
judge again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import httpx2

from harness.execute.batch.ingest import read_answers, reason_phrase
from harness.execute.batch.requests import BatchLimits, Spool, endpoint_url, request_line
from harness.execute.batch.state import FOLDER, BatchState, Chunk
from harness.execute.cassette import BATCH_HEADER, Cassette, make_interaction, match_key, slugify
from harness.execute.clients import ClientPool
from harness.execute.provider import NO_KEY_PLACEHOLDER, make_client
from harness.execute.replay import SAMPLE_HEADER, RecordMode, ReplayMiss, is_recordable, note_recorded, rebuild_response
from harness.execute.scheduler import Attempted
from harness.plan import Trial
from harness.render import Request
from harness.suite.model import ModelSpec, Suite

if TYPE_CHECKING:  # the SDK is imported where a call is made: a replay answered from cassettes never needs it
    import openai

if TYPE_CHECKING:
    from harness.execute.batch.runner import BatchRunner

PREFIX = "judge-"


def batched_judges(suite: Suite, pool: ClientPool) -> list[ModelSpec]:
    """The judge models whose calls can go by batch: used by a judge grader, recording what is missing."""
    used = {getattr(g.grader, "model", None) for g in suite.graders if g.type == "judge"}
    for case in suite.iter_cases():
        used.update(getattr(g.grader, "model", None) for g in case.graders if g.type == "judge")
    return [m for m_id, m in suite.judges.items()
            if m_id in used and pool.mode(m_id) is RecordMode.record_missing]


class JudgeSpool:
    """Judge requests without a recording, per judge model: a request file (spooled within the limits) and a
    meta file that says how to record each answer (match key, path, sample)."""

    def __init__(self, directory: Path, parent: Chunk, limits: BatchLimits) -> None:
        self.directory = directory
        self.parent = parent
        self.limits = limits
        self.spools: dict[str, Spool] = {}
        self.metas: dict[str, IO[str]] = {}
        self.seen: set[str] = set()

    def add(self, model: ModelSpec, key: str, path: str, sample: str, body: bytes) -> None:
        if key in self.seen:
            return  # the same judge request for two answers: one line, one recording, both replay it
        self.seen.add(key)
        spool = self.spools.get(model.id)
        if spool is None:
            prefix = f"{self.parent.chunk_id}.{slugify(model.id)}-judge"
            spool = self.spools[model.id] = Spool(self.directory / FOLDER, prefix, self.limits)
            self.metas[model.id] = (self.directory / FOLDER / f"{prefix}.meta.jsonl").open("w", encoding="utf-8")
        custom_id = PREFIX + key[:40]
        request = Request(api="chat", body=json.loads(body), sample=sample)
        spool.add(request_line(custom_id, endpoint_url(model, request), request))
        self.metas[model.id].write(json.dumps({"custom_id": custom_id, "key": key, "path": path,
                                               "sample": sample}) + "\n")

    def close(self, state: BatchState) -> list[Chunk]:
        """Register the judge files as chunks of ``state`` (phase ``spooled``), children of the parent."""
        fresh = []
        for model_id, spool in self.spools.items():
            self.metas[model_id].close()
            for path, count, size in spool.close():
                fresh.append(Chunk(chunk_id=path.name.removesuffix(".requests.jsonl"), model=model_id,
                                   requests=path.name, count=count, size=size, endpoint=self.parent.endpoint,
                                   window=self.limits.window, kind="judge", parent=self.parent.chunk_id))
        state.chunks.extend(fresh)
        state.save()
        return fresh


class ProbeTransport(httpx2.AsyncBaseTransport):
    """Answers a judge request from its cassette, or spools it and fails it as a replay miss."""

    def __init__(self, model: ModelSpec, cassette: Cassette | None, spool: JudgeSpool) -> None:
        self.model = model
        self.cassette = cassette
        self.spool = spool

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = await request.aread()
        path = request.url.raw_path.decode("ascii")
        sample = request.headers.get(SAMPLE_HEADER, "")
        key = match_key(request.method, path, sample, body)
        found = self.cassette.lookup(key) if self.cassette is not None else None
        if found is not None:
            note_recorded(found)
            return rebuild_response(found, request)
        self.spool.add(self.model, key, path, sample, body)
        raise ReplayMiss(key=key, method=request.method, path=path, sample=sample, summary="sent by batch",
                         cassette=str(self.cassette.path if self.cassette else "-"), request=request)


class ProbePool:
    """The run's client pool, but judge clients probe (``ProbeTransport``) instead of calling."""

    def __init__(self, pool: ClientPool, judges: list[ModelSpec], spool: JudgeSpool) -> None:
        self._pool = pool
        self._judges = {m.id: m for m in judges}
        self._spool = spool
        self._clients: dict[str, openai.AsyncOpenAI] = {}

    def judge_client(self, model_id: str) -> openai.AsyncOpenAI:
        if model_id not in self._judges:
            return self._pool.judge_client(model_id)
        client = self._clients.get(model_id)
        if client is None:
            self._pool.judge_client(model_id)  # opens the judge cassette in the pool, which saves it
            model = self._judges[model_id]
            transport = ProbeTransport(model, self._pool.cassette(f"{model_id}.judge"), self._spool)
            client = self._clients[model_id] = make_client(model, NO_KEY_PLACEHOLDER, transport, 8)
        return client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.close()


def record_judge_answers(directory: Path, chunk: Chunk, cassette: Cassette | None) -> int:
    """Record an ended judge chunk's answers into the judge cassette; return how many were recorded."""
    if cassette is None:
        return 0
    prefix = chunk.chunk_id.rsplit("-", 1)[0]
    meta = {}
    with (directory / FOLDER / f"{prefix}.meta.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            item = json.loads(line)
            meta[item["custom_id"]] = item
    bodies = {}
    with chunk.file(directory, "requests").open("rb") as fh:
        for line in fh:
            item = json.loads(line)
            bodies[item["custom_id"]] = json.dumps(item["body"]).encode("utf-8")
    recorded = 0
    for kind in ("output", "errors"):
        path = chunk.file(directory, kind)
        if not path.exists():
            continue
        for answer in read_answers(path):
            item = meta.get(answer.custom_id)
            if item is None or answer.status is None or not is_recordable(answer.status):
                continue  # a judge call the batch did not answer is made live when the answer is graded
            interaction = make_interaction(
                key=item["key"], method="POST", uri=item["path"], sample=item["sample"],
                request_body=bodies[answer.custom_id], request_headers=[("content-type", "application/json")],
                status=answer.status, reason=reason_phrase(answer.status), content=answer.body,
                response_headers=[("content-type", "application/json"), (BATCH_HEADER, "1")],
            )
            recorded += cassette.record(interaction)
    return recorded


async def judge_phase(runner: BatchRunner, chunk: Chunk, judges: list[ModelSpec]) -> bool:
    """Probe ``chunk``'s answers for judge calls, batch them, record their answers; True once every judge
    batch of the chunk is in (the answers can then be graded for good), False while some still run."""
    state = runner.state
    if not chunk.judges_probed:
        spool = JudgeSpool(runner.directory, chunk, runner.options.limits)
        probe = ProbePool(runner.pool, judges, spool)

        async def probe_finish(trial: Trial, request: Request, attempted: Attempted) -> None:
            from harness.pipeline import grade_trial  # the pipeline imports this package

            if attempted.completion is not None:
                await grade_trial(runner.suite, trial, request, attempted, {"clients": probe})

        try:
            await runner.answers_pass(chunk, probe_finish, probe=True)
        finally:
            await probe.aclose()
        children = spool.close(state)
        state.advance(chunk, chunk.phase, judges_probed=True)
        if children:
            runner.notes.append(f"batch {chunk.chunk_id}: {sum(c.count for c in children)} judge call(s) sent by batch")
    children = [c for c in state.chunks if c.parent == chunk.chunk_id]
    await runner.submit_and_wait(children)
    if any(c.phase in ("spooled", "submitting", "submitted") for c in children):
        return False
    for child in children:
        if child.phase == "ended":
            runner.pool.judge_client(child.model)  # opens the judge cassette
            cassette = runner.pool.cassette(f"{child.model}.judge")
            record_judge_answers(runner.directory, child, cassette)
            state.advance(child, "ingested")
    return True
