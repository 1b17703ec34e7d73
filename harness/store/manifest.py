"""A run's manifest.json: what the run was, enough to reproduce it and to check two runs are comparable."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.store.files import RunLock, locked, write_atomic

MANIFEST_FILE = "manifest.json"


@dataclass
class Manifest:
    """What a run was: enough to reproduce it and to check two runs are comparable."""

    suite: str
    run_id: str
    suite_file: str
    suite_hash: str
    harness_version: str
    record_mode: str
    models: list[str]
    prompts: list[str]
    temperatures: list[float]
    repeats: int
    trials_planned: int
    started_at: float
    finished_at: float | None = None
    # running | complete | interrupted | incomplete. Read back, "running" is checked against the run's lock and
    # results (see ``_settle``): a killed run reads as incomplete, with the trials its results hold.
    status: str = "running"
    trials_done: int = 0
    shard: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    # Fingerprints of the suite's parts (see harness.resume_rule): what a refused resume says has changed.
    inputs: dict[str, Any] = field(default_factory=dict)
    git: dict[str, Any] | None = None  # {"commit", "branch", "dirty"} of the suite's work tree, if any

    def write(self, directory: Path) -> None:
        write_atomic(directory / MANIFEST_FILE, json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        path = directory / MANIFEST_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            known = cls.__dataclass_fields__
            manifest = cls(**{k: v for k, v in data.items() if k in known})
        except (ValueError, TypeError, AttributeError) as exc:
            raise ManifestError(f"{path}: unreadable manifest ({exc})") from None
        if manifest.status == "running":
            manifest._settle(directory)
        return manifest

    def _settle(self, directory: Path) -> None:
        """A manifest still saying "running" is only true while a process holds the run's lock: a SIGKILL (or a
        power cut) leaves "running 0/N" behind while results.jsonl has the finished trials. The results are
        the truth: count them, and call a run nobody is writing any more incomplete."""
        from harness.store.results import RESULTS_FILE, finished_ids  # results.py imports this module

        self.trials_done = len(finished_ids(directory / RESULTS_FILE))
        lock = directory / RunLock.NAME
        if not lock.exists():
            self.status = "incomplete"
            return
        with locked(lock, wait=False) as free:
            if free:
                self.status = "incomplete"


class ManifestError(HarnessError, ValueError):
    """A manifest.json that is not a manifest. A ValueError too: callers that skip such folders catch that."""
