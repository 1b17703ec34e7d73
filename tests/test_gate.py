"""The gate stage on recorded runs: the example `extract` suite replayed from its committed cassettes (real
SmolLM2-135M outputs), and small synthetic runs for the edges of the rule."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_gate_fixtures import DEAD_URL, V1_AGAIN, extract_project, flips, write_run

from harness.errors import EXIT_INCOMPLETE, EXIT_OK, EXIT_REGRESSION, HarnessError
from harness.gate import decide, gate_runs, in_run_comparisons, judge_family, load
from harness.pipeline import RunOptions, run_suite
from harness.report.gate_text import render_text
from harness.report.junit import render_junit
from harness.run_names import resolve_runs
from harness.stats.gate_rule import Verdict
from harness.store import RESULTS_FILE
from harness.suite import load_suite


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """The extract suite plus a v1 copy, replayed twice offline: (project root, reports root)."""
    root = tmp_path_factory.mktemp("extract")
    suite_path = extract_project(root, V1_AGAIN)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LOCAL_LLM_URL", DEAD_URL)
        mp.chdir(root)
        suite = load_suite(suite_path)
        for run_id in ("first", "second"):
            outcome = run_suite(suite, RunOptions(reports_root=root / "reports", cassettes_root=root / "cassettes",
                                                  run_id=run_id, record="replay", progress=False))  # fmt: skip
            assert not outcome.execute.replay_misses and outcome.manifest.status == "complete"
        yield root, root / "reports"


def by_candidate(items: list) -> dict[str, object]:
    return {i.candidate_key[1]: i for i in items}


def test_broken_prompt_blocks_with_its_flipped_cases(replayed: tuple[Path, Path]) -> None:
    _, reports = replayed
    outcome = gate_runs([reports / "extract" / "first"])
    found = by_candidate(outcome.items)
    broken = found["v3-broken"]
    assert broken.verdict is Verdict.BLOCK and broken.comparison.p_holm < 0.01
    assert outcome.exit_code == EXIT_REGRESSION and outcome.failed == [broken]
    run = load(reports / "extract" / "first")
    passed = {(t.prompt, t.case_id): t.passed for t in run.results}
    expected = sorted(c for (p, c), ok in passed.items() if p == "v1" and ok and not passed[("v3-broken", c)])
    assert len(expected) >= 15  # the recorded data really differ a lot
    assert sorted(f.case_id for f in broken.flips) == expected
    flip = broken.flips[0]
    assert flip.baseline == 1.0 and flip.candidate == 0.0
    # The flipped case carries both outputs and why the candidate failed: prose where JSON was wanted.
    assert "{" in (flip.baseline_output or "") and "{" not in (flip.candidate_output or "")
    assert flip.why is not None and flip.why.startswith("json_schema: output is not JSON")
    assert broken.comparison.mde_message and "this suite detects a drop of" in broken.comparison.mde_message


def test_unchanged_prompt_does_not_block(replayed: tuple[Path, Path]) -> None:
    _, reports = replayed
    outcome = gate_runs([reports / "extract" / "first"])
    same = by_candidate(outcome.items)["v1-again"]
    assert same.comparison.delta == 0.0 and not same.flips
    # 24 cases cannot prove the absence of a 5-point drop: honest INCONCLUSIVE, not a failure.
    assert same.verdict is Verdict.INCONCLUSIVE
    improved = by_candidate(outcome.items)["v2"]
    assert improved.verdict not in (Verdict.BLOCK, Verdict.WARN)
    assert improved.comparison.delta is not None and improved.comparison.delta > 0


def test_two_replays_of_one_suite_gate_clean_against_each_other(replayed: tuple[Path, Path]) -> None:
    _, reports = replayed
    outcome = gate_runs([reports / "extract" / "second"], [reports / "extract" / "first"])
    assert len(outcome.items) == 4  # each variant of the candidate run against the same variant of the baseline run
    assert all(i.baseline_run == reports / "extract" / "first" for i in outcome.items)
    assert all(i.comparison.delta == 0.0 and i.verdict is Verdict.INCONCLUSIVE for i in outcome.items)
    assert outcome.exit_code == EXIT_OK


def test_run_names_resolve(replayed: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    root, reports = replayed
    monkeypatch.chdir(root)
    first, second = reports / "extract" / "first", reports / "extract" / "second"
    assert resolve_runs(str(first)) == [first]
    assert resolve_runs("extract@first", reports) == [first]
    # "latest" is by start time: the second replay started later.
    assert resolve_runs("extract@latest", reports) == [second]
    assert resolve_runs("extract", reports) == [second]
    assert resolve_runs(str(reports / "extract")) == [second]
    assert resolve_runs(str(reports)) == [second]
    assert resolve_runs("suites/examples/extract.yaml", reports) == [second]
    assert resolve_runs("suites/examples", reports) == [second]
    assert resolve_runs("extract/first", reports) == [first]
    assert resolve_runs(str(first / "results.jsonl")) == [first]
    assert resolve_runs("first", reports) == [first]  # a run id: that run of every suite that has one
    with pytest.raises(HarnessError, match=r"extract@nope: no such run .*runs: first, second"):
        resolve_runs("extract@nope", reports)
    with pytest.raises(HarnessError, match="not a run folder, SUITE@RUN_ID"):
        resolve_runs("no/such/thing", reports)
    with pytest.raises(HarnessError, match="run id or suite file"):
        resolve_runs("nothing-by-this-name", reports)
    with pytest.raises(HarnessError, match="expected SUITE@RUN_ID"):
        resolve_runs("@first", reports)


def test_a_run_id_names_that_run_of_every_suite(tmp_path: Path) -> None:
    a = write_run(tmp_path, "alpha", "pr-7", flips(20, 0))
    b = write_run(tmp_path, "beta", "pr-7", flips(20, 0))
    write_run(tmp_path, "beta", "older", flips(20, 0), started_at=1.0)
    assert resolve_runs("pr-7", tmp_path) == [a, b]
    assert {i.suite for i in gate_runs(resolve_runs("pr-7", tmp_path)).items} == {"alpha", "beta"}


def test_holm_runs_over_every_suite_gated_together(tmp_path: Path) -> None:
    # Each suite alone would WARN (p = 1/64); gated together, Holm doubles the smaller p.
    a = write_run(tmp_path, "alpha", "r1", flips(40, regressions=5))
    b = write_run(tmp_path, "beta", "r1", flips(40, regressions=5))
    alone = gate_runs([a])
    assert [i.verdict for i in alone.items] == [Verdict.WARN] and alone.items[0].comparison.p_holm == 1 / 64
    together = gate_runs([a, b])
    assert [i.comparison.family_size for i in together.items] == [2, 2]
    assert [i.comparison.p_holm for i in together.items] == [2 / 64, 2 / 64]
    assert all(i.verdict is Verdict.WARN for i in together.items)
    assert together.exit_code == EXIT_OK and decide(together.items, fail_on_warn=True).exit_code == EXIT_REGRESSION
    with pytest.raises(HarnessError, match="two runs of suite 'alpha'"):
        gate_runs([a, write_run(tmp_path, "alpha", "r2", flips(40, 1))])


def test_run_against_a_baseline_run_matches_suites_by_name(tmp_path: Path) -> None:
    main_a = write_run(tmp_path / "main", "alpha", "m", {"v1": [True] * 30})
    main_b = write_run(tmp_path / "main", "beta", "m", {"v1": [True] * 30})
    pr_a = write_run(tmp_path / "pr", "alpha", "p", {"v1": [True] * 20 + [False] * 10})
    pr_b = write_run(tmp_path / "pr", "beta", "p", {"v1": [True] * 30})
    outcome = gate_runs([pr_a, pr_b], resolve_runs(str(tmp_path / "main")))
    verdicts = {i.suite: i for i in outcome.items}
    assert verdicts["alpha"].baseline_run == main_a and verdicts["beta"].baseline_run == main_b
    assert verdicts["alpha"].verdict is Verdict.BLOCK and len(verdicts["alpha"].flips) == 10
    assert verdicts["beta"].verdict is Verdict.INCONCLUSIVE
    # A suite with no baseline run falls back to its own baseline variant, and says so.
    solo = write_run(tmp_path / "pr", "gamma", "p", flips(30, 0))
    mixed = gate_runs([pr_a, solo], [main_a])
    assert {i.suite for i in mixed.items} == {"alpha", "gamma"}
    assert any("gamma: no baseline run of this suite" in n for n in mixed.notes)


def test_a_version_new_in_the_pr_is_gated_against_the_suite_baseline(tmp_path: Path) -> None:
    main = write_run(tmp_path / "main", "s", "m", {"v1": [True] * 24 + [False] * 6})
    pr = write_run(tmp_path / "pr", "s", "p", {"v1": [True] * 24 + [False] * 6,
                                               "v2": [True] * 10 + [False] * 20})  # fmt: skip
    outcome = gate_runs([pr], [main])
    got = {i.candidate_key[1]: i for i in outcome.items}
    assert got["v1"].baseline_run == main and got["v1"].verdict is Verdict.INCONCLUSIVE
    assert got["v2"].baseline_run is None and got["v2"].baseline_key[1] == "v1"
    assert got["v2"].verdict is Verdict.BLOCK and len(got["v2"].flips) == 14
    assert got["v2"].comparison.family_size == 2
    assert any("new in this run, gated against its baseline variant" in n for n in outcome.notes)


def test_lower_is_better_metrics_block_when_cost_rises(tmp_path: Path) -> None:
    passes = {"v1": [True] * 30, "v2": [True] * 30, "v3": [True] * 30}
    base = [1e-4 * (1 + (i % 7) / 10) for i in range(30)]
    costs = {"v1": base, "v2": [c * 2.0 for c in base], "v3": [c * 0.5 for c in base]}
    run = write_run(tmp_path, "costly", "r", passes, costs=costs, gate={"metrics": ["pass_rate", "cost"]})
    outcome = gate_runs([run])
    got = {(i.metric, i.candidate_key[1]): i for i in outcome.items}
    assert got[("cost", "v2")].verdict is Verdict.BLOCK  # twice the cost: worse for a lower-is-better metric
    assert got[("cost", "v3")].verdict is Verdict.IMPROVEMENT
    assert got[("cost", "v2")].comparison.margin == pytest.approx(0.05 * sum(base) / 30)  # margin is relative
    assert got[("pass_rate", "v2")].verdict is not Verdict.BLOCK
    assert not got[("cost", "v2")].flips  # flips are listed for quality metrics
    only_cost = gate_runs([run], metrics=["cost"])
    assert {i.metric for i in only_cost.items} == {"cost"} and only_cost.items[0].comparison.family_size == 2
    with pytest.raises(HarnessError, match="unknown metric 'speed'"):
        gate_runs([run], metrics=["speed"])


def test_strict_non_inferiority_blocks_small_suites_and_warns_why(tmp_path: Path) -> None:
    run = write_run(tmp_path, "small", "r", flips(30, regressions=1, fixes=1))
    default = gate_runs([run])
    assert default.items[0].verdict is Verdict.INCONCLUSIVE and not default.warnings
    strict = gate_runs([run], non_inferiority=True)
    item = strict.items[0]
    assert item.verdict is Verdict.BLOCK and item.non_inferiority and "non-inferiority not shown" in \
        item.comparison.gate.reason
    assert strict.exit_code == EXIT_REGRESSION
    assert len(strict.warnings) == 1 and "has 30" in strict.warnings[0]
    # The suite may ask for it itself.
    by_suite = write_run(tmp_path, "release", "r", flips(30, 1, 1), gate={"mode": "non-inferiority"})
    assert gate_runs([by_suite]).items[0].non_inferiority


def test_notes_for_runs_with_nothing_to_gate_and_partial_runs(tmp_path: Path) -> None:
    single = write_run(tmp_path, "one", "r", {"v1": [True] * 10})
    outcome = gate_runs([single])
    assert outcome.items == [] and outcome.exit_code == EXIT_OK
    assert any("nothing to compare" in n for n in outcome.notes)
    shard = write_run(tmp_path, "sharded", "r", flips(20, 0))
    manifest = json.loads((shard / "manifest.json").read_text())
    manifest.update(shard="1/2", status="incomplete")
    (shard / "manifest.json").write_text(json.dumps(manifest))
    notes = gate_runs([shard]).notes
    assert any("shard 1/2 only" in n for n in notes) and any("is incomplete" in n for n in notes)


def test_judge_family_is_holm_then_the_rule() -> None:
    decisions = judge_family([0.003, 0.02, 0.3], [-0.2, -0.1, -0.02], [-0.05, 0.0, 0.04], [0.05] * 3,
                             [True] * 3, [False] * 3)  # fmt: skip
    assert [d.verdict for d in decisions] == [Verdict.BLOCK, Verdict.WARN, Verdict.NON_INFERIOR]
    assert [d.p_holm for d in decisions] == pytest.approx([0.009, 0.04, 0.3])
    # Alone, p = 0.004 blocks; in a family of three its Holm p is 0.012, which only warns.
    alone = judge_family([0.004], [-0.2], [-0.05], [0.05], [True], [False])
    three = judge_family([0.004, 0.5, 0.5], [-0.2, -0.1, -0.1], [-0.05, 0.1, 0.1], [0.05] * 3, [True] * 3,
                         [False] * 3)  # fmt: skip
    assert alone[0].verdict is Verdict.BLOCK and three[0].verdict is Verdict.WARN
    assert judge_family([], [], [], [], [], []) == []


def test_in_run_needs_a_baseline_variant(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path, "s", "r", flips(20, 0), baseline="v9")
    items, notes = in_run_comparisons(load(run_dir))
    assert items == [] and any("baseline variant is not in run" in n for n in notes)


def test_a_comparison_with_undecided_or_no_cases_is_not_evaluated_and_never_passes(tmp_path: Path) -> None:
    run = write_run(tmp_path, "undecided", "r", {"v1": [True] * 10, "v2": [True] * 10})
    lines = (run / RESULTS_FILE).read_text(encoding="utf-8").splitlines()
    # Two of the candidate's cases lost their verdict (a judge that could not answer): not in the pair.
    records = [json.loads(line) for line in lines]
    for record in records:
        if record["prompt"] == "v2" and record["case_id"] in ("case-000", "case-001"):
            record["passed"] = None
    (run / RESULTS_FILE).write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    outcome = gate_runs([run])
    (item,) = outcome.items
    assert item.comparison.undecided_candidate == 2 and item.comparison.n_cases == 8
    assert outcome.exit_code == EXIT_INCOMPLETE and outcome.headline == "NOT EVALUATED"
    assert "2 undecided case(s)" in outcome.unevaluated[0]
    text = render_text(outcome)
    assert "not evaluated:" in text and text.endswith("→ exit 4") and "8 cases × 1 (+2 undecided)" in text
    assert 'type="NOT_EVALUATED"' in render_junit(outcome)
