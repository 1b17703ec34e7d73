"""Comparisons of candidate variants against a baseline, with Holm, power and the gate verdict (§6–§9)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.stats.cases import (
    METRICS,
    QUALITY_METRICS,
    TIMING_METRICS,
    CaseTable,
    VariantKey,
    by_variant,
    case_groups,
    case_table,
    has_groups,
    label_of,
    resolve_variant,
)
from harness.stats.cost_timing_compare import cost_fields, timing_fields
from harness.stats.flakiness import variance_components
from harness.stats.gate_rule import GateDecision, gate_verdict
from harness.stats.intervals import Interval, grouped_mean_ci, grouped_se, json_float
from harness.stats.paired import (
    Mover,
    agree_with_tests,
    align_cases,
    holm_adjust,
    paired_comparison,
)
from harness.stats.power import (
    MIN_CASES_FOR_REPEATS,
    Detectable,
    detectable_levels,
    mde_fields,
    mde_sentence,
    omega2_from_run,
    required_cases,
    required_repeats,
)
from harness.stats.seeding import derive_seed
from harness.store import TrialRecord

GROUPED_ONE_SIDED_T = "CR1 clustered t (one-sided)"


@dataclass(frozen=True)
class Comparison:
    """candidate - baseline on one metric, over the cases both saw. Amounts are in the metric's units;
    ``margin`` and ``tolerance`` are absolute here (for cost and latency the caller's values were fractions
    of the baseline). ``p_value`` is one-sided for "candidate worse"; ``p_holm`` is adjusted over the family.
    """

    metric: str
    baseline: str
    candidate: str
    higher_is_better: bool
    n_cases: int
    k_baseline: tuple[int, int]
    k_candidate: tuple[int, int]
    only_baseline: list[str]
    only_candidate: list[str]
    baseline_estimate: float | None
    candidate_estimate: float | None
    delta: float | None
    ci95: Interval
    ci90: Interval
    p_value: float
    p_method: str
    p_better: float
    p_holm: float
    family_size: int
    margin: float
    tolerance: float
    sd_diff: float | None
    correlation: float | None
    variance_reduction: float | None
    mde_warn: float | None
    mde_block: float | None
    required_cases: int | None
    required_repeats: int | None
    mde_message: str | None
    gate: GateDecision
    # Why a level has no MDE at this size, with the cases needed: {"warn": Detectable, "block": ...}.
    mde_unreachable: dict[str, Detectable] = field(default_factory=dict)
    undecided_baseline: int = 0  # cases of the baseline (candidate) left out: no decided trial
    undecided_candidate: int = 0
    regressions: list[str] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)
    movers: list[Mover] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "higher_is_better": self.higher_is_better,
            "n_cases": self.n_cases,
            "k_baseline": list(self.k_baseline),
            "k_candidate": list(self.k_candidate),
            "only_baseline": list(self.only_baseline),
            "only_candidate": list(self.only_candidate),
            "baseline_estimate": json_float(self.baseline_estimate),
            "candidate_estimate": json_float(self.candidate_estimate),
            "delta": json_float(self.delta),
            "ci95": self.ci95.to_dict(),
            "ci90": self.ci90.to_dict(),
            "p_value": float(self.p_value),
            "p_method": self.p_method,
            "p_better": float(self.p_better),
            "p_holm": float(self.p_holm),
            "family_size": self.family_size,
            "margin": float(self.margin),
            "tolerance": float(self.tolerance),
            "sd_diff": json_float(self.sd_diff),
            "correlation": json_float(self.correlation),
            "variance_reduction": json_float(self.variance_reduction),
            "mde_warn": json_float(self.mde_warn),
            "mde_block": json_float(self.mde_block),
            "required_cases": self.required_cases,
            "required_repeats": self.required_repeats,
            "mde_message": self.mde_message,
            "gate": self.gate.to_dict(),
            "mde_unreachable": {level: d.to_dict() for level, d in self.mde_unreachable.items()},
            "undecided_baseline": self.undecided_baseline,
            "undecided_candidate": self.undecided_candidate,
            "regressions": list(self.regressions),
            "fixes": list(self.fixes),
            "movers": [m.to_dict() for m in self.movers],
            "notes": list(self.notes),
        }


def _k_range(table: CaseTable, ids: Sequence[str]) -> tuple[int, int]:
    ks = [len(table.values[c]) for c in ids]
    return (min(ks), max(ks)) if ks else (0, 0)


def _quality_fields(
    base: CaseTable,
    cand: CaseTable,
    groups: dict[str, str],
    margin: float,
    tolerance: float,
    seed: int,
    mover_threshold: float,
) -> dict[str, Any]:
    binary_single = base.binary and cand.binary and base.k_max <= 1 and cand.k_max <= 1
    pa = paired_comparison(
        cand.means,
        base.means,
        binary_single=binary_single,
        tolerance=tolerance,
        seed=seed,
        mover_threshold=mover_threshold,
        k=max(base.k_max, cand.k_max),
    )
    aligned = align_cases(cand.means, base.means)
    ids = aligned.case_ids
    out: dict[str, Any] = {
        "ci95": pa.ci95, "ci90": pa.ci90, "p_value": pa.p_value, "p_method": pa.p_method, "p_better": pa.p_better,
        "regressions": pa.regressions, "fixes": pa.fixes, "movers": pa.movers, "notes": [],
        "sd_diff": pa.sd_diff, "correlation": pa.correlation, "variance_reduction": pa.variance_reduction,
    }  # fmt: skip
    shared_groups = {c: groups[c] for c in ids if c in groups}
    if len(shared_groups) == len(ids) and has_groups(shared_groups):
        # Cases of one group are not independent: the group is the unit for the interval and the test.
        labels = [shared_groups[c] for c in ids]
        d = aligned.differences
        out["ci95"] = grouped_mean_ci(d, labels, 0.95, (-1.0, 1.0), pa.ci95.k)
        out["ci90"] = grouped_mean_ci(d, labels, 0.90, (-1.0, 1.0), pa.ci95.k)
        se, n_groups = grouped_se(d, labels)
        if n_groups >= 2 and se > 0:
            t_stat = (float(d.mean()) + tolerance) / se
            from scipy import stats

            out["p_value"] = float(stats.t.cdf(t_stat, n_groups - 1))
            out["p_better"] = float(stats.t.sf(float(d.mean()) / se, n_groups - 1))
            out["p_method"] = GROUPED_ONE_SIDED_T
            p_worse = float(stats.t.cdf(float(d.mean()) / se, n_groups - 1))
            for key in ("ci95", "ci90"):
                out[key] = agree_with_tests(out[key], p_worse, out["p_better"])
        out["notes"].append(f"cases in {n_groups} groups: groups are the unit of inference")

    n, k = pa.n, max(_k_range(base, ids)[1], _k_range(cand, ids)[1])
    sd_d = pa.sd_diff
    out.update(mde_warn=None, mde_block=None, required_cases=None, required_repeats=None, mde_message=None)
    if sd_d is None:
        out["notes"].append("fewer than 2 shared cases: no interval and no power statement")
        return out
    if sd_d == 0.0:
        out["notes"].append("every shared case moved by the same amount: no spread to size the suite from")
        return out
    room = float(aligned.base.mean()) if n else None  # a drop cannot take the baseline below 0
    levels = detectable_levels(sd_d, n, out["p_method"], margin, "pass_rate", room)
    out.update(mde_fields(levels), required_cases=required_cases(margin, sd_d) if margin > 0 else None)
    components: dict[str, float] = {}
    if base.k_max >= 2 and cand.k_max >= 2:
        vc_base = variance_components({c: base.values[c] for c in ids}, intervals=False)
        vc_cand = variance_components({c: cand.values[c] for c in ids}, intervals=False)
        if vc_base.within_var is not None and vc_cand.within_var is not None:
            omega2 = omega2_from_run(
                sd_d**2, vc_cand.within_var, vc_base.within_var, vc_cand.k_harmonic, vc_base.k_harmonic
            )
            components = {
                "omega2": omega2,
                "within_new": vc_cand.within_var,
                "within_base": vc_base.within_var,
            }
            if margin > 0 and n >= MIN_CASES_FOR_REPEATS:
                out["required_repeats"] = required_repeats(margin, n, **components)
    if margin > 0:
        out["mde_message"] = mde_sentence(n, k, sd_d, margin, **components, warn=levels["warn"],
                                          block=levels["block"])
    return out


def _estimate(values: np.ndarray, metric: str) -> float | None:
    if values.size == 0:
        return None
    return float(np.quantile(values, 0.95)) if metric in TIMING_METRICS else float(values.mean())


def _measure(
    base_trials: list[TrialRecord],
    cand_trials: list[TrialRecord],
    base_label: str,
    cand_label: str,
    metric: str,
    margin: float,
    tolerance: float,
    seed: int,
    mover_threshold: float,
) -> dict[str, Any]:
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    base, cand = case_table(base_trials, metric), case_table(cand_trials, metric)
    aligned = align_cases(cand.means, base.means)
    base_value, cand_value = _estimate(aligned.base, metric), _estimate(aligned.new, metric)
    pair_seed = derive_seed(seed, metric, base_label, cand_label)
    higher_is_better = metric in QUALITY_METRICS
    if higher_is_better:
        margin_abs, tolerance_abs = margin, tolerance
        groups = case_groups([*base_trials, *cand_trials])
        fields = _quality_fields(base, cand, groups, margin, tolerance, pair_seed, mover_threshold)
    else:
        # Margins for cost and latency are relative: a 5% margin means 5% of the baseline's value.
        scale = abs(base_value) if base_value is not None else 0.0
        margin_abs, tolerance_abs = margin * scale, tolerance * scale
        if metric == "cost":
            fields = cost_fields(base, cand, tolerance_abs, pair_seed)
        else:
            fields = timing_fields(base, cand, tolerance_abs, pair_seed, metric)
    if higher_is_better:
        undecided_base = len({t.case_id for t in base_trials} - set(base.values))
        undecided_cand = len({t.case_id for t in cand_trials} - set(cand.values))
        if undecided_base or undecided_cand:
            fields["notes"].append(
                f"undecided cases (no grader verdict, e.g. the judge could not answer): {undecided_base} in the "
                f"baseline, {undecided_cand} in the candidate; they are not in this comparison"
            )
        fields["undecided_baseline"], fields["undecided_candidate"] = undecided_base, undecided_cand
    if aligned.only_base or aligned.only_new:
        fields["notes"].append(
            f"{len(aligned.only_base)} cases only in the baseline and {len(aligned.only_new)} only in the "
            "candidate were left out"
        )
    return {
        "metric": metric,
        "baseline": base_label,
        "candidate": cand_label,
        "higher_is_better": higher_is_better,
        "n_cases": len(aligned.case_ids),
        "k_baseline": _k_range(base, aligned.case_ids),
        "k_candidate": _k_range(cand, aligned.case_ids),
        "only_baseline": aligned.only_base,
        "only_candidate": aligned.only_new,
        "baseline_estimate": base_value,
        "candidate_estimate": cand_value,
        "delta": None if base_value is None or cand_value is None else cand_value - base_value,
        "margin": margin_abs,
        "tolerance": tolerance_abs,
        **{"sd_diff": None, "correlation": None, "variance_reduction": None, "mde_warn": None,
           "mde_block": None, "required_cases": None, "required_repeats": None, "mde_message": None,
           "p_better": 1.0, "mde_unreachable": {}},
        **fields,
    }  # fmt: skip


def _gate(fields: Mapping[str, Any], p_holm: float, strict: bool) -> GateDecision:
    """The verdict of one comparison's fields (a measure, or a Comparison's ``vars``) at its Holm p."""
    ci90: Interval = fields["ci90"]
    return gate_verdict(
        p_holm,
        ci90.low,
        ci90.high,
        fields["margin"],
        higher_is_better=fields["higher_is_better"],
        strict=strict,
        n_cases=fields["n_cases"],
        required_cases=fields["required_cases"],
        p_better=fields["p_better"],
        metric=fields["metric"],
    )


def _finalize(measures: list[dict[str, Any]], strict: bool) -> list[Comparison]:
    adjusted = holm_adjust([m["p_value"] for m in measures]) if measures else np.array([])
    return [
        Comparison(**m, p_holm=float(p), family_size=len(measures), gate=_gate(m, float(p), strict))
        for m, p in zip(measures, adjusted, strict=True)
    ]


def apply_holm(comparisons: Sequence[Comparison], strict: bool = False) -> list[Comparison]:
    """Re-adjust over a wider family (e.g. every comparison a CI run gates) and redo the verdicts."""
    adjusted = holm_adjust([c.p_value for c in comparisons]) if comparisons else np.array([])
    return [
        dataclasses.replace(c, p_holm=float(p), family_size=len(comparisons), gate=_gate(vars(c), float(p), strict))
        for c, p in zip(comparisons, adjusted, strict=True)
    ]


def _family(pairs: Iterable[tuple[list[TrialRecord], list[TrialRecord], str, str]], metric: str, margin: float,
            tolerance: float, strict: bool, seed: int, mover_threshold: float) -> list[Comparison]:
    """(baseline trials, candidate trials, their labels) per pair, measured and adjusted as one Holm family."""
    measures = [_measure(base, cand, base_label, cand_label, metric, margin, tolerance, seed, mover_threshold)
                for base, cand, base_label, cand_label in pairs]  # fmt: skip
    return _finalize(measures, strict)


def compare(
    results: Iterable[TrialRecord],
    baseline_variant: VariantKey | str,
    candidates: Sequence[VariantKey | str] | None = None,
    metric: str = "pass_rate",
    margin: float = 0.05,
    tolerance: float = 0.0,
    *,
    strict: bool = False,
    seed: int = 0,
    mover_threshold: float = 0.25,
) -> list[Comparison]:
    """Each candidate (default: every other variant) against the baseline, paired on case id; Holm over
    the candidates. Variants are (model, prompt, temperature) keys or their labels."""
    variants = by_variant(results)
    base_key = resolve_variant(baseline_variant, variants)
    cand_keys = (
        [k for k in variants if k != base_key]
        if candidates is None
        else [resolve_variant(c, variants) for c in candidates]
    )
    pairs = [(variants[base_key], variants[k], label_of(base_key), label_of(k)) for k in cand_keys]
    return _family(pairs, metric, margin, tolerance, strict, seed, mover_threshold)


def compare_runs(
    results_a: Iterable[TrialRecord],
    results_b: Iterable[TrialRecord],
    metric: str = "pass_rate",
    margin: float = 0.05,
    tolerance: float = 0.0,
    *,
    strict: bool = False,
    seed: int = 0,
    mover_threshold: float = 0.25,
) -> list[Comparison]:
    """Run b against run a (the baseline), paired on case id: each variant of b against the same variant
    of a; when each run holds exactly one variant, those two are compared whatever their names."""
    runs_a, runs_b = by_variant(results_a), by_variant(results_b)
    if len(runs_a) == 1 and len(runs_b) == 1:
        pairs = [(next(iter(runs_a)), next(iter(runs_b)))]
    else:
        pairs = [(k, k) for k in runs_b if k in runs_a]
    if not pairs:
        raise KeyError("the two runs share no variant")
    labelled = [(runs_a[ka], runs_b[kb], f"{label_of(ka)} (run a)", f"{label_of(kb)} (run b)") for ka, kb in pairs]
    return _family(labelled, metric, margin, tolerance, strict, seed, mover_threshold)
