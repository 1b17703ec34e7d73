"""Summaries and comparisons built from stored TrialResult records."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness.stats.cases import score_value
from harness.stats.comparison import GROUPED_ONE_SIDED_T, apply_holm, compare, compare_runs
from harness.stats.costlat import BOOTSTRAP_T, ORDER_STATISTIC
from harness.stats.frontier import pareto_summary
from harness.stats.gate_rule import Verdict
from harness.stats.intervals import CLOPPER_PEARSON, CLUSTER_EFF_N_WILSON, CR1_T, EFF_N_WILSON, pass_rate_ci
from harness.stats.paired import MCNEMAR_MIDP, ONE_SAMPLE_T, mcnemar_midp
from harness.stats.seeding import derive_seed, seed_from
from harness.stats.summary import summarize_variants
from harness.store import TrialError, TrialResult, variant_label


def trial(
    case: str,
    passed: bool | None,
    *,
    prompt: str = "v1",
    model: str = "m",
    temperature: float = 0.0,
    repeat: int = 0,
    score: float | None = None,
    error: bool = False,
    cost: float | None = 0.001,
    latency_ms: float | None = 500.0,
    group: str | None = None,
) -> TrialResult:
    return TrialResult(
        trial_id=f"{model}/{prompt}/{temperature}/{case}/{repeat}",
        case_id=case,
        prompt=prompt,
        model=model,
        temperature=temperature,
        repeat=repeat,
        passed=None if error else passed,
        score=score,
        error=TrialError("timeout", "timed out") if error else None,
        cost=cost,
        latency_ms=latency_ms,
        usage={"prompt_tokens": 120, "completion_tokens": 30},
        judge_cost=0.0002,
        group=group,
    )


def binary_run(passes: list[bool], prompt: str = "v1", **kwargs: object) -> list[TrialResult]:
    return [trial(f"c{i:03d}", p, prompt=prompt, **kwargs) for i, p in enumerate(passes)]  # type: ignore[arg-type]


def test_errors_count_as_fail_and_undecided_are_excluded() -> None:
    results = binary_run([True] * 40) + [
        trial("e1", None, error=True),
        trial("e2", None, error=True),
        trial("u1", None),
    ]
    (summary,) = summarize_variants(results, seed=1)
    assert summary.n_cases == 43 and summary.n_trials == 43
    # 40 passes out of 42 decided cases (2 errors count as fails); the undecided case is left out.
    assert summary.pass_rate == pass_rate_ci(40, 42)
    assert summary.pass_rate.method == CLOPPER_PEARSON
    assert summary.undecided_trials == 1 and summary.undecided_cases == 1
    assert summary.error_rate.estimate == pytest.approx(2 / 43)
    assert summary.error_rate.method == CLOPPER_PEARSON
    assert any("no decided trial" in note for note in summary.notes)


def test_repeats_are_averaged_within_cases() -> None:
    rng = np.random.default_rng(4)
    results = []
    for i in range(30):
        k = 3 if i % 5 else 2  # k varies across cases
        for r in range(k):
            results.append(trial(f"c{i}", bool(rng.random() < 0.7), temperature=0.7, repeat=r))
    (summary,) = summarize_variants(results, seed=1)
    assert (summary.k_min, summary.k_max) == (2, 3)
    assert summary.pass_rate.method == CLUSTER_EFF_N_WILSON and summary.pass_rate.n == 30
    per_case = {}
    for t in results:
        per_case.setdefault(t.case_id, []).append(float(t.passed))  # type: ignore[arg-type]
    assert summary.pass_rate.estimate == pytest.approx(np.mean([np.mean(v) for v in per_case.values()]))
    assert summary.flakiness is not None and summary.flakiness.k_max == 3


def test_scores_tokens_costs_and_latency() -> None:
    rng = np.random.default_rng(6)
    results = [
        trial(f"c{i}", True, score=float(rng.uniform(0.4, 1.0)), cost=float(rng.lognormal(-7, 0.4)),
              latency_ms=float(rng.lognormal(6, 0.3)))
        for i in range(100)
    ]  # fmt: skip
    (summary,) = summarize_variants(results, seed=seed_from("run-7"), n_resamples=1999)
    assert summary.score is not None and summary.score.method == EFF_N_WILSON
    assert summary.score.estimate == pytest.approx(np.mean([t.score for t in results]))
    assert summary.tokens_in_per_case == 120 and summary.tokens_out_per_case == 30
    assert summary.cost_per_case is not None and summary.cost_per_case.method == BOOTSTRAP_T
    assert summary.cost_total == pytest.approx(sum(t.cost for t in results))  # type: ignore[misc]
    assert summary.judge_cost_total == pytest.approx(0.02)
    assert summary.latency_p95_s is not None and summary.latency_p95_s.method == ORDER_STATISTIC
    assert summary.latency_p95_s.estimate == pytest.approx(
        np.quantile([t.latency_ms / 1000 for t in results], 0.95)  # type: ignore[operator]
    )
    assert summary.flakiness is None


def test_summary_is_json_serialisable_and_deterministic() -> None:
    rng = np.random.default_rng(8)
    results = [trial(f"c{i}", bool(rng.random() < 0.8), prompt=p, cost=float(rng.lognormal(-7, 0.5)))
               for p in ("v1", "v2") for i in range(25)]  # fmt: skip
    first = [s.to_dict() for s in summarize_variants(results, seed=seed_from("run-a"), n_resamples=999)]
    again = [s.to_dict() for s in summarize_variants(results, seed=seed_from("run-a"), n_resamples=999)]
    other = [s.to_dict() for s in summarize_variants(results, seed=seed_from("run-b"), n_resamples=999)]
    text = json.dumps(first, allow_nan=False)
    assert json.loads(text) == first == again
    assert first[0]["cost_per_case"]["low"] != other[0]["cost_per_case"]["low"]
    assert [d["variant"] for d in first] == [variant_label("m", "v1", 0.0), variant_label("m", "v2", 0.0)]
    assert set(first[0]["pass_rate"]) == {
        "estimate",
        "low",
        "high",
        "method",
        "level",
        "n",
        "k",
        "df",
        "note",
    }


def test_seeds_are_stable_and_distinct() -> None:
    assert seed_from("run-1") == seed_from("run-1") != seed_from("run-2")
    assert 0 <= seed_from("run-1") < 2**64
    assert derive_seed(5, "a", "cost") != derive_seed(5, "cost", "a")


def test_score_falls_back_to_pass_and_is_clipped() -> None:
    assert score_value(trial("a", True)) == 1.0
    assert score_value(trial("a", False, score=1.2)) == 1.0
    assert score_value(trial("a", None, error=True)) == 0.0
    assert score_value(trial("a", None)) is None


def test_compare_binary_single_sample_uses_mcnemar_and_lists_flips() -> None:
    base = [True] * 60 + [False] * 10
    new = list(base)
    for i in (1, 5, 9, 13, 17, 21, 25, 29):
        new[i] = False
    new[65] = True
    results = binary_run(base) + binary_run(new, prompt="v2") + [trial("only-new", True, prompt="v2")]
    (c,) = compare(results, ("m", "v1", 0.0), metric="pass_rate", seed=3)
    assert c.p_method == MCNEMAR_MIDP and c.p_value == pytest.approx(mcnemar_midp(8, 1))
    assert c.regressions == [f"c{i:03d}" for i in (1, 5, 9, 13, 17, 21, 25, 29)] and c.fixes == ["c065"]
    assert c.only_candidate == ["only-new"] and c.only_baseline == [] and c.n_cases == 70
    assert c.delta == pytest.approx(-7 / 70)
    assert c.family_size == 1 and c.p_holm == pytest.approx(c.p_value)
    assert c.gate.verdict is Verdict.WARN
    assert c.mde_message is not None and c.mde_message.startswith("With 70 cases × 1 repeat")
    data = json.loads(json.dumps(c.to_dict(), allow_nan=False))
    assert data["gate"]["verdict"] == "WARN" and data["ci90"]["method"] == "paired t"


def test_compare_unchanged_and_worse_candidates_with_holm() -> None:
    rng = np.random.default_rng(10)
    difficulty = rng.uniform(0.2, 1.0, 80)
    results = []
    for prompt, shift in (("base", 0.0), ("same", 0.0), ("worse", -0.3)):
        for i, d in enumerate(difficulty):
            for r in range(3):
                results.append(trial(f"c{i}", bool(rng.random() < np.clip(d + shift, 0, 1)), prompt=prompt,
                                     temperature=0.7, repeat=r))  # fmt: skip
    comparisons = compare(results, variant_label("m", "base", 0.7), metric="pass_rate", seed=1)
    by_name = {c.candidate: c for c in comparisons}
    same, worse = by_name[variant_label("m", "same", 0.7)], by_name[variant_label("m", "worse", 0.7)]
    assert same.p_method == ONE_SAMPLE_T and same.gate.verdict is not Verdict.BLOCK
    assert worse.gate.verdict is Verdict.BLOCK and worse.delta < -0.15  # type: ignore[operator]
    assert worse.p_holm == pytest.approx(min(1.0, 2 * worse.p_value))
    assert (worse.k_baseline, worse.k_candidate) == ((3, 3), (3, 3))
    assert worse.required_cases is not None and worse.mde_warn is not None
    assert worse.mde_message is not None and "80 cases × 3 repeats" in worse.mde_message
    # Widening the family (a CI run gating more comparisons) can only raise the adjusted p-values.
    wider = apply_holm([*comparisons, *comparisons])
    assert all(w.p_holm >= c.p_holm for w, c in zip(wider, comparisons + comparisons, strict=True))
    assert wider[0].family_size == 4


def test_compare_with_all_equal_outcomes_is_not_zero_width() -> None:
    results = binary_run([True] * 30) + binary_run([True] * 30, prompt="v2")
    (c,) = compare(results, ("m", "v1", 0.0))
    assert c.ci95.low == pytest.approx(-0.116, abs=5e-4) and c.ci95.high == pytest.approx(0.116, abs=5e-4)
    assert c.gate.verdict is Verdict.INCONCLUSIVE  # 30 cases cannot rule out a 5-point drop
    assert c.mde_warn is None and any("same amount" in note for note in c.notes)


def test_compare_cost_is_lower_is_better_with_relative_margin() -> None:
    rng = np.random.default_rng(11)
    base_cost = rng.lognormal(-7, 0.3, 60)
    results = [trial(f"c{i}", True, cost=float(c)) for i, c in enumerate(base_cost)]
    results += [trial(f"c{i}", True, prompt="v2", cost=float(c * 1.5)) for i, c in enumerate(base_cost)]
    results += [trial(f"c{i}", True, prompt="v3", cost=float(c * 0.5)) for i, c in enumerate(base_cost)]
    up, down = compare(results, ("m", "v1", 0.0), metric="cost", margin=0.1, seed=2)
    assert not up.higher_is_better and up.ci95.method == BOOTSTRAP_T
    assert up.margin == pytest.approx(0.1 * base_cost.mean())
    assert up.delta == pytest.approx(0.5 * base_cost.mean()) and up.gate.verdict is Verdict.BLOCK
    assert down.gate.verdict is Verdict.IMPROVEMENT


def test_compare_latency_p95() -> None:
    rng = np.random.default_rng(12)
    lat = rng.lognormal(6, 0.4, 120)
    results = [trial(f"c{i}", True, latency_ms=float(x)) for i, x in enumerate(lat)]
    results += [trial(f"c{i}", True, prompt="slow", latency_ms=float(x * 2)) for i, x in enumerate(lat)]
    (c,) = compare(results, ("m", "v1", 0.0), metric="latency_p95", seed=4)
    assert c.delta == pytest.approx(np.quantile(lat / 1000, 0.95))
    assert c.ci95.low > 0 and c.p_value < 0.01 and c.gate.verdict is Verdict.BLOCK  # type: ignore[operator]


def test_compare_runs_pairs_on_case_ids() -> None:
    run_a = binary_run([True] * 50)
    run_b = binary_run([True] * 45 + [False] * 5, prompt="v1-edited")
    (c,) = compare_runs(run_a, run_b, seed=1)
    assert c.baseline.endswith("(run a)") and c.candidate.endswith("(run b)")
    assert c.regressions == [f"c{i:03d}" for i in range(45, 50)] and c.n_cases == 50
    with pytest.raises(KeyError):
        compare(run_a, ("m", "nope", 0.0))
    with pytest.raises(ValueError):
        compare(run_a + run_b, ("m", "v1", 0.0), metric="accuracy")


def test_grouped_cases_make_the_group_the_unit() -> None:
    rng = np.random.default_rng(13)
    results = []
    for g in range(12):
        doc_effect = rng.uniform(0.3, 1.0)
        for j in range(4):
            results.append(trial(f"g{g}-{j}", bool(rng.random() < doc_effect), group=f"doc{g}"))
            results.append(
                trial(f"g{g}-{j}", bool(rng.random() < doc_effect - 0.1), prompt="v2", group=f"doc{g}")
            )
    summaries = summarize_variants(results, seed=1)
    assert summaries[0].pass_rate.method == CR1_T and summaries[0].groups == 12
    assert any("12 case groups" in note for note in summaries[0].notes)
    (c,) = compare(results, ("m", "v1", 0.0), seed=1)
    assert c.p_method == GROUPED_ONE_SIDED_T and c.ci95.df == 11


def test_pareto_summary_flags_dominated_variant() -> None:
    rng = np.random.default_rng(14)
    quality = rng.random(100) < 0.8
    cost = rng.lognormal(-7, 0.3, 100)
    results = [
        trial(f"c{i}", bool(q), prompt="pricey", cost=float(c * 3))
        for i, (q, c) in enumerate(zip(quality, cost, strict=True))
    ]
    results += [
        trial(f"c{i}", bool(q), prompt="cheap", cost=float(c))
        for i, (q, c) in enumerate(zip(quality, cost, strict=True))
    ]
    points = {p.variant: p for p in pareto_summary(results, seed=2, n_resamples=999)}
    pricey, cheap = points[variant_label("m", "pricey", 0.0)], points[variant_label("m", "cheap", 0.0)]
    assert cheap.on_front and not pricey.on_front
    assert pricey.dominated_by == [cheap.variant] and not cheap.significantly_dominated
    assert json.loads(json.dumps(pricey.to_dict()))["significantly_dominated"] is True
