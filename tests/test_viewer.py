"""The viewer in a real headless Chromium: runs, trends with a heat map, a run, and a comparison with word
diffs; served by the harness's own server on 127.0.0.1. Screenshots go to tests/artifacts/viewer/ (git-ignored)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from test_gate_fixtures import write_run

from harness.store import Manifest, ResultsWriter, TrialResult, read_results
from harness.viewer.build import build_site
from harness.viewer.serve import make_server
from harness.viewer.wordiff import word_diff

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "viewer"
BAD_OUTPUT = "<script>alert('owned')</script> says hi"


def _with_outputs(directory: Path, outputs: dict[tuple[str, str], str]) -> None:
    """Rewrite some trials' outputs: (prompt, case id) -> output."""
    results = list(read_results(directory / "results.jsonl"))
    (directory / "results.jsonl").unlink()
    with ResultsWriter(directory / "results.jsonl") as writer:
        for r in results:
            if (r.prompt, r.case_id) in outputs:
                r = TrialResult(**{**r.__dict__, "output": outputs[(r.prompt, r.case_id)]})
            writer.write(r)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    """Three runs of suite ``s`` (v2 loses case-001 in r1 and r2; v1 gains case-019 in r2) and a large run."""
    root = tmp_path_factory.mktemp("viewer")
    reports = root / "reports"
    base = [i < 16 for i in range(20)]
    worse = list(base)
    worse[1] = False
    better = list(base)
    better[19] = True
    runs = [("r0", base, base), ("r1", base, worse), ("r2", better, worse)]
    for i, (run_id, v1, v2) in enumerate(runs):
        d = write_run(reports, "s", run_id, {"v1": v1, "v2": v2}, started_at=1_700_000_000.0 + i * 3600)
        m = Manifest.read(d)
        m.git = {"commit": f"{i:040x}", "branch": "main", "dirty": False}
        m.write(d)
    _with_outputs(reports / "s" / "r1", {("v2", "case-001"): "The refund takes thirty days " + BAD_OUTPUT})
    _with_outputs(reports / "s" / "r0", {("v2", "case-001"): "The refund takes 30 days"})
    write_run(reports, "big", "b0", {"v1": [i % 3 > 0 for i in range(450)]}, started_at=1_700_000_000.0)
    out = root / "site"
    build_site(reports, out, log=lambda _: None)
    server = make_server(out, reports)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", out, reports
    finally:
        server.shutdown()
        server.server_close()


def open_page(url: str, name: str, tmp: Path) -> str:
    """The page's DOM after its scripts ran, checked for errors; a screenshot is kept under ARTIFACTS."""
    assert CHROMIUM.exists(), "headless Chromium is needed: apt-get install -y chromium"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / f"{name}.png"
    proc = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
         "--disable-background-networking", "--disable-component-update", f"--user-data-dir={tmp / 'profile'}",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=8000", "--dump-dom", f"--screenshot={shot}",
         "--window-size=1400,1000", url],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    print(f"viewer screenshot: {shot}", file=sys.stderr)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    assert console == [], console
    root = re.search(r"<html[^>]*>", proc.stdout)
    assert root is not None and 'data-ready="1"' in root.group(0), proc.stdout[:3000]
    assert "data-errors" not in root.group(0) and "data-page-error" not in root.group(0), root.group(0)
    assert shot.stat().st_size > 20_000  # not a blank page
    return proc.stdout


def test_runs_page_lists_every_run_with_its_headline(site: tuple[str, Path, Path], tmp_path: Path) -> None:
    url, _, _ = site
    dom = open_page(url, "runs", tmp_path)
    assert sorted(re.findall(r'<tr data-run="([^"]+)"', dom)) == ["b0", "r0", "r1", "r2"]
    assert "m · v2 · T=0 vs m · v1 · T=0: pass rate" in dom and "compare with previous" in dom
    filtered = open_page(url + "#/?suite=big", "runs-filtered", tmp_path)
    assert re.findall(r'<tr data-run="([^"]+)"', filtered) == ["b0"]


def test_heat_map_cells_and_trend_bands(site: tuple[str, Path, Path], tmp_path: Path) -> None:
    url, _, _ = site
    dom = open_page(url + "#/suite/s", "trends", tmp_path)
    found = re.findall(r'<td class="cell ([a-z ]+)" data-case="([^"]+)" data-run="([^"]+)"', dom)
    cells = {(case, run): state for state, case, run in found}
    assert len(cells) == 20 * 3  # the first variant (v1) is shown: 20 cases × 3 runs
    assert cells[("case-019", "r0")] == "fail" and cells[("case-019", "r1")] == "fail"
    assert cells[("case-019", "r2")] == "pass changed"
    assert cells[("case-000", "r2")] == "pass"
    assert dom.count('class="band"') == 2 and dom.count("<polyline") >= 2  # interval bands, one per variant


