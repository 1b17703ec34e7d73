"""A run's batches, as written to ``batches.json`` in the run folder before any waiting.

One ``Chunk`` per request file. Its ``phase`` moves forward only, and each step is saved (atomically) before
the action that depends on it, so a process killed at any point leaves a state a resume can trust:

- ``spooled``: the request file is complete; nothing was sent. A resume uploads and submits it.
- ``submitting``: the file is uploaded (``input_file_id``) and a submission is about to be made. A kill here
  may have created a batch whose id was never saved, so a resume first looks for it (``batches.list``, by the
  run and chunk in its metadata) and submits only if there is none: a batch is never submitted twice.
- ``submitted``: the provider's ``batch_id`` is saved; a resume polls it.
- ``ended``: the batch reached a final status and its output and error files are in the run folder.
- ``ingested``: every answer was graded and stored. Trials it left unanswered (expired, failed, cancelled)
  are pending again, for a resume by batch or live.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.store import write_atomic

STATE_FILE = "batches.json"
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
FOLDER = "batches"
PHASES = ("spooled", "submitting", "submitted", "ended", "ingested")
FINAL_STATUSES = frozenset({"completed", "failed", "expired", "cancelled"})


@dataclass
class Chunk:
    """One batch: its request file and everything known about its submission."""

    chunk_id: str
    model: str
    requests: str  # file name under the run's batches/ folder
    count: int
    size: int
    endpoint: str
    window: str = "24h"
    phase: str = "spooled"
    input_file_id: str | None = None
    batch_id: str | None = None
    status: str | None = None  # the provider's status at the last poll
    counts: dict[str, int] = field(default_factory=dict)
    output_file_id: str | None = None
    error_file_id: str | None = None
    submit_intent_at: float | None = None
    submitted_at: float | None = None
    ended_at: float | None = None
    external: bool = False  # exported for another engine (``harness batch export``): never submitted here
    note: str = ""
    kind: str = "trials"  # or "judge": judge calls for the answers of chunk ``parent`` (see ``judges``)
    parent: str | None = None
    judges_probed: bool = False  # its answers' judge calls were looked for (and spooled as child chunks)

    @property
    def active(self) -> bool:
        """Its trials belong to it: submitted (or about to be) and not yet ingested."""
        return self.phase != "ingested"

    def file(self, directory: Path, kind: str) -> Path:
        """``requests``, ``output`` or ``errors`` file of this chunk in the run folder."""
        return directory / FOLDER / f"{self.chunk_id}.{kind}.jsonl"


@dataclass
class BatchState:
    """All chunks of a run, saved to ``batches.json`` on every change."""

    directory: Path
    chunks: list[Chunk] = field(default_factory=list)
    persist: bool = True  # False: a look from outside the run (``harness batches``), never written back

    @classmethod
    def load(cls, directory: Path, persist: bool = True) -> BatchState:
        path = directory / STATE_FILE
        if not path.exists():
            return cls(directory, persist=persist)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            chunks = [Chunk(**item) for item in data["chunks"]]
            for chunk in chunks:
                # Chunk ids name files in the run folder: an edited state must not point anywhere else.
                if not _SAFE_ID.fullmatch(chunk.chunk_id) or ".." in chunk.chunk_id:
                    raise ValueError(f"chunk id {chunk.chunk_id!r} is not a plain file name")
        except (ValueError, KeyError, TypeError) as exc:
            raise HarnessError(f"{path}: unreadable batch state ({exc}); it records submitted batches, so it "
                               "is not overwritten: fix or move it, then resume") from None
        return cls(directory, chunks, persist)

    def save(self) -> None:
        if not self.persist:
            return
        data: dict[str, Any] = {"version": 1, "chunks": [asdict(c) for c in self.chunks]}
        write_atomic(self.directory / STATE_FILE, json.dumps(data, indent=2, sort_keys=True) + "\n")

    def advance(self, chunk: Chunk, phase: str, **values: Any) -> None:
        """Move ``chunk`` to ``phase`` (or keep it there) with ``values`` and save at once."""
        if PHASES.index(phase) < PHASES.index(chunk.phase):
            raise ValueError(f"batch {chunk.chunk_id}: cannot go back from {chunk.phase} to {phase}")
        for name, value in values.items():
            setattr(chunk, name, value)
        chunk.phase = phase
        self.save()

    def next_number(self) -> int:
        return len(self.chunks) + 1

    def active(self) -> list[Chunk]:
        return [c for c in self.chunks if c.active]
