"""The history index: git facts in the manifest, the SQLite index updated at run end, parallel writers,
corrupt/missing index rebuilt, ``harness history`` and ``SUITE@BRANCH`` baselines."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_gate_fixtures import DEAD_URL, extract_project, flips, write_run

from harness.history.index import INDEX_FILE, HistoryIndex
from harness.run_names import resolve_runs
from harness.store import Manifest

HARNESS = [sys.executable, "-m", "harness"]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout.strip()  # fmt: skip


def harness(*args: str, cwd: Path, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, "LOCAL_LLM_URL": DEAD_URL, "CI": "1", **(env_extra or {})}
    for v in ("GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME", "BRANCH_NAME"):
        env.pop(v, None)
    return subprocess.run([*HARNESS, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def with_git(directory: Path, branch: str | None, commit: str = "c0ffee" * 6 + "0000", dirty: bool = False) -> None:
    manifest = Manifest.read(directory)
    manifest.git = None if branch is None else {"commit": commit, "branch": branch, "dirty": dirty}
    manifest.write(directory)


def test_run_records_git_facts_and_indexes_itself(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    suite = extract_project(project)
    git(project, "init", "-q", "-b", "trunk")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "start")
    reports = tmp_path / "reports"
    done = harness("run", str(suite), "--reports", str(reports), "--quiet", cwd=project)
    assert done.returncode == 0, done.stderr
    (run_dir,) = (reports / "extract").iterdir()
    manifest = Manifest.read(run_dir)
    assert manifest.git == {"commit": git(project, "rev-parse", "HEAD"), "branch": "trunk", "dirty": False}
    assert manifest.suite_hash and manifest.harness_version
    with sqlite3.connect(reports / INDEX_FILE) as conn:
        run = conn.execute("SELECT run_id, branch, dirty, status FROM runs").fetchall()
        variants = conn.execute("SELECT variant, n_cases, pass_rate, pass_low, pass_high FROM variants").fetchall()
        cases = conn.execute("SELECT COUNT(*), SUM(trials) FROM cases").fetchone()
    assert run == [(run_dir.name, "trunk", 0, "complete")]
    assert variants and all(0 <= low <= rate <= high <= 1 for _, _, rate, low, high in variants)
    assert cases[0] == sum(v[1] for v in variants) and cases[1] == manifest.trials_done
    # An uncommitted edit makes the next run dirty.
    suite.write_text(suite.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    assert harness("run", str(suite), "--reports", str(reports), "--quiet", cwd=project).returncode == 0
    newest = max((reports / "extract").iterdir(), key=lambda p: Manifest.read(p).started_at)
    assert Manifest.read(newest).git["dirty"] is True  # type: ignore[index]


def test_outside_a_git_work_tree_there_are_no_git_facts(tmp_path: Path) -> None:
    from harness.history.gitinfo import git_info

    (tmp_path / "plain").mkdir()
    assert git_info(tmp_path / "plain") is None


def test_parallel_writers_all_land(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    dirs = [write_run(reports, "s", f"r{i}", flips(30, i % 4), started_at=1000.0 + i) for i in range(4)]
    code = ("import sys; from pathlib import Path; from harness.history.index import HistoryIndex; "
            "HistoryIndex(Path(sys.argv[1])).record(Path(sys.argv[2]))")  # fmt: skip
    procs = [subprocess.Popen([sys.executable, "-c", code, str(reports), str(d)], stderr=subprocess.PIPE, text=True)
             for d in dirs]  # fmt: skip
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * len(dirs), errors
    with sqlite3.connect(reports / INDEX_FILE) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert sorted(r[0] for r in conn.execute("SELECT run_id FROM runs")) == sorted(d.name for d in dirs)
        assert conn.execute("SELECT COUNT(*) FROM variants").fetchone()[0] == 2 * len(dirs)
        assert conn.execute("SELECT COUNT(*) FROM cases").fetchone()[0] == 2 * 30 * len(dirs)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "missing", "other-schema"])
def test_a_broken_or_missing_index_is_rebuilt_never_fatal(tmp_path: Path, damage: str) -> None:
    reports = tmp_path / "reports"
    for i in range(3):
        write_run(reports, "s", f"r{i}", flips(20, i), started_at=1000.0 + i)
    index = HistoryIndex(reports)
    index.sync()
    path = reports / INDEX_FILE
    if damage == "garbage":
        path.write_bytes(b"this is not a database" * 100)
    elif damage == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3] + b"\x00" * 5000)
    elif damage == "missing":
        path.unlink()
    else:
        conn = sqlite3.connect(path)
        with conn:
            conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
        conn.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    done = harness("history", "s", "--reports", str(reports), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "r0" in done.stdout and "r2" in done.stdout
    assert [r["run_id"] for r in HistoryIndex(reports).runs("s")] == ["r0", "r1", "r2"]


def test_sync_follows_the_folders_and_rebuild_restores(tmp_path: Path) -> None:
    import shutil

    reports = tmp_path / "reports"
    for i in range(3):
        write_run(reports, "s", f"r{i}", flips(20, i), started_at=1000.0 + i)
    index = HistoryIndex(reports)
    assert index.sync()["added_or_updated"] == 3
    assert index.sync()["added_or_updated"] == 0  # nothing changed: nothing re-read
    shutil.rmtree(reports / "s" / "r1")
    assert index.sync()["removed"] == 1
    assert [r["run_id"] for r in index.runs("s")] == ["r0", "r2"]
    (reports / "s" / "half").mkdir()
    (reports / "s" / "half" / "manifest.json").write_text("{not json", encoding="utf-8")
    done = harness("history", "--rebuild", "--reports", str(reports), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "skips" in done.stderr and "half" in done.stderr
    assert [r["run_id"] for r in index.runs("s")] == ["r0", "r2"]


def test_history_table_fits_and_flags_a_sustained_decline(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    for i in range(8):  # v2 loses two more cases every run: a sustained decline; v1 stays put
        d = write_run(reports, "s", f"run{i}", flips(40, 2 * i), started_at=1_700_000_000.0 + 3600 * i)
        with_git(d, "main", commit=f"{i:040x}")
    done = harness("history", "s", "--reports", str(reports), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    blocks = done.stdout.split("\n\n")
    v1 = next(b for b in blocks if "· v1 ·" in b)
    v2 = next(b for b in blocks if "· v2 ·" in b)
    assert "drift: stable" in v1 and "DRIFT down" in v2
    assert "▇" in v2 or "█" in v2  # the sparkline
    assert "-5.0 pts" in v2  # Δ vs the previous run: two cases of 40
    assert max(len(line) for line in done.stdout.splitlines()) <= 120
    js = harness("history", "s", "--variant", "m · v2 · T=0", "--last", "5", "--format", "json",
                 "--reports", str(reports), cwd=tmp_path)  # fmt: skip
    assert js.returncode == 0, js.stderr
    import json

    data = json.loads(js.stdout)
    (series,) = data["series"]
    assert [r["run_id"] for r in series["runs"]] == [f"run{i}" for i in range(3, 8)]
    assert series["runs"][0]["commit_sha"] == f"{3:040x}"


def test_branch_baselines_come_from_the_index(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    now = time.time()
    old_main = write_run(reports, "s", "m1", flips(20, 0), started_at=now - 300)
    new_main = write_run(reports, "s", "m2", flips(20, 0), started_at=now - 200)
    feature = write_run(reports, "s", "f1", flips(20, 6), started_at=now - 100)
    empty = write_run(reports, "s", "m3", {"v1": [], "v2": []}, started_at=now)
    for d, branch in ((old_main, "main"), (new_main, "main"), (feature, "feature/x"), (empty, "main")):
        with_git(d, branch)
    assert resolve_runs("s@main", reports) == [new_main]  # the newest main run that finished a trial
    assert resolve_runs("s@feature/x", reports) == [feature]
    done = harness("gate", "s@feature/x", "--baseline", "s@main", "--strict", "--reports", str(reports), cwd=tmp_path)
    assert done.returncode == 1 and "WARN" in done.stdout and "case-000: pass → fail" in done.stdout, done.stdout
    missing = harness("gate", "s@latest", "--baseline", "s@release", "--reports", str(reports), cwd=tmp_path)
    assert missing.returncode == 2 and "release" in missing.stderr
    compared = harness("compare", "s@main", "s@feature/x", "--reports", str(reports), cwd=tmp_path)
    assert compared.returncode == 0 and "pass rate" in compared.stdout, compared.stderr
