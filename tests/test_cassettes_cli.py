"""`harness cassettes` and the README's first command, on the committed example cassettes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEAD_URL = "http://127.0.0.1:9/v1"


def harness(*args: str, cwd: Path = REPO, ci: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "CI")}
    env["LOCAL_LLM_URL"] = DEAD_URL
    if ci:
        env["CI"] = "true"
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_readme_main_command_replays_examples_offline(tmp_path: Path) -> None:
    done = harness("run", "suites/examples", "--reports", str(tmp_path), "--quiet")
    assert done.returncode == 0, done.stderr
    assert "record mode smollm2: replay" in done.stderr
    suites = {p.name for p in tmp_path.iterdir()}
    assert {"classify", "support", "format"} <= suites
    for suite_dir in tmp_path.iterdir():
        for run in suite_dir.iterdir():
            manifest = json.loads((run / "manifest.json").read_text())
            assert manifest["status"] == "complete", (suite_dir.name, manifest)
            lines = (run / "results.jsonl").read_text().splitlines()
            assert len(lines) == manifest["trials_planned"] > 0
            assert all(json.loads(line)["error"] is None for line in lines)
    assert "pass rate [95% CI]" in done.stdout


def test_cassettes_reports_missing_and_unused_then_prunes(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "suites" / "examples" / "prompts").mkdir(parents=True)
    (project / "pyproject.toml").write_text("")
    shutil.copytree(REPO / "evals" / "classify", project / "evals" / "classify")
    shutil.copy(REPO / "suites" / "examples" / "prompts" / "classify_v2.yaml",
                project / "suites" / "examples" / "prompts")
    shutil.copytree(REPO / "cassettes" / "classify", project / "cassettes" / "classify")
    suite = project / "suites" / "examples" / "classify.yaml"
    text = (REPO / "suites" / "examples" / "classify.yaml").read_text()
    suite.write_text(text)

    complete = harness("cassettes", str(suite), cwd=project)
    assert complete.returncode == 0, complete.stdout + complete.stderr
    assert " 80 " in complete.stdout and "missing: " not in complete.stdout

    # An edited prompt makes its trials miss, and the old recordings become unused.
    suite.write_text(text.replace("Answer with one word.", "Answer with a single word."))
    edited = harness("cassettes", str(suite), cwd=project)
    assert edited.returncode == 3
    assert edited.stdout.count("missing: case=") == 20  # listing capped at 20 of the 40 v1 trials
    assert "and 20 more" in edited.stdout
    row = next(line for line in edited.stdout.splitlines() if line.startswith("smollm2"))
    assert row.split()[-2:] == ["40", "40"]  # 40 missing, 40 unused

    pruned = harness("cassettes", str(suite), "--prune", cwd=project)
    assert "pruned: 40 unused interaction(s)" in pruned.stdout
    data = json.loads((project / "cassettes" / "classify" / "smollm2.json").read_text())
    assert len(data["interactions"]) == 40

    # The replay of the edited suite now misses exactly the edited prompt's trials and names how to record.
    replay = harness("run", str(suite), "--reports", str(tmp_path / "r"), "--quiet", cwd=project)
    assert replay.returncode == 3
    assert "40 trial(s) have no recording" in replay.stderr and "prompt=v1" in replay.stderr