def test_run_page_pages_large_runs(site: tuple[str, Path, Path], tmp_path: Path) -> None:
    url, out, _ = site
    dom = open_page(url + "#/run/big/b0", "run-big", tmp_path)
    assert "page 1 of 3 · 200 of 200 cases on this page · 450 in the run" in dom
    assert len(re.findall(r'<div class="case" data-case=', dom)) == 200
    assert len(list(out.glob("data/runs/big-*/b0-*/cases-*.json"))) == 3
    assert 'id="variants"' in dom
    found = open_page(url + "#/run/big/b0?case=case-420", "run-big-search", tmp_path)
    assert "page 3 of 3" in found and 'data-case="case-420"' in found


def test_compare_shows_flipped_cases_side_by_side_with_a_word_diff(site: tuple[str, Path, Path],
                                                                   tmp_path: Path) -> None:  # fmt: skip
    url, _, _ = site
    dom = open_page(url + "#/compare/s/r0/r1?va=" + quote("m · v2 · T=0"), "compare-runs", tmp_path)
    assert re.findall(r'data-case="([^"]+)" data-tags="([^"]*)"', dom) == [("case-001", "regression")]
    assert "<del>30</del>" in dom and "<ins>thirty</ins>" in dom
    assert "&lt;script&gt;alert('owned')&lt;/script&gt;" in dom and "<script>alert" not in dom
    assert "expected ok, got bad" in dom  # the grader's reason
    assert "18 unchanged cases not listed" not in dom and "19 unchanged cases not listed" in dom
    headline = re.search(r'<div class="headline ([A-Z]*)" id="headline">(.*?)</div>', dom)
    assert headline is not None and "(run b) vs m · v2 · T=0 (run a): pass rate" in headline.group(2)


def test_compare_of_any_pair_is_computed_on_request(site: tuple[str, Path, Path], tmp_path: Path) -> None:
    url, out, _ = site
    index = json.loads((out / "data/compare/index.json").read_text(encoding="utf-8"))
    assert "s|r0|r2||" not in index  # not a consecutive pair: not precomputed
    dom = open_page(url + "#/compare/s/r0/r2", "compare-any", tmp_path)
    ids = re.findall(r'data-case="([^"]+)" data-tags="([^"]*)"', dom)
    assert ids == [("case-019", "fix")]  # the first shared variant, v1: case-019 fixed in r2
    two_variants = open_page(url + "#/compare/s/r1/r1?va=" + quote("m · v1 · T=0") + "&vb=" + quote("m · v2 · T=0"),
                             "compare-variants", tmp_path)  # fmt: skip
    assert re.findall(r'data-case="([^"]+)" data-tags="([^"]*)"', two_variants) == [("case-001", "regression")]
    for bad in ("a=..%2F..%2Fetc&b=r0&suite=s", "a=r0&b=r1&suite=..%2Fs"):
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(url + "api/compare?" + bad, timeout=30)
        assert caught.value.code == 404


def test_word_diff_rebuilds_both_texts() -> None:
    a, b = "The refund takes 30 days, sadly.", "The refund takes thirty days. Thanks"
    segments = word_diff(a, b)
    assert "".join(t for op, t in segments if op in "=-") == a
    assert "".join(t for op, t in segments if op in "=+") == b
    assert ["-", "30"] in segments and ["+", "thirty"] in segments
    long_a, long_b = "x " * 2000 + "end", "x " * 2000 + "fin"
    tail = word_diff(long_a, long_b)
    assert "".join(t for op, t in tail if op in "=-") == long_a


def test_view_command_builds_and_serves(tmp_path: Path, site: tuple[str, Path, Path]) -> None:
    _, _, reports = site
    out = tmp_path / "static"
    done = subprocess.run([sys.executable, "-m", "harness", "view", str(reports), "--no-serve", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (out / "index.html").is_file() and (out / "data/runs.json").is_file()
    proc = subprocess.Popen([sys.executable, "-m", "harness", "view", str(reports), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert found, line + proc.stderr.read() if proc.poll() is not None and proc.stderr else line
        with urllib.request.urlopen(found.group(0) + "data/runs.json", timeout=30) as reply:
            assert len(json.loads(reply.read())["runs"]) == 4
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    missing = subprocess.run([sys.executable, "-m", "harness", "view", str(tmp_path / "nothing"), "--no-serve"],
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert missing.returncode == 2 and "no such reports folder" in missing.stderr
