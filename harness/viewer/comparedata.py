"""A comparison page's data: two runs of a suite (variant by variant) or two variants of one run.

The statistics are the report's (``compare_run_dirs`` or the in-run ``comparisons_for``, Holm included); the
page adds, for one chosen pair of variants, every case that moved or needs reading — regressions, fixes,
disagreements (graders or repeats that do not agree) and errors — with both outputs and a word diff.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.report.format import amount, duration, p_value, pct, signed_interval
from harness.report.headline import grouped, sentence
from harness.stats.comparison import Comparison
from harness.stats.intervals import Interval
from harness.store import RESULTS_FILE, TrialResult, read_results
from harness.viewer.rundata import case_state, per_1k_cases, trial_view
from harness.viewer.wordiff import word_diff


def _trials(directory: Path, variant: str) -> dict[str, list[TrialResult]]:
    found: dict[str, list[TrialResult]] = {}
    for t in read_results(directory / RESULTS_FILE):
        if t.variant == variant:
            found.setdefault(t.case_id, []).append(t)
    for trials in found.values():
        trials.sort(key=lambda t: t.repeat)
    return found


def _rate(trials: Sequence[TrialResult]) -> float | None:
    decided = [t for t in trials if t.error is not None or t.passed is not None]
    return None if not decided else sum(1 for t in decided if t.error is None and t.passed) / len(decided)


def _disagrees(trials: Sequence[TrialResult]) -> bool:
    states = {t.passed for t in trials if t.error is None}
    graders_split = any(len({g.passed for g in t.grades if g.passed is not None}) > 1 for t in trials)
    return len(states) > 1 or graders_split


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def case_rows(a: dict[str, list[TrialResult]], b: dict[str, list[TrialResult]]) -> tuple[list[dict[str, Any]], int]:
    """The cases worth showing (both sides, tagged) and how many shared cases did not move."""
    rows, quiet = [], 0
    for case_id in sorted(set(a) | set(b)):
        ta, tb = a.get(case_id, []), b.get(case_id, [])
        ra, rb = _rate(ta), _rate(tb)
        tags = []
        if ra is not None and rb is not None and rb < ra:
            tags.append("regression")
        if ra is not None and rb is not None and rb > ra:
            tags.append("fix")
        if _disagrees(ta) or _disagrees(tb):
            tags.append("disagreement")
        if any(t.error is not None for t in (*ta, *tb)):
            tags.append("error")
        if not ta or not tb:
            tags.append("one side only")
        if not tags:
            quiet += 1
            continue
        out_a = (ta[0].output or "") if ta else ""
        out_b = (tb[0].output or "") if tb else ""
        rows.append({
            "id": case_id, "tags": tags, "diff": word_diff(out_a[:20000], out_b[:20000]),
            "a": _side(ta, ra), "b": _side(tb, rb),
        })  # fmt: skip
    return rows, quiet


def _side(trials: Sequence[TrialResult], rate: float | None) -> dict[str, Any]:
    views = [trial_view(t) for t in trials]
    cost, latency = _mean([t.cost for t in trials]), _mean([t.latency_ms for t in trials])
    shown = [f"rate {pct(rate)}"]
    if latency is not None:
        shown.append(duration(Interval(latency / 1000, None, None, "", 0.95, len(trials))))
    if cost is not None:
        shown.append(per_1k_cases(cost))
    return {
        "rate": rate, "state": case_state(v["state"] for v in views) if views else "missing", "trials": views,
        "cost": cost, "latency_ms": latency, "display": " · ".join(shown),
    }  # fmt: skip


def _shown(c: Comparison) -> dict[str, Any]:
    data = c.to_dict()
    levels = f"{amount(c.baseline_estimate, c.metric, True)} → {amount(c.candidate_estimate, c.metric, True)}"
    data["display"] = {"delta": signed_interval(c.ci95, c.metric), "p": p_value(c.p_holm), "levels": levels}
    return data


def compare_data(dir_a: Path, dir_b: Path, variant_a: str | None = None,
                 variant_b: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Everything the compare page shows. Same folder: two variants of one run (``variant_b`` vs
    ``variant_a``); two folders: run b against run a, drilled down on one shared variant."""
    from harness.report.build import comparisons_for, load_run, run_seed
    from harness.report.runs import compare_run_dirs
    from harness.stats.cases import by_variant, label_of

    manifest_a, results_a = load_run(dir_a)
    labels_a = [label_of(k) for k in by_variant(results_a)]
    notes: list[str] = []
    if dir_a.resolve() == dir_b.resolve():
        keys = {label_of(k): k for k in by_variant(results_a)}
        if variant_a not in keys or variant_b not in keys:
            raise HarnessError(f"{dir_a}: compare two of its variants: {'; '.join(keys)}")
        gate = dict(manifest_a.settings.get("gate") or {})
        metrics = tuple(gate.get("metrics") or ("pass_rate",))
        comparisons = comparisons_for(
            results_a, [keys[variant_a], keys[variant_b]], keys[variant_a], metrics, all_pairs=False,
            margin=float(gate.get("margin", 0.05)), tolerance=float(gate.get("tolerance", 0.0)),
            strict=gate.get("mode") == "non-inferiority", seed=run_seed(manifest_a),
        )  # fmt: skip
        pair = (variant_a, variant_b)
    else:
        result = compare_run_dirs(dir_a, dir_b)
        comparisons, notes = list(result.comparisons), list(result.notes)
        _, results_b = load_run(dir_b)
        labels_b = [label_of(k) for k in by_variant(results_b)]
        shared = [v for v in labels_a if v in labels_b]
        chosen = variant_a or (shared[0] if shared else None)
        if chosen is None or chosen not in labels_b:
            raise HarnessError(f"runs {dir_a.name} and {dir_b.name} share no variant to drill into"
                               + (f" ({chosen!r})" if chosen else ""))  # fmt: skip
        pair = (chosen, variant_b or chosen)
    sides = (_trials(dir_a, pair[0]), _trials(dir_b, pair[1]))
    rows, quiet = case_rows(*sides)
    costs = [_mean([t.cost for trials in side.values() for t in trials]) for side in sides]
    groups = grouped(comparisons)
    # The cost change is known for the pair drilled into; with several pairs (two runs) it is left out.
    headline = [sentence(group, (costs[0], costs[1]) if len(groups) == 1 else None) for group in groups]
    return {
        "schema": "prompt-harness/viewer-compare", "suite": manifest_a.suite,
        "a": {"run": dir_a.name, "variant": pair[0]}, "b": {"run": dir_b.name, "variant": pair[1]},
        "headline": headline, "comparisons": [_shown(c) for c in comparisons], "notes": notes,
        "cost_per_trial": costs, "cases": rows, "unchanged_cases": quiet,
        "counts": {tag: sum(tag in r["tags"] for r in rows) for tag in ("regression", "fix", "disagreement", "error")},
    }  # fmt: skip
