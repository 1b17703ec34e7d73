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
    for suite_dir in (p for p in tmp_path.iterdir() if p.is_dir()):  # index.sqlite lies beside the suites
        for run in suite_dir.iterdir():
            manifest = json.loads((run / "manifest.json").read_text())
            assert manifest["status"] == "complete", (suite_dir.name, manifest)
            records = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
            # With `n` choices a request stores one record per choice (`<trial id>~i`); each trial is there once.
            trials = [r for r in records if not r.get("choice")]
            assert len(trials) == len({r["trial_id"] for r in trials}) == manifest["trials_planned"] > 0
            assert all(r["error"] is None for r in records)
    assert "pass rate" in done.stdout and " vs " in done.stdout.splitlines()[2]  # the table, the headline first
    # `run` prints the compact summary: variants and comparison verdicts; the full report is one command away.
    assert "Comparisons against the baseline" in done.stdout and "Flakiness" not in done.stdout
    full = harness("run", "suites/examples/classify.yaml", "--reports", str(tmp_path / "full"), "--quiet",
                   "--format", "table")
    assert full.returncode == 0 and "Flakiness" in full.stdout and "Cost–quality" in full.stdout


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


def test_whole_suite_record_drops_recordings_no_longer_used(tmp_path: Path) -> None:
    from harness.testing.fault_server import FaultServer

    suite = tmp_path / "s.yaml"

    def write(cases: list[str]) -> None:
        rows = "".join(f"  - {{id: c{i}, vars: {{q: {text!r}}}}}\n" for i, text in enumerate(cases))
        suite.write_text(
            "suite: prune\nmodels:\n  - {name: echo, base_url: URL, api_key_env: null}\n"
            "prompts:\n  v1: [{role: user, content: '{{ q }}'}]\n"
            "graders: [{type: contains, value: a}]\ncases:\n" + rows
        )

    def interactions() -> int:
        data = json.loads((tmp_path / "cassettes" / "prune" / "echo.json").read_text())
        return len(data["interactions"])

    with FaultServer() as server:
        write(["apple", "banana", "cherry"])
        suite.write_text(suite.read_text().replace("URL", server.base_url))
        base = ["run", str(suite), "--reports", str(tmp_path / "r"), "--cassettes", str(tmp_path / "cassettes"),
                "--quiet"]
        first = harness(*base, "--record", "record", cwd=tmp_path, ci=False)
        assert first.returncode == 0, first.stderr
        assert interactions() == 3

        write(["apple", "banana", "grape"])
        suite.write_text(suite.read_text().replace("URL", server.base_url))
        # A partial run (one case) must not drop what the other cases still use.
        partial = harness(*base, "--record", "record", "--case", "c0", cwd=tmp_path, ci=False)
        assert partial.returncode == 0, partial.stderr
        assert interactions() == 3
        whole = harness(*base, "--record", "record", cwd=tmp_path, ci=False)
        assert whole.returncode == 0, whole.stderr
        assert "dropped 1 unused recording(s)" in whole.stderr
        assert interactions() == 3  # apple, banana, grape: cherry is gone
