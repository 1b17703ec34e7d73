"""``harness run --shard I/N`` + ``harness merge``: the merged run reports exactly what an unsharded run does.

The runs go through the library (the CLI's ``run`` adds only flag parsing and a summary that costs seconds
per run); ``harness merge`` runs as the real command.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.errors import HarnessError
from harness.merge import merge_runs
from harness.pipeline import RunOptions
from harness.pipeline import run_suite as run_pipeline
from harness.plan import Shard
from harness.report.build import build_report
from harness.report.render import render_report
from harness.store import RESULTS_FILE, Manifest
from harness.suite import load_suite
from harness.testing.fault_server import FaultConfig, FaultServer

HARNESS = shutil.which("harness", path=str(Path(sys.executable).parent)) or "harness"
SUITE = "merge-demo"
ITEMS = ["apple", "cherry", "banana", "stone", "rock", "apple pie", "cherry stone", "banana bread", "pebble",
         "green apple", "sand", "wild cherry"]
# Replies by substring of the prompt: fruit says yes, the rest no, and prompt v2 gets cherries wrong, so
# variants differ and the comparisons have something to find.
RULES = {"Quick: cherry": "no", "Quick: wild cherry": "no", "apple": "yes", "cherry": "yes", "banana": "yes"}


def write_suite(folder: Path, base_url: str) -> Path:
    models = "".join(f"  - name: {name}\n    base_url: {base_url}\n    api_key_env: null\n"
                     for name in ("alpha", "beta"))
    cases = "".join(f"  - {{id: c{i}, vars: {{item: {item}}}}}\n" for i, item in enumerate(ITEMS, 1))
    path = folder / "suite.yaml"
    path.write_text(
        f"suite: {SUITE}\nmodels:\n{models}temperatures: [0.0, 0.7]\nrepeats: 2\n"
        "prompts:\n  v1:\n    - role: user\n      content: 'Is {{ item }} a fruit?'\n"
        "  v2:\n    - role: user\n      content: 'Quick: {{ item }}'\n"
        "baseline: {prompt: v1, model: alpha, temperature: 0.0}\n"
        f"cases:\n{cases}graders:\n  - type: contains\n    value: 'yes'\n",
        encoding="utf-8",
    )
    (folder / "pyproject.toml").write_text("")
    return path


def harness(folder: Path, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([HARNESS, *args], cwd=folder, env={**os.environ, "NO_COLOR": "1"},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == expect, done.stderr
    assert "Traceback" not in done.stderr
    return done


def run_suite(folder: Path, run_id: str, record: str, shard: str | None = None) -> Path:
    options = RunOptions(reports_root=folder / "reports", cassettes_root=folder / "cassettes", run_id=run_id,
                         record=record, shard=Shard.parse(shard) if shard else None, progress=False)
    outcome = run_pipeline(load_suite(folder / "suite.yaml"), options)
    assert outcome.manifest.status == "complete"
    return outcome.directory


def json_report(run: Path) -> dict[str, Any]:
    """What ``harness report RUN --format json`` prints."""
    return json.loads(render_report(build_report(run), "json"))


def without_latency(value: Any) -> Any:
    if isinstance(value, dict):
        # Throughput (tokens per second) and time to first token are measured like latency: they vary live.
        timed = ("latency", "tokens_per_s", "ttft")
        return {k: without_latency(v) for k, v in value.items()
                if not any(t in k for t in timed) and k != "finished_at"}
    if isinstance(value, list):
        return [without_latency(v) for v in value]
    return value


def records(run: Path) -> list[dict[str, Any]]:
    lines = (run / RESULTS_FILE).read_text(encoding="utf-8").splitlines()
    return sorted((json.loads(line) for line in lines), key=lambda r: r["trial_id"])


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Path]]]:
    folder = tmp_path_factory.mktemp("merge")
    with FaultServer(FaultConfig(rules=RULES, vary_by_sample=True)) as server:
        write_suite(folder, server.base_url)
        found = {"full": run_suite(folder, "full", "record")}
        for i in (1, 2, 3):
            found[f"replay{i}"] = run_suite(folder, f"replay{i}", "replay", f"{i}/3")
            found[f"live{i}"] = run_suite(folder, f"live{i}", "live", f"{i}/3")
        yield folder, found


def test_shards_partition_the_run(runs: tuple[Path, dict[str, Path]]) -> None:
    _, found = runs
    full = {r["trial_id"] for r in records(found["full"])}
    shards = [{r["trial_id"] for r in records(found[f"replay{i}"])} for i in (1, 2, 3)]
    assert len(full) == len(ITEMS) * 2 * 2 * 2 * 2
    assert set().union(*shards) == full
    assert sum(len(s) for s in shards) == len(full)
    assert all(shards), "every shard got some cases"
    for i in (1, 2, 3):
        assert Manifest.read(found[f"replay{i}"]).shard == f"{i}/3"


def test_merged_report_is_identical_to_the_unsharded_one(runs: tuple[Path, dict[str, Path]]) -> None:
    """Shards replayed from the unsharded run's recordings carry its latencies: every number must match."""
    folder, found = runs
    done = harness(folder, "merge", "replay1", "replay2", "replay3", "--run-id", "merged", "--reports", "reports")
    merged = folder / "reports" / SUITE / "merged"
    assert "shards 1/3, 2/3, 3/3" in done.stdout
    assert Manifest.read(merged).status == "complete"
    assert Manifest.read(merged).trials_planned == Manifest.read(found["full"]).trials_planned
    full_report, merged_report = json_report(found["full"]), json_report(merged)
    assert full_report["comparisons"], "the comparison must have something to compare"
    assert merged_report == full_report
    strip = ("finished_at", "attempts")
    assert [{k: v for k, v in r.items() if k not in strip} for r in records(merged)] == \
        [{k: v for k, v in r.items() if k not in strip} for r in records(found["full"])]


