"""Batches for other engines: export a run's request lines to one file, import the engine's answer file.

``harness batch export`` is a run whose deferred trials are written out instead of submitted (its chunks are
``external``); ``harness batch import`` ingests an answer file into that run. Any engine that reads and writes
the OpenAI batch format fits between the two: vLLM's ``run-batch``, a Ray Data job, the OpenAI or Azure Batch
API driven by hand. An answer file is checked whole before anything is stored, and each problem names its line.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from harness.errors import HarnessError
from harness.execute.batch.ingest import check_answers
from harness.execute.batch.requests import custom_ids
from harness.execute.batch.state import BatchState, Chunk
from harness.store import atomic_file


class ImportError_(HarnessError):
    """An answer file that does not fit the run (bad lines, unknown custom ids)."""


def write_export(state: BatchState, chunks: Sequence[Chunk], target: Path) -> int:
    """Mark ``chunks`` external and write their request lines, in order, to ``target``; return the line count."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(target, binary=True) as out:
        for chunk in chunks:
            with chunk.file(state.directory, "requests").open("rb") as fh:
                shutil.copyfileobj(fh, out)
    for chunk in chunks:
        chunk.external = True
    state.save()
    return sum(c.count for c in chunks)


def check_import(state: BatchState, answers: Path) -> list[Chunk]:
    """The external chunks an answer file answers; raises with every problem (file:line) if it does not fit."""
    if not answers.is_file():
        raise ImportError_(f"{answers}: no such file")
    chunks = [c for c in state.chunks if c.external and c.active]
    if not chunks:
        raise ImportError_(f"{state.directory}: no exported batch waits for answers (export one with "
                           "`harness batch export`)")
    known: set[str] = set()
    for chunk in chunks:
        known.update(custom_ids(chunk.file(state.directory, "requests")))
    problems = check_answers(answers, known)
    if problems:
        raise ImportError_(f"{answers}: {len(problems)} problem(s), nothing imported:\n  " + "\n  ".join(problems))
    return chunks
