"""Shared by the batch tests: a suite against the fault server, and helpers to read runs and batch state.

No tests here (the ``test_`` prefix only puts it on pytest's import path, as with the other fixture modules).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.execute.batch.poll import PollSettings
from harness.execute.batch.requests import BatchLimits
from harness.execute.batch.runner import BatchOptions
from harness.pipeline import RunOptions, RunOutcome, run_suite
from harness.suite import load_suite


def write_suite(folder: Path, base_url: str, n_cases: int = 6, *, price: str = "{input: 2.0, output: 4.0}",
                batch_flag: bool = False, repeats: int = 1) -> Path:
    """A suite whose cases the fault server echoes; each case's text is ``case <i>`` (graded by `contains`)."""
    with (folder / "cases.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(n_cases):
            fh.write(json.dumps({"id": f"c{i:03d}", "text": f"case {i}"}) + "\n")
    path = folder / "suite.yaml"
    path.write_text(
        "suite: batchy\n"
        "models:\n"
        "  - name: fault-server\n"
        f"    base_url: {base_url}\n"
        "    api_key_env: null\n"
        f"    price: {price}\n"
        "    max_concurrency: 3\n"
        + ("    batch: true\n" if batch_flag else "")
        + f"repeats: {repeats}\n"
        "retry: {max_attempts: 3, base_delay: 0.001, max_delay: 0.01}\n"
        "prompts:\n  v1:\n    - {role: user, content: '{{ text }}'}\n"
        "cases:\n  - file: cases.jsonl\n"
        "graders:\n  - {type: contains, value: case}\n",
        encoding="utf-8",
    )
    return path


def batch_options(enabled: bool | None = True, wait: float | None = None, **limits: Any) -> BatchOptions:
    return BatchOptions(enabled=enabled, limits=BatchLimits(**limits), poll=PollSettings(wait=wait, interval=0.001))


def run(path: Path, tmp: Path, run_id: str, record: str = "record-missing", resume: bool = False,
        batch: BatchOptions | None = None) -> RunOutcome:
    options = RunOptions(reports_root=tmp / "reports", run_id=run_id, resume=resume, record=record,
                         progress=False, batch=batch or BatchOptions(enabled=False))
    return run_suite(load_suite(path), options)


def results(outcome_or_dir: RunOutcome | Path) -> dict[str, dict[str, Any]]:
    """trial id -> stored record, without the moment it was stored."""
    directory = outcome_or_dir if isinstance(outcome_or_dir, Path) else outcome_or_dir.directory
    records = {}
    for line in (directory / "results.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        record.pop("finished_at", None)
        assert record["trial_id"] not in records, "a trial stored twice"
        records[record["trial_id"]] = record
    return records


def state(directory: Path) -> list[dict[str, Any]]:
    return json.loads((directory / "batches.json").read_text(encoding="utf-8"))["chunks"]
