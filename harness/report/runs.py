"""``harness compare``: two runs of one suite, paired on case id, variant by variant (run b − run a).

Cases and variants present in one run only are listed, never dropped silently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.report.build import load_run, run_seed
from harness.report.format import amount_with_unit
from harness.report.headline import grouped, sentence
from harness.report.table import METRIC_NAMES, comparison_notes, flip_lines
from harness.report.text import Writer
from harness.stats.cases import METRICS, by_variant, label_of
from harness.stats.comparison import Comparison, apply_holm, compare_runs
from harness.stats.seeding import seed_from
from harness.store import Manifest, TrialResult

SCHEMA_NAME = "prompt-harness/compare"
SCHEMA_VERSION = 1
LISTED = 20


@dataclass(frozen=True)
class RunsComparison:
    suite: str
    hash_a: str
    hash_b: str
    status_a: str
    status_b: str
    metrics: tuple[str, ...]
    margin: float
    seed: int
    comparisons: list[Comparison]
    variants_only_a: list[str]
    variants_only_b: list[str]
    cases_only_a: list[str]
    cases_only_b: list[str]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_NAME,
            "schema_version": SCHEMA_VERSION,
            "suite": self.suite,
            "run_a": {"suite_hash": self.hash_a, "status": self.status_a},
            "run_b": {"suite_hash": self.hash_b, "status": self.status_b},
            "settings": {"metrics": list(self.metrics), "margin": self.margin, "seed": self.seed},
            "variants_only_a": self.variants_only_a,
            "variants_only_b": self.variants_only_b,
            "cases_only_a": self.cases_only_a,
            "cases_only_b": self.cases_only_b,
            "comparisons": [c.to_dict() for c in self.comparisons],
            "notes": self.notes,
        }


def _cases(results: list[TrialResult]) -> set[str]:
    return {t.case_id for t in results}


def compare_run_dirs(dir_a: Path, dir_b: Path, metrics: tuple[str, ...] | None = None) -> RunsComparison:
    manifest_a, results_a = load_run(dir_a)
    manifest_b, results_b = load_run(dir_b)
    if manifest_a.suite != manifest_b.suite:
        raise HarnessError(f"{dir_a} is suite {manifest_a.suite!r} but {dir_b} is {manifest_b.suite!r}: "
                           "compare two runs of one suite")  # fmt: skip
    gate: dict[str, Any] = dict(manifest_b.settings.get("gate") or {})
    chosen = metrics or tuple(gate.get("metrics") or ("pass_rate",))
    unknown = [m for m in chosen if m not in METRICS]
    if unknown:
        raise HarnessError(f"unknown metric {unknown[0]!r}; choose from {', '.join(METRICS)}")
    margin, tolerance = float(gate.get("margin", 0.05)), float(gate.get("tolerance", 0.0))
    strict = gate.get("mode") == "non-inferiority"
    seed = seed_from(f"{run_seed(manifest_a)}:{run_seed(manifest_b)}")
    variants_a, variants_b = by_variant(results_a), by_variant(results_b)
    notes = _notes(manifest_a, manifest_b)
    found: list[Comparison] = []
    if variants_a and variants_b:
        try:
            for metric in chosen:
                found += compare_runs(results_a, results_b, metric, margin, tolerance, strict=strict, seed=seed)
        except KeyError:
            notes.append("the two runs share no variant: nothing to pair")
    paired_single = len(variants_a) == 1 and len(variants_b) == 1
    only_a = [] if paired_single else sorted(label_of(k) for k in variants_a if k not in variants_b)
    only_b = [] if paired_single else sorted(label_of(k) for k in variants_b if k not in variants_a)
    return RunsComparison(
        suite=manifest_a.suite, hash_a=manifest_a.suite_hash, hash_b=manifest_b.suite_hash,
        status_a=manifest_a.status, status_b=manifest_b.status, metrics=tuple(chosen), margin=margin, seed=seed,
        comparisons=apply_holm(found, strict=strict) if found else [], variants_only_a=only_a,
        variants_only_b=only_b, cases_only_a=sorted(_cases(results_a) - _cases(results_b)),
        cases_only_b=sorted(_cases(results_b) - _cases(results_a)), notes=notes,
    )  # fmt: skip


def _notes(a: Manifest, b: Manifest) -> list[str]:
    notes = []
    if a.suite_hash != b.suite_hash:
        notes.append(f"the suite changed between the runs (hash {a.suite_hash} → {b.suite_hash})")
    for name, manifest in (("a", a), ("b", b)):
        if manifest.status != "complete":
            notes.append(f"run {name} is {manifest.status}: missing trials make the comparison smaller")
    return notes


def _ids(ids: list[str]) -> str:
    return ", ".join(ids[:LISTED]) + (f", … {len(ids) - LISTED} more" if len(ids) > LISTED else "")


def render_comparison(result: RunsComparison, fmt: str, wide: bool = False) -> str:
    """``wide``: the terminal table with every interval (wider than 120 columns)."""
    if fmt == "json":
        return json.dumps(result.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    if fmt not in ("table", "markdown"):
        raise HarnessError(f"harness compare prints table, markdown or json, not {fmt!r}")
    w = Writer(markdown=fmt == "markdown", wide=wide)
    w.heading(f"prompt-harness compare: {result.suite} (run b − run a)", 2)
    if result.comparisons:
        w.headline([sentence(group) for group in grouped(result.comparisons)])
    metrics = ", ".join(METRIC_NAMES.get(m, m) for m in result.metrics)
    w.para(f"paired on case id; {metrics}; Holm over the {len(result.comparisons)} comparisons shown; "
           f"margin {amount_with_unit(result.margin, 'pass_rate')}")  # fmt: skip
    if result.comparisons:
        w.comparisons(result.comparisons, show_baseline=True)
        for c in result.comparisons:
            w.details(f"{c.candidate} vs {c.baseline} · {METRIC_NAMES.get(c.metric, c.metric)}",
                      lambda c=c: w.lines(comparison_notes(c) + flip_lines(c)))  # type: ignore[misc]
    else:
        w.para("No variant to compare.")
    unmatched = []
    if result.cases_only_a:
        unmatched.append(f"cases only in run a ({len(result.cases_only_a)}): {_ids(result.cases_only_a)}")
    if result.cases_only_b:
        unmatched.append(f"cases only in run b ({len(result.cases_only_b)}): {_ids(result.cases_only_b)}")
    if result.variants_only_a:
        unmatched.append(f"variants only in run a: {'; '.join(result.variants_only_a)}")
    if result.variants_only_b:
        unmatched.append(f"variants only in run b: {'; '.join(result.variants_only_b)}")
    if unmatched:
        w.heading("Not compared")
        w.lines(unmatched)
    if result.notes:
        w.heading("Notes")
        w.lines(result.notes)
    return w.text()
