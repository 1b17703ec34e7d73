"""A run's batch phase, as the pipeline drives it: defer, submit, wait, ingest.

1. During the run's usual pass, a trial of a model that goes by batch is replayed if its recording exists
   (``record-missing``), else its request line is spooled and the trial is *deferred* (no result yet).
2. After the pass, spooled files become chunks (``batches.json``), are uploaded and submitted.
3. The runner waits (``PollSettings.wait``), then ingests every ended batch through the live call path.

A resume loads ``batches.json`` first: trials of chunks not yet ingested are never sent again, by batch or
live, whatever ``--batch``/``--no-batch`` says (those only decide how *new* calls are made).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness.execute.batch.external import check_import, write_export
from harness.execute.batch.ingest import CURRENT_ANSWER, Answer, AnswerIndex, BatchAnswerTransport
from harness.execute.batch.judges import batched_judges, judge_phase
from harness.execute.batch.poll import BatchProgress, PollSettings, progress_note, refresh, wait_for
from harness.execute.batch.requests import BatchLimits, Spool, custom_ids, endpoint_url, request_line
from harness.execute.batch.state import FOLDER, BatchState, Chunk
from harness.execute.batch.submit import submit_chunk
from harness.execute.cassette import slugify
from harness.execute.clients import ClientPool
from harness.execute.provider import (
    NO_KEY_PLACEHOLDER,
    CallFailed,
    Completion,
    call,
    classify,
    make_client,
    resolve_api_key,
)
from harness.execute.replay import RecordingTransport, RecordMode
from harness.execute.scheduler import Attempted, Scheduler
from harness.plan import Trial, iter_trials
from harness.render import Request, render_request
from harness.store import TrialError
from harness.suite.model import ModelSpec, RetrySettings, Suite

if TYPE_CHECKING:  # the SDK is imported where a call is made: a replay answered from cassettes never needs it
    import openai

DEFERRED = "batched"  # the error kind of a trial whose call went into a batch file: not stored
FinishFn = Callable[[Trial, Request, Attempted], Awaitable[None]]


@dataclass
class BatchOptions:
    """How a run uses batches. ``enabled``: True (``--batch``), False (``--no-batch``), None: per model."""

    enabled: bool | None = None
    limits: BatchLimits = field(default_factory=BatchLimits)
    poll: PollSettings = field(default_factory=PollSettings)
    export_to: Path | None = None  # write the request lines here instead of submitting them
    import_from: Path | None = None  # ingest this answer file into the run's exported batches, and do nothing else


def is_deferred(attempted: Attempted) -> bool:
    return attempted.error is not None and attempted.error.kind == DEFERRED


def batch_client(model: ModelSpec) -> openai.AsyncOpenAI:
    """A client for the model's Files and Batches endpoints (needs the key even where replays do not)."""
    return make_client(model, resolve_api_key(model, needed=True), None, 4)


