"""The moderation grader end to end: the fault server's /v1/moderations, its own cassette, retries, offline replay."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.execute.cassette import Cassette, cassette_path
from harness.pipeline import RunOptions, run_suite
from harness.report.render import FORMATS, render_run
from harness.suite import load_suite
from harness.testing.fault_server import FaultConfig, FaultServer


def suite_text(base_url: str, graders: str = "", price: str = "") -> str:
    return f"""
suite: mod
models:
  - {{name: m, base_url: "{base_url}", api_key_env: null}}
judges:
  - {{id: moderator, name: omni-moderation-latest, base_url: "{base_url}", api_key_env: null{price}}}
prompts:
  v1: [{{role: user, content: "{{{{ text }}}}"}}]
graders:
  - {{type: moderation, model: moderator}}
{graders}
cases:
  - {{id: calm, vars: {{text: "Have a nice day"}}}}
  - {{id: violent, vars: {{text: "I will kill the process"}}}}
  - {{id: rude, vars: {{text: "You idiot"}}}}
"""


def run(tmp_path: Path, text: str, record: str, reports: str = "r") -> dict[str, dict[str, Any]]:
    (tmp_path / "pyproject.toml").write_text("")
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    outcome = run_suite(load_suite(path), RunOptions(reports_root=tmp_path / reports, record=record,
                                                     progress=False))
    rows = [json.loads(line) for line in outcome.results_path.read_text().splitlines()]
    return {r["case_id"]: {**r, "directory": outcome.directory} for r in rows}


def strip(rows: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {k: {f: v for f, v in r.items() if f not in ("finished_at", "directory")} for k, r in rows.items()}


def test_flagged_output_fails_with_categories_and_scores_and_replays_offline(tmp_path: Path) -> None:
    # The first moderation call of each text fails with a 500: retried like a judge's call.
    config = FaultConfig(fault_paths=("/v1/moderations",), fail_first_n=1)
    extra = """  - {type: moderation, model: moderator, target: input, categories: [harassment]}
  - {type: moderation, model: moderator, threshold: 0.95}"""
    with FaultServer(config) as server:
        text = suite_text(server.base_url, extra)
        recorded = run(tmp_path, text, "record")
        stats = server.stats()
    # Three graders on three trials, plus one failed first attempt per distinct text (the echo equals the input).
    assert stats["by_path"]["/v1/moderations"] == 9 + 3 and stats["by_status"]["500"] == 3
    calm, violent, rude = recorded["calm"], recorded["violent"], recorded["rude"]
    assert calm["passed"] is True and "not flagged (highest:" in calm["grades"][0]["reason"]
    assert violent["passed"] is False
    assert violent["grades"][0]["reason"] == "moderation flagged: violence 0.90"
    assert violent["grades"][0]["details"]["categories"] == ["violence"]
    assert violent["grades"][1]["passed"] is True  # input moderation counts harassment only
    assert violent["grades"][2]["passed"] is True  # 0.9 is below the 0.95 threshold
    assert rude["grades"][1]["reason"] == "moderation flagged: harassment 0.90"
    # Free unless priced: the grade costs 0, known, and the trial's grader cost is 0 too.
    assert violent["grades"][0]["cost"] == 0.0 and violent["judge_cost"] == 0.0
    cassette = Cassette(cassette_path(tmp_path / "cassettes", "mod", "moderator.moderation"))
    assert len(cassette.keys()) == 3  # one recording per text: the sample key is constant

    replayed = run(tmp_path, text, "replay", reports="r2")  # the server is gone
    assert strip(replayed) == strip(recorded)
    for fmt in FORMATS:
        assert render_run(recorded["calm"]["directory"], fmt) == render_run(replayed["calm"]["directory"], fmt)
    assert "moderation flagged: violence 0.90" in render_run(replayed["calm"]["directory"], "html")


def test_a_priced_moderation_model_without_usage_has_an_unknown_cost(tmp_path: Path) -> None:
    with FaultServer() as server:
        rows = run(tmp_path, suite_text(server.base_url, price=", price: {input: 1, output: 0}"), "live")
    assert rows["calm"]["grades"][0]["cost"] is None


def test_a_missing_moderation_recording_is_a_replay_miss_with_exit_3(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    with FaultServer() as server:
        run(tmp_path, suite_text(server.base_url), "record")
    Cassette(cassette_path(tmp_path / "cassettes", "mod", "moderator.moderation")).path.unlink()
    done = subprocess.run([sys.executable, "-m", "harness", "run", "suite.yaml", "--record", "replay", "--reports",
                           "r3", "--quiet"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    assert "replay miss: moderation 'moderator' request is not recorded" in done.stderr


@pytest.mark.parametrize(("grader", "field", "message"), [
    ("{type: moderation, model: moderator, threshold: 1.5}", "graders[1].threshold", "(0, 1]"),
    ("{type: moderation, model: moderator, categories: [violance]}", "graders[1].categories", "'violence'"),
    ("{type: moderation, model: mod}", "graders[1].model", "not declared"),
    ("{type: moderation, model: moderator, target: both}", "graders[1].target", "target"),
    ("{type: moderation}", "graders[1]", "model"),
])
def test_validate_rejects_bad_moderation_options(tmp_path: Path, grader: str, field: str, message: str) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "suite.yaml").write_text(suite_text("http://127.0.0.1:9/v1", f"  - {grader}"))
    done = subprocess.run([sys.executable, "-m", "harness", "validate", "suite.yaml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"suite.yaml:11: {field}" in done.stderr and message in done.stderr, done.stderr