def test_merged_live_shards_match_an_unsharded_run(runs: tuple[Path, dict[str, Path]]) -> None:
    """Shards that each called the server: everything but the measured latencies matches."""
    folder, found = runs
    harness(folder, "merge", "live1", "live2", "live3", "--run-id", "merged-live", "--reports", "reports")
    merged = folder / "reports" / SUITE / "merged-live"
    assert without_latency(json_report(merged)) == without_latency(json_report(found["full"]))
    assert without_latency(records(merged)) == without_latency(records(found["full"]))


def test_missing_shard_is_reported_and_the_merge_marked_incomplete(runs: tuple[Path, dict[str, Path]]) -> None:
    folder, _ = runs
    done = harness(folder, "merge", "replay1", "replay3", "--run-id", "partial", "--reports", "reports", expect=4)
    assert "missing shard(s): 2/3" in done.stderr
    assert Manifest.read(folder / "reports" / SUITE / "partial").status == "incomplete"


def test_merge_refuses_overlaps_repeats_and_other_suites(runs: tuple[Path, dict[str, Path]], tmp_path: Path) -> None:
    _, found = runs
    with pytest.raises(HarnessError, match="given twice"):
        merge_runs([found["replay1"], found["live1"]], tmp_path)
    with pytest.raises(HarnessError, match="sharded and unsharded"):
        merge_runs([found["full"], found["replay1"]], tmp_path)
    # An edited suite between shards: its hash differs.
    other = tmp_path / "other"
    shutil.copytree(found["replay2"], other)
    manifest = Manifest.read(other)
    manifest.suite_hash = "0" * 16
    manifest.write(other)
    with pytest.raises(HarnessError, match="different versions of suite"):
        merge_runs([found["replay1"], other], tmp_path)
    # Two runs holding the same trial (one shard relabelled as another) would count it twice.
    manifest = Manifest.read(other)
    manifest.suite_hash, manifest.shard = Manifest.read(found["replay1"]).suite_hash, "3/3"
    manifest.write(other)
    with pytest.raises(HarnessError, match="is in both"):
        merge_runs([found["replay1"], found["replay2"], other], tmp_path / "out")
    assert not (tmp_path / "out" / SUITE).exists() or not any((tmp_path / "out" / SUITE).iterdir())
