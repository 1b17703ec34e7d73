"""A run that finished nothing must not pass the gate by having nothing to compare."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CI": "true", "LOCAL_LLM_URL": "http://127.0.0.1:9/v1"}
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


def test_gate_refuses_a_run_with_no_finished_trial(tmp_path: Path) -> None:
    run = harness("run", "suites/examples/extract.yaml", "--reports", str(tmp_path), "--run-id", "pr",
                  "--cassettes", str(tmp_path / "no-cassettes"), "--quiet")
    assert run.returncode == 3  # every trial missed its recording
    gate = harness("gate", str(tmp_path / "extract" / "pr"))
    assert gate.returncode == 4
    assert "finished no trial" in gate.stderr and "Traceback" not in gate.stderr


def test_cassettes_default_to_the_suites_project_from_any_directory(tmp_path: Path) -> None:
    env = {**os.environ, "CI": "true", "LOCAL_LLM_URL": "http://127.0.0.1:9/v1"}
    done = subprocess.run([sys.executable, "-m", "harness", "run", str(REPO / "suites/examples/format.yaml"),
                           "--reports", str(tmp_path), "--quiet"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
