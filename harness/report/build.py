"""Everything a run's report shows, computed once and shared by every output format.

Determinism: results.jsonl lists trials in completion order, which varies with concurrency, so variants
are put in the suite's order, cases in id order, and every resampling is seeded from the suite (``run_seed``),
never from the run id or the clock. Two replays of one suite therefore produce byte-identical reports.

Memory: the statistics read a run's results as ``CompactResult`` (a few hundred bytes a trial, not the ~3 KB
of a full record), so a 100,000-trial run is reported in bounded memory. What needs full records, the HTML
drill-down, reads them again for the cases it shows (``harness.report.cases.load_case_details``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.report.cases import CaseDetail, case_details
from harness.stats.calibration import Calibration, calibration_from_results
from harness.stats.cases import METRICS, QUALITY_METRICS, VariantKey, label_of, trial_order, variant_key
from harness.stats.comparison import Comparison, apply_holm, compare
from harness.stats.frontier import ParetoPoint, pareto_summary
from harness.stats.seeding import seed_from
from harness.stats.summary import VariantSummary, summarize_variants
from harness.store import (
    MANIFEST_FILE,
    RESULTS_FILE,
    CompactResult,
    Manifest,
    TrialRecord,
    folder_stamp,
    read_compact_results,
)

DEFAULT_RESAMPLES = 9999
LEVEL = 0.95


def run_seed(manifest: Manifest) -> int:
    # Seeded by what the run evaluated, not by its timestamped id, so a replay of the same suite
    # reproduces every bootstrap interval and the report is byte-identical.
    return seed_from(f"{manifest.suite}:{manifest.suite_hash}")


@dataclass(frozen=True)
class ReportOptions:
    """What to compare. ``baseline``: a variant label or ``key=value`` pairs (model, prompt, temperature)
    overriding the suite's baseline; ``metrics``: compared metrics (default: the suite's gate metrics)."""

    baseline: str | None = None
    all_pairs: bool = False
    metrics: tuple[str, ...] | None = None
    n_resamples: int = DEFAULT_RESAMPLES
    margin: float | None = None  # overrides the suite's gate margin (sizing statements, verdict labels)


@dataclass(frozen=True)
class RunReport:
    suite: str
    suite_hash: str
    status: str
    trials_planned: int
    trials_done: int
    harness_version: str
    models: list[str]
    prompts: list[str]
    temperatures: list[float]
    repeats: int
    shard: str | None
    seed: int
    n_resamples: int
    baseline: str | None
    metrics: tuple[str, ...]
    margin: float
    tolerance: float
    gate_mode: str
    all_pairs: bool
    variants: list[VariantSummary]
    comparisons: list[Comparison]
    pareto_metric: str
    pareto: list[ParetoPoint]
    cases: list[CaseDetail]
    has_scores: bool = False
    calibration: Calibration | None = None
    notes: list[str] = field(default_factory=list)
    directory: Path | None = None  # the run folder, where the HTML drill-down reads full records

    @property
    def variant_labels(self) -> list[str]:
        return [v.variant for v in self.variants]


# The run folder read last, with the stamp of its files then: the history index and the summary after a run
# both read the same folder, and reading a large results file was a tenth of a 10,000-trial replay.
_LAST_READ: dict[Path, tuple[str, Manifest, list[CompactResult]]] = {}


def load_run(directory: Path) -> tuple[Manifest, list[CompactResult]]:
    """The manifest and the results of a run folder, compact, in (variant, case, repeat) order."""
    if not (directory / MANIFEST_FILE).is_file():
        raise HarnessError(f"{directory}: not a run folder (no {MANIFEST_FILE})")
    key, stamp = directory.resolve(), folder_stamp(directory)
    cached = _LAST_READ.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1], list(cached[2])
    manifest = Manifest.read(directory)  # an unreadable one raises ManifestError, naming the file
    results = sorted(read_compact_results(directory / RESULTS_FILE), key=lambda t: (variant_key(t), trial_order(t)))
    _LAST_READ.clear()  # one run at most: a long-lived process (the viewer) must not hold every run it showed
    _LAST_READ[key] = (stamp, manifest, results)
    return manifest, list(results)


def variant_order(manifest: Manifest) -> Callable[[VariantKey], tuple[Any, ...]]:
    """Sort key putting variants in the suite's order of models, prompts and temperatures."""

    def position(values: Sequence[Any], value: Any) -> tuple[int, Any]:
        return (values.index(value), "") if value in values else (len(values), str(value))

    temperatures = [float(t) for t in manifest.temperatures]
    return lambda key: (position(manifest.models, key[0]), position(manifest.prompts, key[1]),
                        position(temperatures, float(key[2])))  # fmt: skip


def suite_baseline(manifest: Manifest, keys: Sequence[VariantKey], spec: str | None = None) -> VariantKey | None:
    """The suite's baseline variant (unset fields: the first model, prompt, temperature), overridden by
    ``spec``. None when the run holds no such variant (e.g. it was filtered to other prompts)."""
    declared = dict(manifest.settings.get("baseline") or {})
    wanted: dict[str, Any] = {
        "model": declared.get("model") or (manifest.models[0] if manifest.models else None),
        "prompt": declared.get("prompt") or (manifest.prompts[0] if manifest.prompts else None),
        "temperature": declared.get("temperature"),
    }
    if wanted["temperature"] is None and manifest.temperatures:
        wanted["temperature"] = manifest.temperatures[0]
    if spec is not None:
        for key in keys:
            if spec == label_of(key):
                return key
        wanted.update(_parse_variant_spec(spec, keys))
        found = _find(keys, wanted)
        if found is None:
            raise HarnessError(f"--baseline {spec!r}: no such variant in this run; variants: "
                               + "; ".join(label_of(k) for k in keys))
        return found
    return _find(keys, wanted)


