"""Shared by the gate tests: synthetic run folders, and the example `extract` suite replayed from its
committed cassettes (real SmolLM2 outputs). Holds no tests itself."""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from harness.store import GradeRecord, Manifest, ResultsWriter, TrialResult

REPO = Path(__file__).resolve().parents[1]
EXTRACT_SUITE = REPO / "suites" / "examples" / "extract.yaml"
DEAD_URL = "http://127.0.0.1:9/v1"  # nothing listens there: a replay that tried the network would fail


def write_run(
    reports: Path,
    suite: str,
    run_id: str,
    variants: dict[str, Sequence[bool]],
    *,
    costs: dict[str, Sequence[float]] | None = None,
    baseline: str | None = None,
    gate: dict[str, object] | None = None,
    model: str = "m",
    started_at: float | None = None,
) -> Path:
    """A run folder with one trial per case per prompt version: ``variants[prompt][i]`` is case i's pass."""
    directory = reports / suite / run_id
    prompts = list(variants)
    with ResultsWriter(directory / "results.jsonl") as writer:
        for prompt, passes in variants.items():
            for i, passed in enumerate(passes):
                cost = None if costs is None else float(costs[prompt][i])
                writer.write(TrialResult(
                    trial_id=f"{prompt}-{i}", case_id=f"case-{i:03d}", prompt=prompt, model=model,
                    temperature=0.0, repeat=0, output=f"{prompt} answer {i}: {'ok' if passed else 'bad'}",
                    grades=[GradeRecord("exact", bool(passed), float(passed),
                                        "matches" if passed else "expected ok, got bad")],
                    passed=bool(passed), score=float(passed), cost=cost, latency_ms=100.0,
                ))  # fmt: skip
    Manifest(
        suite=suite, run_id=run_id, suite_file=f"suites/{suite}.yaml", suite_hash=f"hash-{suite}",
        harness_version="test", record_mode="m=replay", models=[model], prompts=prompts, temperatures=[0.0],
        repeats=1, trials_planned=sum(len(v) for v in variants.values()),
        started_at=time.time() if started_at is None else started_at, status="complete",
        trials_done=sum(len(v) for v in variants.values()),
        settings={"baseline": {"prompt": baseline or prompts[0], "model": model, "temperature": 0.0},
                  "gate": {"metrics": ["pass_rate"], "margin": 0.05, "tolerance": 0.0, "mode": "default",
                           **(gate or {})}},
    ).write(directory)  # fmt: skip
    return directory


def flips(n: int, regressions: int, fixes: int = 0, base_pass: float = 0.8) -> dict[str, list[bool]]:
    """Baseline and candidate pass lists over n cases with exactly these pass→fail and fail→pass flips."""
    base = [i < int(n * base_pass) for i in range(n)]
    cand = list(base)
    passing = [i for i in range(n) if base[i]]
    failing = [i for i in range(n) if not base[i]]
    for i in passing[:regressions]:
        cand[i] = False
    for i in failing[:fixes]:
        cand[i] = True
    return {"v1": base, "v2": cand}


def extract_project(root: Path, extra_prompts: str = "") -> Path:
    """A project folder holding a copy of the extract suite, its data and its cassettes; returns the suite.

    ``extra_prompts`` is YAML appended under ``prompts:`` (indented two spaces), e.g. a copy of v1.
    """
    (root / "pyproject.toml").write_text("[project]\nname = 'demo'\n", encoding="utf-8")
    suite_dir = root / "suites" / "examples"
    suite_dir.mkdir(parents=True, exist_ok=True)
    text = EXTRACT_SUITE.read_text(encoding="utf-8")
    if extra_prompts:
        text = text.replace("baseline: {prompt: v1", extra_prompts.rstrip("\n") + "\nbaseline: {prompt: v1", 1)
    (suite_dir / "extract.yaml").write_text(text, encoding="utf-8")
    shutil.copytree(REPO / "evals" / "extract", root / "evals" / "extract", dirs_exist_ok=True)
    shutil.copytree(REPO / "cassettes" / "extract", root / "cassettes" / "extract", dirs_exist_ok=True)
    return suite_dir / "extract.yaml"


# The v1 prompt again under another name: identical requests, so it replays from v1's recordings.
V1_AGAIN = """\
  v1-again:
    - role: system
      content: You extract data as JSON.
    - role: user
      content: >-
        Text: {{ text }}

        Return only a JSON object with the keys "name" (string), "age" (integer) and "city" (string).
"""
