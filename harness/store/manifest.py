"""A run's manifest.json: what the run was, enough to reproduce it and to check two runs are comparable."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.store.files import write_atomic

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
    status: str = "running"  # running | complete | interrupted | incomplete
    trials_done: int = 0
    shard: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    git: dict[str, Any] | None = None  # {"commit", "branch", "dirty"} of the suite's work tree, if any

    def write(self, directory: Path) -> None:
        write_atomic(directory / MANIFEST_FILE, json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        path = directory / MANIFEST_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            known = cls.__dataclass_fields__
            return cls(**{k: v for k, v in data.items() if k in known})
        except (ValueError, TypeError, AttributeError) as exc:
            raise ManifestError(f"{path}: unreadable manifest ({exc})") from None


class ManifestError(HarnessError, ValueError):
    """A manifest.json that is not a manifest. A ValueError too: callers that skip such folders catch that."""
