"""Reports and gates over large runs read compact records (issue 7): the same numbers and text as from full
records, full records read back only for what is shown, and memory that grows with the compact size only."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import gate as gate_module
from harness.gate import gate_runs
from harness.report import build, html_report
from harness.report.build import build_report, load_run
from harness.report.cases import case_details
from harness.report.gate_text import render_text
from harness.report.render import render_report
from harness.stats.calibration import calibration_from_results
from harness.stats.cases import trial_order, variant_key
from harness.stats.comparison import compare
from harness.stats.frontier import pareto_summary
from harness.stats.summary import summarize_variants
from harness.store import (
    RESULTS_FILE,
    CompactResult,
    Manifest,
    ManifestError,
    TrialResult,
    compact,
    read_compact_results,
    read_results,
)

PROMPTS = ("v1", "v2")


def _trial(case: int, prompt: str, repeat: int, *, payload: int = 40, judged: bool = False,
           costs: bool = True) -> dict[str, Any]:
    """One stored trial as results.jsonl holds it. v2 fails every 4th case v1 passes; a few trials error."""
    p = PROMPTS.index(prompt)
    h = (case * 7919 + p * 104729 + repeat * 31) % 100
    passed = h >= 25 and not (p == 1 and case % 4 == 0)
    error = {"kind": "server", "message": "HTTP 500", "status": 500} if h == 7 else None
    score = None if error else (0.5 if case % 5 == 0 and passed else float(passed))
    grades = [] if error else [{"grader": "contains", "passed": passed, "score": float(passed),
                                "reason": "found" if passed else f"no 'ok' in {prompt} answer {case}"}]
    labelled = judged and case % 3 == 0
    if labelled and not error:
        grades.append({"grader": "judge", "passed": passed, "score": float(passed), "reason": "judged",
                       "details": {"judge": "j1", "model": "judge-model", "threshold": 0.5, "reason": f"why {case}",
                                   "verdict": "pass" if passed else "fail"}})
    return {
        "trial_id": f"{prompt}-{case:05d}-{repeat}", "case_id": f"case-{case:05d}", "prompt": prompt, "model": "m",
        "temperature": 0.0, "repeat": repeat,
        "request": {"model": "m", "messages": [{"role": "user", "content": f"question {case} " + "q" * payload}]},
        "output": None if error else f"{prompt} answer {case}: {'ok' if passed else 'bad'} " + "o" * payload,
        "tool_calls": [], "finish_reason": "stop", "grades": grades,
        "passed": None if error else passed, "score": score,
        "usage": {} if error or not costs else {"prompt_tokens": 100 + case % 9, "completion_tokens": 5 + h % 4},
        "cost": None if error or not costs else 1e-6 * (100 + case % 9 + h % 4), "judge_usage": {},
        "judge_cost": 2e-6 if labelled and not error else None, "latency_ms": 50.0 + h, "attempts": 1,
        "error": error, "label": ("pass" if h % 2 else "fail") if labelled else None,
        "group": f"g{case % 6}" if case % 2 else None, "finished_at": 1.0,
    }  # fmt: skip


def write_run(directory: Path, cases: int, repeats: int = 1, *, lines: Iterator[dict[str, Any]] | None = None,
              metrics: tuple[str, ...] = ("pass_rate", "score", "cost"), **options: Any) -> Path:
    """A run folder written directly (no server): results in a shuffled order, as concurrency leaves them."""
    directory.mkdir(parents=True)
    n = cases * len(PROMPTS) * repeats
    Manifest(suite="big", run_id=directory.name, suite_file="big.yaml", suite_hash="h", harness_version="test",
             record_mode="live", models=["m"], prompts=list(PROMPTS), temperatures=[0.0], repeats=repeats,
             trials_planned=n, started_at=1.0, status="complete", trials_done=n,
             settings={"gate": {"metrics": list(metrics), "margin": 0.05}}).write(directory)  # fmt: skip
    records = lines if lines is not None else (
        _trial(c, p, r, **options) for r in range(repeats) for p in reversed(PROMPTS) for c in range(cases)
    )  # fmt: skip
    with (directory / RESULTS_FILE).open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, separators=(",", ":")) + "\n")
    return directory


def full_run(directory: Path) -> tuple[Manifest, list[TrialResult]]:
    """What ``load_run`` returned before compact records: every full record, in the report's order."""
    results = sorted(read_results(directory / RESULTS_FILE), key=lambda t: (variant_key(t), trial_order(t)))
    return Manifest.read(directory), results


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run(tmp_path_factory.mktemp("small") / "run", 40, repeats=3, judged=True)


# --- the same numbers and text as from full records --------------------------------------------------------