class BatchRunner:
    """The batch side of one run. Build with ``open``; ``None`` when the run uses no batches at all."""

    def __init__(self, suite: Suite, options: BatchOptions, directory: Path, run_key: str, pool: ClientPool,
                 done: set[str], progress: bool) -> None:
        self.suite = suite
        self.options = options
        self.directory = directory
        self.run_key = run_key
        self.pool = pool
        self.done = done
        self.state = BatchState.load(directory)
        self.progress = BatchProgress(progress, None)
        self.notes: list[str] = []
        self.pending = 0  # batches still running at the provider when the runner returns
        self.deferred = 0
        self.too_large = 0  # requests bigger than a whole batch may be, sent live instead
        self._spools: dict[str, Spool] = {}
        self._estimate: float | None = None
        self._clients: dict[str, openai.AsyncOpenAI] = {}
        self._rng = random.Random()
        if options.enabled is False:
            self._drop_unsent()
        self.taken: set[str] = set()  # trial ids of active chunks: never sent again
        self.stored: set[str] = set()  # trial ids this runner stored
        self._update_taken()

    def _update_taken(self) -> None:
        self.taken = set()
        for chunk in self.state.active():
            self.taken.update(custom_ids(chunk.file(self.directory, "requests")))

    @classmethod
    def open(cls, suite: Suite, options: BatchOptions, directory: Path, run_key: str, pool: ClientPool,
             done: set[str], progress: bool) -> BatchRunner | None:
        runner = cls(suite, options, directory, run_key, pool, done, progress)
        if not runner.state.chunks and not any(runner.uses_batch(m) for m in suite.models):
            return None
        return runner

    def _drop_unsent(self) -> None:
        for chunk in self.state.chunks:
            if chunk.phase == "spooled" and not chunk.external:
                self.state.advance(chunk, "ingested", note="never sent; its trials run live (--no-batch)")

    def uses_batch(self, model: ModelSpec) -> bool:
        wanted = model.batch if self.options.enabled is None else self.options.enabled
        return bool(wanted) and self.pool.mode(model.id) is not RecordMode.replay

    def takes(self, trial: Trial, request: Request) -> bool:
        """Whether this trial's call goes by batch. A streamed request (``stream: true``) runs live: a batch
        answers whole, so it could neither send the exact body nor measure a time to first token."""
        return self.uses_batch(trial.model) and not request.body.get("stream")

    def exclude(self, trials: Iterator[Trial]) -> Iterator[Trial]:
        """The trials that no active batch holds (none at all when importing: an import makes no call)."""
        if self.options.import_from is not None:
            return
        for trial in trials:
            if trial.id not in self.taken and trial.id not in self.stored:
                yield trial

    # -- 1. defer ------------------------------------------------------------------------------------------

    async def call_or_defer(self, trial: Trial, request: Request) -> Completion:
        """Replay the trial if recorded (``record-missing``); otherwise spool its request and defer it."""
        model = trial.model
        if self.pool.mode(model.id) is RecordMode.record_missing:
            try:
                return await call(self._client(model, "replay"), request, model.timeout)
            except CallFailed as failure:
                if failure.error.kind != "replay_miss":
                    raise
        line = request_line(trial.id, endpoint_url(model, request), request)
        if len(line) > self.options.limits.max_bytes:
            self.too_large += 1  # no batch can take it: it is sent live, as without --batch
            return await call(self.pool.client(model.id), request, model.timeout)
        spool = self._spools.get(model.id)
        if spool is None:
            prefix = slugify(model.id)
            first = 1 + sum(1 for c in self.state.chunks if c.chunk_id.startswith(prefix + "-"))
            spool = self._spools[model.id] = Spool(self.directory / FOLDER, prefix, self.options.limits, first)
        spool.add(line)
        self.deferred += 1
        self._add_estimate(model, request, len(line))
        raise CallFailed(TrialError(DEFERRED, "sent by batch"), retryable=False)

    def _add_estimate(self, model: ModelSpec, request: Request, size: int) -> None:
        if model.price is None:
            return
        max_tokens = request.body.get("max_completion_tokens", request.body.get("max_tokens"))
        out = max_tokens if isinstance(max_tokens, int) else 0
        # About four bytes of JSON per input token; output at most max_tokens: an estimate, not a bill.
        self._estimate = (self._estimate or 0.0) + model.price.for_batch().cost(size // 4, out)

    def _client(self, model: ModelSpec, role: str) -> openai.AsyncOpenAI:
        name = f"{model.id}\x00{role}"
        client = self._clients.get(name)
        if client is None:
            if role == "batch":
                client = batch_client(model)
            else:
                self.pool.client(model.id)  # opens the model's cassette in the pool, which saves it
                cassette = self.pool.cassette(model.id)
                transport = RecordingTransport(cassette, RecordMode.replay) if role == "replay" \
                    else BatchAnswerTransport(cassette)
                client = make_client(model, NO_KEY_PLACEHOLDER, transport, max(model.max_concurrency, 1))
            self._clients[name] = client
        return client

    # -- 2-3. submit, wait, ingest -------------------------------------------------------------------------

    async def collect(self, finish: FinishFn) -> None:
        """Before a resume's pass: ask once about running batches and ingest those that ended meanwhile, so the
        trials they left unanswered (expired, cancelled) are run by this same pass."""
        if self.options.import_from is not None or not self.state.active():
            return
        models = self.suite.judges  # every model of the suite, graded or judge
        for chunk in self.state.chunks:
            if chunk.phase == "submitted" and chunk.model in models:
                try:
                    await refresh(self._client(models[chunk.model], "batch"), self.state, chunk)
                except Exception as exc:  # noqa: BLE001 - asked again while waiting
                    progress_note(self.progress, f"batch {chunk.chunk_id}: {classify(exc).error.message}")
        for chunk in self.state.chunks:
            if chunk.phase == "ended":
                await self.ingest(chunk, finish)
        self._update_taken()

    async def complete(self, finish: FinishFn) -> None:
        if self.options.import_from is not None:
            for chunk in check_import(self.state, self.options.import_from):
                await self.ingest(chunk, finish, [self.options.import_from])
            self._count_pending()
            return
        fresh = self._register_spools()
        if self.options.export_to is not None:
            lines = write_export(self.state, fresh, self.options.export_to)
            self.notes.append(f"{lines} request line(s) written to {self.options.export_to}")
            self._count_pending()
            return
        await self.submit_and_wait(self.state.chunks)
        for chunk in self.state.chunks:
            if chunk.phase == "ended":
                await self.ingest(chunk, finish)
        self._count_pending()

    def _count_pending(self) -> None:
        self.pending = len(self.state.active())
        running = sum(1 for c in self.state.chunks if c.phase == "submitted")
        if running:
            self.notes.append(f"{running} batch(es) still running at the provider; a resume collects them")
        external = sum(1 for c in self.state.active() if c.external)
        if external:
            self.notes.append(f"{external} exported batch(es) wait for `harness batch import`")

    def _register_spools(self) -> list[Chunk]:
        fresh: list[Chunk] = []
        for model_id, spool in self._spools.items():
            model = self.suite.model(model_id)
            for path, count, size in spool.close():
                endpoint = "/chat/completions" if model.api == "chat" else "/completions"
                if model.provider != "azure":  # Azure names the endpoint without the version prefix
                    endpoint = "/v1" + endpoint
                chunk = Chunk(chunk_id=path.name.removesuffix(".requests.jsonl"), model=model_id,
                              requests=path.name, count=count, size=size, endpoint=endpoint,
                              window=self.options.limits.window)
                fresh.append(chunk)
        self.state.chunks.extend(fresh)
        self._spools.clear()
        self.state.save()
        if self.deferred:
            self.notes.append(f"{self.deferred} trial(s) sent by batch")
        if self.too_large:
            self.notes.append(f"{self.too_large} request(s) larger than --batch-max-bytes were sent live")
        return fresh

    async def ingest(self, chunk: Chunk, finish: FinishFn, answers: list[Path] | None = None) -> None:
        """Grade and store a chunk's answers; trials left unanswered stay pending for a resume. With judges
        to batch, their calls go by batch first (``judges``); while those run, the chunk waits (``ended``)."""
        if chunk.kind == "judge":
            return  # recorded by its parent's judge phase
        judges = batched_judges(self.suite, self.pool) \
            if answers is None and self.options.enabled is not False else []
        if judges and not await judge_phase(self, chunk, judges):
            return
        counts, left = await self.answers_pass(chunk, finish, answers)
        summary = f"batch {chunk.chunk_id} ({chunk.status or 'external'}): {counts['stored']} answer(s) stored"
        if counts["not run"] or left:
            summary += f", {counts['not run'] + left} trial(s) not answered (left for a resume)"
        if counts["unknown"]:
            summary += f", {counts['unknown']} answer(s) for no trial of this run ignored"
        self.notes.append(summary + (f" — {chunk.note}" if chunk.note else ""))
        progress_note(self.progress, summary)
        self.state.advance(chunk, "ingested")

    async def answers_pass(self, chunk: Chunk, finish: FinishFn, answers: list[Path] | None = None,
                           probe: bool = False) -> tuple[dict[str, int], int]:
        """Run a chunk's answers through ``finish`` (the live path's grading and storing, or a judge probe)."""
        ids = set(custom_ids(chunk.file(self.directory, "requests")))
        model = self.suite.model(chunk.model)
        client = self._client(model, "answers")
        index = AnswerIndex(answers or [chunk.file(self.directory, k) for k in ("output", "errors")])
        waiting: dict[str, Answer] = {}
        counts = {"stored": 0, "not run": 0, "unknown": 0}
        if answers is None:  # a shared import file answers other chunks too
            counts["unknown"] = index.repeated + sum(1 for custom_id in index.where if custom_id not in ids)

        def produce() -> Iterator[Trial]:
            # In plan order, so only the trials being graded are held; each answer is read when needed.
            for trial in iter_trials(self.suite, models=[chunk.model]):
                if trial.id not in ids or trial.id not in index.where or trial.id in self.done:
                    continue
                answer = index.read(trial.id)
                if not answer.ran:
                    counts["not run"] += 1
                    continue
                waiting[trial.id] = answer
                counts["stored"] += 1
                if not probe:
                    self.stored.add(trial.id)
                yield trial

        async def answer_call(trial: Trial, request: Request) -> Completion:
            token = CURRENT_ANSWER.set(waiting.pop(trial.id))
            try:
                return await call(client, request, trial.model.timeout)
            finally:
                CURRENT_ANSWER.reset(token)

        scheduler = Scheduler(
            render=lambda t: render_request(self.suite, t.prompt, t.model, t.case, t.temperature, t.repeat),
            call=answer_call, finish=finish, retry=RetrySettings(max_attempts=1, outage_after=1 << 30),
            concurrency={model.id: max(model.max_concurrency, 1)},
        )
        try:
            await scheduler.run(produce())
        finally:
            index.close()
        left = sum(1 for trial_id in ids if trial_id not in index.where and trial_id not in self.done)
        return counts, left

    async def submit_and_wait(self, chunks: list[Chunk]) -> None:
        """Submit the chunks not yet submitted, then wait for those running (as the run's options say)."""
        for chunk in chunks:
            if chunk.phase in ("spooled", "submitting") and not chunk.external:
                await submit_chunk(self._client(self.suite.judges[chunk.model], "batch"), self.state, chunk,
                                   self.run_key, self.suite.retry, self._rng)
        waiting = [c for c in chunks if c.phase == "submitted"]
        if waiting and self.options.poll.wait != 0:
            self.progress.estimate = self._estimate
            await wait_for(waiting, lambda c: self._client(self.suite.judges[c.model], "batch"), self.state,
                           self.options.poll, self.progress)

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()


def describe(chunk: Chunk) -> dict[str, object]:
    """A chunk as ``harness batches`` shows it."""
    return {"chunk": chunk.chunk_id, "kind": chunk.kind, "model": chunk.model, "batch": chunk.batch_id or "-",
            "phase": chunk.phase, "status": chunk.status or "-", "requests": chunk.count,
            "completed": chunk.counts.get("completed", "?"), "failed": chunk.counts.get("failed", "?"),
            "note": chunk.note}