def _find(keys: Sequence[VariantKey], wanted: dict[str, Any]) -> VariantKey | None:
    for key in keys:
        if wanted["temperature"] is None:
            continue
        if (key[0], key[1], float(key[2])) == (wanted["model"], wanted["prompt"], float(wanted["temperature"])):
            return key
    return None


def _parse_variant_spec(spec: str, keys: Sequence[VariantKey]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for part in spec.split(","):
        name, sep, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or name not in ("model", "prompt", "temperature"):
            raise HarnessError(
                f"--baseline {spec!r}: give a variant label or model=…,prompt=…,temperature=…; variants: "
                + "; ".join(label_of(k) for k in keys)
            )
        if name == "temperature":
            try:
                fields[name] = float(value)
            except ValueError:
                raise HarnessError(f"--baseline {spec!r}: temperature must be a number") from None
        else:
            fields[name] = value
    return fields


def has_graded_scores(results: Sequence[TrialRecord]) -> bool:
    """True when some score says more than pass/fail (a judge scale, weighted graders): only then is the
    score column more than a copy of the pass rate."""
    return any(
        t.error is None and t.score is not None and (t.passed is None or t.score != float(t.passed))
        for t in results
    )


def _metrics(manifest: Manifest, options: ReportOptions, scored: bool) -> tuple[str, ...]:
    chosen = options.metrics or tuple((manifest.settings.get("gate") or {}).get("metrics") or ("pass_rate",))
    unknown = [m for m in chosen if m not in METRICS]
    if unknown:
        raise HarnessError(f"unknown metric {unknown[0]!r}; choose from {', '.join(METRICS)}")
    if not scored:
        chosen = tuple(m for m in chosen if m != "score") or ("pass_rate",)
    return tuple(dict.fromkeys(chosen))


def comparisons_for(
    results: Sequence[TrialRecord],
    ordered: Sequence[VariantKey],
    baseline: VariantKey | None,
    metrics: Sequence[str],
    *,
    all_pairs: bool,
    margin: float,
    tolerance: float,
    strict: bool,
    seed: int,
) -> list[Comparison]:
    """Baseline against every other variant (or every pair), for each metric; Holm over all of them."""
    if all_pairs:
        pairs = [(a, list(ordered[i + 1:])) for i, a in enumerate(ordered[:-1])]
    elif baseline is not None:
        pairs = [(baseline, [k for k in ordered if k != baseline])]
    else:
        pairs = []
    found: list[Comparison] = []
    for metric in metrics:
        for base, candidates in pairs:
            if candidates:
                found += compare(results, base, candidates, metric, margin, tolerance, strict=strict, seed=seed)
    return apply_holm(found, strict=strict) if found else []


def build_report(directory: Path, options: ReportOptions | None = None) -> RunReport:
    options = options or ReportOptions()
    manifest, results = load_run(directory)
    seed = run_seed(manifest)
    gate = dict(manifest.settings.get("gate") or {})
    margin = float(gate.get("margin", 0.05)) if options.margin is None else options.margin
    tolerance = float(gate.get("tolerance", 0.0))
    strict = gate.get("mode") == "non-inferiority"
    order = variant_order(manifest)
    summaries = sorted(
        summarize_variants(results, LEVEL, seed, n_resamples=options.n_resamples),
        key=lambda s: order((s.model, s.prompt, s.temperature)),
    )
    keys = [(s.model, s.prompt, s.temperature) for s in summaries]
    notes: list[str] = []
    baseline = suite_baseline(manifest, keys, options.baseline)
    if baseline is None and keys and not options.all_pairs:
        notes.append("the suite's baseline variant is not in this run: no comparisons (use --baseline)")
    scored = has_graded_scores(results)
    metrics = _metrics(manifest, options, scored)
    comparisons = comparisons_for(
        results, keys, baseline, metrics, all_pairs=options.all_pairs, margin=margin, tolerance=tolerance,
        strict=strict, seed=seed,
    )  # fmt: skip
    pareto_metric = next((m for m in metrics if m in QUALITY_METRICS), "pass_rate")
    by_label = {label_of(k): i for i, k in enumerate(keys)}
    pareto = sorted(
        pareto_summary(results, pareto_metric, margin, LEVEL, seed, options.n_resamples) if results else [],
        key=lambda p: by_label.get(p.variant, len(by_label)),
    )
    calibration = calibration_from_results(results)
    if not results:
        notes.append("the run has no finished trials")
    batched = sum(1 for r in results if r.batch)
    if batched:
        notes.append(f"{batched} of {len(results)} trials ran by batch: priced at the batch rate, no latency of "
                     "their own (left out of latency figures)")
    return RunReport(
        suite=manifest.suite, suite_hash=manifest.suite_hash, status=manifest.status,
        trials_planned=manifest.trials_planned, trials_done=manifest.trials_done,
        harness_version=manifest.harness_version, models=list(manifest.models), prompts=list(manifest.prompts),
        temperatures=[float(t) for t in manifest.temperatures], repeats=manifest.repeats, shard=manifest.shard,
        seed=seed, n_resamples=options.n_resamples, baseline=label_of(baseline) if baseline else None,
        metrics=metrics, margin=margin, tolerance=tolerance, gate_mode=str(gate.get("mode", "default")),
        all_pairs=options.all_pairs, variants=summaries, comparisons=comparisons, pareto_metric=pareto_metric,
        pareto=pareto, cases=case_details(results, [label_of(k) for k in keys]), has_scores=scored,
        calibration=calibration, notes=notes, directory=directory,
    )  # fmt: skip