def test_compact_records_give_the_statistics_of_full_records(small_run: Path) -> None:
    _, full = full_run(small_run)
    _, records = load_run(small_run)
    assert all(isinstance(r, CompactResult) for r in records)
    assert [r.trial_id for r in records] == [r.trial_id for r in full]

    def same(f: Any) -> None:
        assert json.dumps(f(full), default=lambda o: o.to_dict()) == json.dumps(f(records),
                                                                                 default=lambda o: o.to_dict())

    same(lambda rs: summarize_variants(rs, seed=3, n_resamples=499))
    base = ("m", "v1", 0.0)
    for metric in ("pass_rate", "score", "cost", "latency_p95"):
        same(lambda rs, metric=metric: compare(rs, base, None, metric, seed=3))
    same(lambda rs: pareto_summary(rs, "score", seed=3, n_resamples=499))
    same(lambda rs: calibration_from_results(rs, resamples=499))
    same(lambda rs: case_details(rs, ["m · v1 · T=0", "m · v2 · T=0"]))
    calibration = calibration_from_results(records, resamples=499)
    assert calibration is not None and calibration.judges[0].disagreements  # the labelled trials were kept


@pytest.mark.parametrize("fmt", ["table", "markdown", "json", "html", "summary"])
def test_reports_are_the_text_full_records_gave(small_run: Path, fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    streamed = render_report(build_report(small_run), fmt)
    monkeypatch.setattr(build, "load_run", full_run)
    assert render_report(build_report(small_run), fmt) == streamed


def test_json_report_is_json_dumps_of_the_report(small_run: Path) -> None:
    from harness.report.json_report import render_json, report_dict

    report = build_report(small_run)
    assert render_json(report) == json.dumps(report_dict(report), indent=2, ensure_ascii=False) + "\n"
    assert len(json.loads(render_json(report))["cases"]) == 40


def test_gate_flips_show_the_outputs_read_back(small_run: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    run = write_run(tmp_path / "one", 40, metrics=("pass_rate",))
    streamed = gate_runs([run])
    (item,) = streamed.items
    assert item.flips and all(f.loaded for f in item.flips)
    first = item.flips[0]
    case = int(first.case_id.split("-")[1])
    assert first.baseline_output == _trial(case, "v1", 0)["output"]
    assert first.candidate_output == _trial(case, "v2", 0)["output"]
    assert first.why == f"contains: no 'ok' in v2 answer {case}"

    def full_load(directory: Path) -> gate_module.Run:
        manifest, results = full_run(directory)
        return gate_module.Run(directory, manifest, results)

    monkeypatch.setattr(gate_module, "load", full_load)
    assert render_text(gate_runs([run]), max_flips=100) == render_text(streamed, max_flips=100)


def test_flips_past_the_cap_are_listed_without_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = write_run(tmp_path / "one", 40, metrics=("pass_rate",))
    monkeypatch.setattr(gate_module, "FLIP_OUTPUTS", 2)
    (item,) = gate_runs([run]).items
    assert len(item.flips) > 2
    assert [f.loaded for f in item.flips[:3]] == [True, True, False]
    assert item.flips[2].candidate_output is None
    text = render_text(gate_runs([run]), max_flips=3)
    assert text.count("candidate: ") == 2 and "(outputs are read back for the first 2 cases only" in text


def test_run_against_baseline_run_reads_outputs_from_each_run(tmp_path: Path) -> None:
    base = write_run(tmp_path / "base", 30, metrics=("pass_rate",))
    lines = ({**_trial(c, p, 0), "output": f"now {c}", "passed": c % 4 != 0} for p in PROMPTS for c in range(30))
    run = write_run(tmp_path / "run", 30, lines=lines, metrics=("pass_rate",))
    outcome = gate_runs([run], [base])
    flipped = [f for item in outcome.items for f in item.flips]
    assert flipped and all(f.candidate_output == f"now {int(f.case_id[5:])}" for f in flipped)
    assert all(f.baseline_output and f.baseline_output.startswith(("v1 answer", "v2 answer")) for f in flipped)


def test_pytest_plugin_still_gets_full_records(small_run: Path) -> None:
    run = gate_module.load(small_run)
    assert isinstance(run.records[0], CompactResult)
    assert isinstance(run.results[0], TrialResult) and run.results[0].request
    assert [r.trial_id for r in run.results] == [r.trial_id for r in run.records]


# --- the HTML drill-down ------------------------------------------------------------------------------------


def test_drilldown_reads_full_records_for_the_cases_it_shows(small_run: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    report = build_report(small_run)
    assert all(not c.inputs for c in report.cases)  # the report holds counts, not requests
    monkeypatch.setattr(html_report, "MAX_CASES", 5)
    shown = html_report.drilldown(report)
    assert len(shown) == 5 and all(c.inputs for c in shown)
    assert all(isinstance(t, TrialResult) and t.output is not None for c in shown for v in c.variants
               for t in v.trials if t.error is None)  # fmt: skip
    ranked = sorted(report.cases, key=lambda c: (not c.disagrees, not c.failing, c.case_id))
    assert [c.case_id for c in shown] == sorted(c.case_id for c in ranked[:5])
    page = html_report.render_html(report)
    assert f"Showing 5 of {len(report.cases)} cases" in page
    assert shown[0].variants[0].trials[0].case_id in page


def test_drilldown_keeps_within_the_trial_budget(small_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(html_report, "MAX_TRIALS", 20)  # a case has 2 variants x 3 repeats here
    shown = html_report.drilldown(build_report(small_run))
    assert len(shown) == 3 and sum(len(v.trials) for c in shown for v in c.variants) == 18


def test_small_runs_show_every_case(small_run: Path) -> None:
    report = build_report(small_run)
    assert [c.case_id for c in html_report.drilldown(report)] == [c.case_id for c in report.cases]
    assert "Showing" not in html_report.render_html(report)


# --- the store's compact records ----------------------------------------------------------------------------


def test_compact_reader_skips_what_the_full_reader_skips(tmp_path: Path) -> None:
    good = [_trial(c, "v1", 0) for c in range(4)]
    text = "".join(json.dumps(r) + "\n" for r in good) + json.dumps(good[1]) + "\n" + "{broken\n"
    path = tmp_path / RESULTS_FILE
    path.write_text(text + json.dumps(_trial(9, "v1", 0))[:50], encoding="utf-8")  # a repeat, a corrupt line, torn
    assert [r.trial_id for r in read_compact_results(path)] == [r["trial_id"] for r in good]


def test_compact_keeps_what_statistics_and_calibration_read() -> None:
    full = TrialResult.from_dict(_trial(3, "v1", 0, judged=True))
    record = compact(full, {})
    for name in ("trial_id", "case_id", "prompt", "model", "temperature", "repeat", "passed", "score", "error",
                 "cost", "latency_ms", "judge_cost", "group", "label", "variant", "decided", "finished",
                 "tokens_in", "tokens_out", "output_snippet"):
        assert getattr(record, name) == getattr(full, name), name
    assert (record.tokens_in, record.tokens_out) == (103.0, 5.0 + (3 * 7919) % 100 % 4)
    assert [g.grader for g in record.grades] == ["judge"]  # only what calibration reads
    unlabelled = compact(TrialResult.from_dict(_trial(4, "v1", 0, judged=True)))
    assert (unlabelled.grades, unlabelled.output_snippet) == ((), "")


def test_shared_numbers_keep_negative_zero() -> None:
    shared: dict[Any, Any] = {}
    first = compact(TrialResult.from_dict({**_trial(1, "v1", 0), "temperature": 0.0}), shared)
    second = compact(TrialResult.from_dict({**_trial(2, "v1", 0), "temperature": -0.0}), shared)
    third = compact(TrialResult.from_dict({**_trial(3, "v1", 0), "temperature": 0.0}), shared)
    assert first.temperature is third.temperature and second.variant.endswith("T=-0")


def test_unreadable_manifest_is_a_harness_error(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ManifestError, match="manifest.json: unreadable manifest") as caught:
        Manifest.read(tmp_path)
    assert isinstance(caught.value, ValueError)


# --- memory --------------------------------------------------------------------------------------------------

PAYLOAD = 3000  # characters of request and of output per trial: ~6 KB a record, as with long prompts
MEASURE = """\
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
assert done.returncode == 0, done.stderr.decode()
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def _report_peak_kb(run: Path) -> int:
    """Peak RSS of ``harness report RUN`` printing the table and the JSON, measured by a fresh parent so no
    other child of this test process counts."""
    command = [sys.executable, "-m", "harness", "report", str(run), "--format", "table", "--format", "json"]
    out = subprocess.run([sys.executable, "-c", MEASURE, *command], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def test_report_memory_grows_with_compact_records_not_full_ones(tmp_path: Path) -> None:
    # No costs or tokens: nothing to bootstrap, so the 20,000-trial report takes seconds.
    trials = 20_000
    big = write_run(tmp_path / "big", trials // 2, payload=PAYLOAD, costs=False, metrics=("pass_rate",))
    tiny = write_run(tmp_path / "tiny", 10, payload=PAYLOAD, costs=False, metrics=("pass_rate",))
    grown_kb = _report_peak_kb(big) - _report_peak_kb(tiny)
    # Holding every full record takes more than its request and output text, 2 x PAYLOAD bytes a trial (117 MB
    # here); compact records, per-case tables and the JSON text come to about 1.5 KB a trial (~28 MB).
    full_kb = trials * 2 * PAYLOAD / 1024
    assert grown_kb < full_kb / 2, f"the report grew by {grown_kb / 1024:.0f} MB for {trials} trials"
