"""Reports a person can act on: the headline sentence, UNCHANGED, 120-column terminal tables (``--wide``
for intervals), readable money with judge spend shown, and an HTML report that fits 1,400 px."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_gate_fixtures import DEAD_URL, V1_AGAIN, extract_project
from test_report_fixtures import trial, write_run

from harness.pipeline import RunOptions, run_suite
from harness.report.build import build_report
from harness.report.headline import headline_sentences
from harness.report.render import render_report, render_run
from harness.suite import load_suite

CHROMIUM = Path("/usr/bin/chromium")


def distinct_requests(results: list, **changes: object) -> list:
    """Each prompt version sends its own text, as real runs do."""
    return [dataclasses.replace(r, request={"model": r.model, "messages": [
        {"role": "user", "content": f"{r.prompt}: {r.case_id}"}]}, **changes) for r in results]


def block_run(root: Path) -> Path:
    base = [i < 32 for i in range(40)]
    cand = list(base)
    for i in range(9):
        cand[i] = False  # 9 regressions
    cand[35] = cand[36] = True  # 2 fixes
    results = [trial(f"c{i:02d}", p, prompt="v1", cost=0.0004) for i, p in enumerate(base)]
    results += [trial(f"c{i:02d}", p, prompt="v2", cost=0.0003) for i, p in enumerate(cand)]
    return write_run(root, distinct_requests(results), baseline={"prompt": "v1", "model": "m", "temperature": 0.0})


def test_headline_is_one_sentence_per_comparison(tmp_path: Path) -> None:
    report = build_report(block_run(tmp_path))
    (sentence,) = headline_sentences(report)
    assert re.fullmatch(r"m · v2 · T=0 vs m · v1 · T=0: pass rate −17\.5 pts \[−\d+\.\d, −\d+\.\d\], "
                        r"(BLOCK|WARN); cost −25%; 9 cases regressed, 2 fixed", sentence), sentence
    for fmt in ("summary", "table", "markdown"):
        text = render_report(report, fmt)
        assert sentence.split(":")[0] in text.split("\n\n")[0] + text.split("\n\n")[1], fmt  # at the very top


@pytest.fixture(scope="module")
def extract_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The extract suite plus v1-again (v1's prompt under another name), replayed offline."""
    root = tmp_path_factory.mktemp("extract")
    suite_path = extract_project(root, V1_AGAIN)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LOCAL_LLM_URL", DEAD_URL)
        outcome = run_suite(load_suite(suite_path), RunOptions(reports_root=root / "reports", run_id="r",
                                                               record="replay", progress=False))  # fmt: skip
    assert outcome.manifest.status == "complete"
    return outcome.directory


def test_identical_requests_say_unchanged(extract_run: Path) -> None:
    lines = headline_sentences(build_report(extract_run))
    again = next(s for s in lines if s.startswith("smollm2 · v1-again"))
    assert "UNCHANGED" in again and "[" not in again  # no interval for a non-change
    broken = next(s for s in lines if s.startswith("smollm2 · v3-broken"))
    assert "UNCHANGED" not in broken and "BLOCK" in broken and "20 cases regressed" in broken


def test_terminal_fits_120_columns_and_wide_shows_intervals(extract_run: Path) -> None:
    for fmt in ("summary", "table"):
        narrow = render_run(extract_run, fmt)
        assert max(len(line) for line in narrow.splitlines()) <= 120, fmt
        assert "[62.6, 95.3]" not in narrow.split("Variants")[1].split("\n\n")[1]  # table cells: no interval
        wide = render_run(extract_run, fmt, wide=True)
        assert "83.3% [62.6, 95.3]" in wide and max(len(line) for line in wide.splitlines()) > 120
        assert not re.search(r"\$[0-9.]+e", narrow)  # money never in scientific notation
    done = subprocess.run([sys.executable, "-m", "harness", "report", str(extract_run), "--format", "table",
                           "--wide"], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0 and "83.3% [62.6, 95.3]" in done.stdout, done.stderr


def test_judge_spend_is_in_the_total_and_shown_apart(tmp_path: Path) -> None:
    results = distinct_requests([trial(f"c{i}", True, prompt=p, cost=0.001) for p in ("v1", "v2") for i in range(5)],
                                judge_cost=0.0005)
    report = build_report(write_run(tmp_path, results))
    text = render_report(report, "summary")
    assert "total cost $0.0150 (models $0.0100, judges $0.00500)" in text


def test_a_zero_pass_variant_is_never_plainly_on_the_front(extract_run: Path) -> None:
    html = render_run(extract_run, "html")
    assert "v3-broken · T=0 (on the front only by cost: it passes 0%)" in html  # the chart's legend
    assert html.count("on the front only by cost: it passes 0%") >= 2  # and the table: the same words


def test_html_report_fits_1400_px_with_labelled_badges(extract_run: Path, tmp_path: Path) -> None:
    assert CHROMIUM.exists(), "headless Chromium is needed: apt-get install -y chromium"
    page = tmp_path / "report.html"
    page.write_text(render_run(extract_run, "html"), encoding="utf-8")
    proc = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", "--window-size=1400,1000", page.as_uri()],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    root = re.search(r"<html[^>]*>", proc.stdout)
    assert root is not None and 'data-ready="1"' in root.group(0)
    assert "data-overflow" not in root.group(0), root.group(0)  # no table scrolls sideways at 1,400 px
    assert re.search(r'<div class="headline" id="headline"><p>smollm2 · v2 · T=0 vs smollm2 · v1 · T=0: ', proc.stdout)
    assert 'class="badge pass"' in proc.stdout and ">smollm2 · v1 · T=0: 1/1 passed</span>" in proc.stdout


def test_compare_opens_with_its_headline_and_fits_120_columns(tmp_path: Path) -> None:
    from test_gate_fixtures import flips
    from test_gate_fixtures import write_run as write_gate_run

    reports = tmp_path / "reports"
    write_gate_run(reports, "s", "a", flips(40, 0), started_at=1.0)
    write_gate_run(reports, "s", "b", flips(40, 9, 2), started_at=2.0)
    args = [sys.executable, "-m", "harness", "compare", "s@a", "s@b", "--reports", str(reports)]
    narrow = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert narrow.returncode == 0, narrow.stderr
    lines = narrow.stdout.splitlines()
    assert lines[2].startswith("m · v1 · T=0 (run b) vs m · v1 · T=0 (run a): pass rate +0.0 pts [")
    assert "m · v2 · T=0 (run b) vs m · v2 · T=0 (run a): pass rate −17.5 pts [" in narrow.stdout
    assert "9 cases regressed, 2 fixed" in narrow.stdout.replace("\n  ", " ")
    assert max(len(line) for line in lines) <= 120
    assert "variant (run b vs run a)" in narrow.stdout
    wide = subprocess.run([*args, "--wide"], capture_output=True, text=True, timeout=300)
    assert "(mid-p McNemar)" in wide.stdout and max(len(line) for line in wide.stdout.splitlines()) > 120
