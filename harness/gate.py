"""The gate stage: decide whether a candidate regressed against its baseline (docs/gating.md).

A gate invocation acts on every comparison it gates at once, so Holm runs over all of them: every metric
of every suite, whether the baseline is another variant of the same run (the suite's ``baseline:``) or a
run of the same suite from ``main`` (``--baseline``). The CLI (``harness gate``) and the pytest plugin both
call :func:`gate_runs` / :func:`decide`; rendering lives in ``harness.report.gate_markdown`` and
``harness.report.junit``.

Memory: the comparisons read compact records (``harness.store.CompactResult``); the outputs shown for flipped
cases come from a second pass over results.jsonl that keeps only those cases' records.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from harness.errors import EXIT_INCOMPLETE, EXIT_OK, EXIT_REGRESSION, HarnessError
from harness.stats.cases import METRICS, QUALITY_METRICS, VariantKey, by_variant, label_of, trial_order, variant_key
from harness.stats.comparison import Comparison, compare, compare_runs
from harness.stats.gate_rule import GateDecision, Verdict, gate_verdict
from harness.stats.paired import Mover, holm_adjust
from harness.store import RESULTS_FILE, Manifest, TrialRecord, TrialResult, read_results

RUN_A, RUN_B = " (run a)", " (run b)"
# Flipped cases per comparison whose outputs are read back: more than any renderer lists by default (JUnit: 100),
# bounded so a prompt that breaks every case of a huge suite does not bring every output into memory.
FLIP_OUTPUTS = 1000


@dataclass(frozen=True)
class Run:
    """A stored run: its folder, manifest and records (compact, see ``harness.store.CompactResult``) in a
    stable order."""

    directory: Path
    manifest: Manifest
    records: list[TrialRecord]

    @cached_property
    def results(self) -> list[TrialResult]:
        """Full records (outputs, grades), read from the folder on first use: for per-case checks."""
        if all(isinstance(r, TrialResult) for r in self.records):
            return list(self.records)  # type: ignore[arg-type]
        return sorted(read_results(self.directory / RESULTS_FILE), key=lambda t: (variant_key(t), trial_order(t)))

    @property
    def suite(self) -> str:
        return self.manifest.suite

    @property
    def gate_settings(self) -> dict[str, object]:
        return dict(self.manifest.settings.get("gate") or {})


@dataclass(frozen=True)
class Flip:
    """A case that got worse: per-case means (pass rate or score over repeats) and what each side wrote."""

    case_id: str
    baseline: float
    candidate: float
    baseline_output: str | None
    candidate_output: str | None
    why: str | None  # the candidate's first failing grade (or its error)
    loaded: bool = True  # False past FLIP_OUTPUTS: outputs and why were not read back


@dataclass(frozen=True)
class GatedComparison:
    """One gated (suite, metric, candidate vs baseline). ``comparison.gate`` holds the final verdict once
    :func:`decide` has re-adjusted p over the whole invocation."""

    suite: str
    run: Path
    baseline_run: Path | None  # None: the baseline is a variant of the same run
    candidate_key: VariantKey
    baseline_key: VariantKey
    comparison: Comparison
    non_inferiority: bool
    flips: tuple[Flip, ...] = ()

    @property
    def metric(self) -> str:
        return self.comparison.metric

    @property
    def verdict(self) -> Verdict:
        return self.comparison.gate.verdict

    @property
    def short_name(self) -> str:
        """``v3-broken vs v1``: only the parts of the variant that differ; the run when none do."""
        cand, base = _distinct_parts(self.candidate_key, self.baseline_key)
        if not cand:
            return f"{label_of(self.candidate_key)}: this run vs baseline run"
        return f"{cand} vs {base}"

    @property
    def name(self) -> str:
        return f"{self.suite} · {self.metric} · {self.short_name}"


@dataclass
class GateOutcome:
    """Every gated comparison with its final verdict, plus what the reader must know (notes, warnings)."""

    items: list[GatedComparison]
    fail_on_warn: bool = False
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def fails(self, item: GatedComparison) -> bool:
        return item.verdict is Verdict.BLOCK or (self.fail_on_warn and item.verdict is Verdict.WARN)

    @property
    def failed(self) -> list[GatedComparison]:
        return [i for i in self.items if self.fails(i)]

    @property
    def unevaluated(self) -> list[str]:
        """Why a gated comparison could not be judged: no shared decided case, or cases whose graders (a
        judge that could not answer) gave no verdict. Such a comparison never passes the gate."""
        why = []
        for item in self.items:
            c = item.comparison
            undecided = c.undecided_baseline + c.undecided_candidate
            if c.n_cases == 0:
                why.append(f"{item.name}: no case with a decided verdict on both sides: nothing was compared")
            elif undecided:
                why.append(f"{item.name}: {undecided} undecided case(s) (no grader verdict, e.g. the judge could "
                           "not answer) could change the verdict; resume the run to redo their judge calls")
        return why

    @property
    def exit_code(self) -> int:
        if self.failed:
            return EXIT_REGRESSION
        return EXIT_INCOMPLETE if self.unevaluated else EXIT_OK

    def counts(self) -> dict[str, int]:
        found = {v.value: 0 for v in Verdict}
        for item in self.items:
            found[item.verdict.value] += 1
        return {k: v for k, v in found.items() if v}

    @property
    def headline(self) -> str:
        """``BLOCK``, ``WARN`` or ``PASS``: the worst outcome, for titles and summaries."""
        if any(i.verdict is Verdict.BLOCK for i in self.items):
            return "BLOCK"
        if any(i.verdict is Verdict.WARN for i in self.items):
            return "WARN"
        return "NOT EVALUATED" if self.unevaluated else "PASS"


def load(directory: Path) -> Run:
    from harness.report.build import load_run

    manifest, records = load_run(directory)
    return Run(directory, manifest, records)


# --- building the family ------------------------------------------------------------------------------


def _distinct_parts(a: VariantKey, b: VariantKey) -> tuple[str, str]:
    shown_a, shown_b = [], []
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if x != y:
            shown_a.append(f"T={float(x):g}" if i == 2 else str(x))
            shown_b.append(f"T={float(y):g}" if i == 2 else str(y))
    return " · ".join(shown_a), " · ".join(shown_b)


def _output_and_why(trials: Sequence[TrialResult], worst: bool) -> tuple[str | None, str | None]:
    """The output to show for one side of a flip: the candidate's first failing trial, else the first."""
    if not trials:
        return None, None
    chosen = trials[0]
    if worst:
        chosen = next((t for t in trials if t.error is not None or t.passed is False), chosen)
    if chosen.error is not None:
        return chosen.output, f"{chosen.error.kind}: {chosen.error.message}"
    failing = [g for g in chosen.grades if g.passed is False or g.error]
    why = f"{failing[0].grader}: {failing[0].error or failing[0].reason}" if failing else None
    return chosen.output, why


def _worse(comparison: Comparison) -> Iterable[Mover]:
    # movers are sorted by change, most negative first, and hold every case that moved by > 0.25.
    if comparison.metric not in QUALITY_METRICS:
        return ()
    return itertools.takewhile(lambda m: m.change < 0, comparison.movers)


def flips_of(comparison: Comparison, base_trials: Sequence[TrialResult], cand_trials: Sequence[TrialResult],
             limit: int | None = None) -> tuple[Flip, ...]:
    """Cases that got worse on a quality metric, worst first, with both sides' outputs (the first ``limit``
    only; the trials given need only hold those cases)."""
    if comparison.metric not in QUALITY_METRICS:
        return ()
    base_by_case: dict[str, list[TrialResult]] = {}
    cand_by_case: dict[str, list[TrialResult]] = {}
    for t in base_trials:
        base_by_case.setdefault(t.case_id, []).append(t)
    for t in cand_trials:
        cand_by_case.setdefault(t.case_id, []).append(t)
    flips = []
    for i, mover in enumerate(_worse(comparison)):
        if limit is not None and i >= limit:
            flips.append(Flip(mover.case_id, mover.base, mover.new, None, None, None, loaded=False))
            continue
        base_out, _ = _output_and_why(base_by_case.get(mover.case_id, []), worst=False)
        cand_out, why = _output_and_why(cand_by_case.get(mover.case_id, []), worst=True)
        flips.append(Flip(mover.case_id, mover.base, mover.new, base_out, cand_out, why))
    return tuple(flips)


def _settings(run: Run, metrics: Sequence[str] | None, non_inferiority: bool) -> tuple[list[str], float, float, bool]:
    gate = run.gate_settings
    chosen = list(metrics) if metrics else [str(m) for m in (gate.get("metrics") or ["pass_rate"])]  # type: ignore[union-attr]
    unknown = [m for m in chosen if m not in METRICS]
    if unknown:
        raise HarnessError(f"unknown metric {unknown[0]!r}; choose from {', '.join(METRICS)}")
    margin = float(gate.get("margin", 0.05))  # type: ignore[arg-type]
    tolerance = float(gate.get("tolerance", 0.0))  # type: ignore[arg-type]
    strict = non_inferiority or gate.get("mode") == "non-inferiority"
    return list(dict.fromkeys(chosen)), margin, tolerance, strict


def _run_notes(run: Run, role: str) -> list[str]:
    notes = []
    m = run.manifest
    if m.shard:
        notes.append(f"{role} run {run.directory} is shard {m.shard} only: merge the shards first (harness merge)")
    if m.status != "complete":
        notes.append(f"{role} run {run.directory} is {m.status} ({m.trials_done}/{m.trials_planned} trials): "
                     "missing trials are left out and errors count as failures")
    return notes


def _flip_cases(comparisons: Iterable[tuple[VariantKey, Comparison]]) -> set[tuple[VariantKey, str]]:
    """(variant, case) pairs whose outputs the flips of these comparisons show."""
    return {(key, m.case_id) for key, c in comparisons for m in itertools.islice(_worse(c), FLIP_OUTPUTS)}


def _flip_trials(run: Run, wanted: set[tuple[VariantKey, str]]) -> dict[VariantKey, list[TrialResult]]:
    """The full records of the wanted (variant, case) pairs, read again from the run's results; their
    requests, the bulk of a record and never shown with a flip, are dropped."""
    if not wanted:
        return {}
    return by_variant(dataclasses.replace(r, request={}) for r in read_results(run.directory / RESULTS_FILE)
                      if (variant_key(r), r.case_id) in wanted)  # fmt: skip


def _against_variant(run: Run, base: VariantKey, candidates: Sequence[VariantKey], metrics: Sequence[str],
                     margin: float, tolerance: float, strict: bool) -> list[GatedComparison]:
    from harness.report.render import run_seed

    seed = run_seed(run.manifest)
    found: list[tuple[VariantKey, Comparison]] = []
    for metric in metrics:
        compared = compare(run.records, base, candidates, metric, margin, tolerance, strict=strict, seed=seed)
        found += zip(candidates, compared, strict=True)
    full = _flip_trials(run, _flip_cases([(k, c) for key, c in found for k in (base, key)]))
    return [
        GatedComparison(run.suite, run.directory, None, key, base, comparison, strict,
                        flips_of(comparison, full.get(base, []), full.get(key, []), FLIP_OUTPUTS))
        for key, comparison in found
    ]  # fmt: skip


def _suite_baseline(run: Run, keys: Sequence[VariantKey]) -> VariantKey | None:
    from harness.report.build import suite_baseline

    return suite_baseline(run.manifest, keys)


def in_run_comparisons(run: Run, metrics: Sequence[str] | None = None, non_inferiority: bool = False,
                       ) -> tuple[list[GatedComparison], list[str]]:
    """The suite's baseline variant against every other variant of the run, per gated metric."""
    chosen, margin, tolerance, strict = _settings(run, metrics, non_inferiority)
    keys = list(by_variant(run.records))
    notes = _run_notes(run, "candidate")
    if len(keys) < 2:
        return [], [*notes, f"{run.suite}: the run holds {len(keys)} variant(s) and no --baseline run was given: "
                            "nothing to compare"]
    declared = run.manifest.settings.get("baseline") or {}
    if all(v is None for v in declared.values()):
        notes.append(f"{run.suite}: the suite declares no baseline:, so its first model, prompt and temperature "
                     "serve as the baseline")
    base = _suite_baseline(run, keys)
    if base is None:
        return [], [*notes, f"{run.suite}: the suite's baseline variant is not in run {run.directory}: "
                            "nothing to compare"]
    candidates = [k for k in keys if k != base]
    return _against_variant(run, base, candidates, chosen, margin, tolerance, strict), notes


def run_vs_run_comparisons(run: Run, baseline: Run, metrics: Sequence[str] | None = None,
                           non_inferiority: bool = False) -> tuple[list[GatedComparison], list[str]]:
    """Each variant of ``run`` against the same variant of ``baseline`` (e.g. the run of ``main``); a variant
    the baseline run does not have (a prompt version the change adds) against the suite's baseline variant
    of ``run``, so a new version is gated too."""
    from harness.report.render import run_seed

    chosen, margin, tolerance, strict = _settings(run, metrics, non_inferiority)
    notes = [*_run_notes(run, "candidate"), *_run_notes(baseline, "baseline")]
    if run.suite != baseline.suite:
        notes.append(f"comparing suite {run.suite!r} against a run of suite {baseline.suite!r}")
    runs_a, runs_b = by_variant(baseline.records), by_variant(run.records)
    new: list[VariantKey] = []
    if len(runs_a) == 1 and len(runs_b) == 1:
        pairs = [(next(iter(runs_a)), next(iter(runs_b)))]
    else:
        pairs = [(k, k) for k in runs_b if k in runs_a]
        new = [k for k in runs_b if k not in runs_a]
    items: list[GatedComparison] = []
    if new:
        base = _suite_baseline(run, list(runs_b))
        if base is None or base in new:
            notes.append(f"{run.suite}: not in the baseline run and no baseline variant to compare with, so not "
                         f"gated: {', '.join(label_of(k) for k in new)}")
        else:
            notes.append(f"{run.suite}: new in this run, gated against its baseline variant {label_of(base)}: "
                         f"{', '.join(label_of(k) for k in new)}")
            items += _against_variant(run, base, new, chosen, margin, tolerance, strict)
    if not pairs:
        return items, [*notes, f"{run.suite}: the run and the baseline run share no variant"]
    seed = run_seed(run.manifest)
    found: list[tuple[VariantKey, VariantKey, Comparison]] = []
    for metric in chosen:
        compared = compare_runs(baseline.records, run.records, metric, margin, tolerance, strict=strict, seed=seed)
        by_label = {(c.baseline, c.candidate): c for c in compared}
        found += [(a, b, by_label[(label_of(a) + RUN_A, label_of(b) + RUN_B)]) for a, b in pairs]
    full_a = _flip_trials(baseline, _flip_cases((a, c) for a, _, c in found))
    full_b = _flip_trials(run, _flip_cases((b, c) for _, b, c in found))
    for key_a, key_b, comparison in found:
        flips = flips_of(comparison, full_a.get(key_a, []), full_b.get(key_b, []), FLIP_OUTPUTS)
        items.append(GatedComparison(run.suite, run.directory, baseline.directory, key_b, key_a, comparison,
                                     strict, flips))
    return items, notes


# --- the decision -------------------------------------------------------------------------------------


def judge_family(
    p_values: Sequence[float] | np.ndarray,
    lows: Sequence[float | None],
    highs: Sequence[float | None],
    margins: Sequence[float],
    higher_is_better: Sequence[bool],
    non_inferiority: Sequence[bool],
    n_cases: Sequence[int | None] | None = None,
    required_cases: Sequence[int | None] | None = None,
    p_better: Sequence[float | None] | None = None,
    metrics: Sequence[str | None] | None = None,
) -> list[GateDecision]:
    """The gate's decision for one invocation: Holm over every one-sided p, then the §8.3 rule for each.

    ``lows``/``highs`` are 90% bounds of candidate - baseline in each metric's own units; ``p_better`` the
    one-sided p of the same test for a gain (an IMPROVEMENT needs it below 0.05).
    """
    m = len(p_values)
    adjusted = holm_adjust(np.asarray(p_values, dtype=float)) if m else np.array([])
    n_cases = list(n_cases) if n_cases is not None else [None] * m
    required_cases = list(required_cases) if required_cases is not None else [None] * m
    p_better = list(p_better) if p_better is not None else [None] * m
    metrics = list(metrics) if metrics is not None else [None] * m
    return [
        gate_verdict(float(adjusted[i]), lows[i], highs[i], margins[i], higher_is_better=higher_is_better[i],
                     strict=non_inferiority[i], n_cases=n_cases[i], required_cases=required_cases[i],
                     p_better=p_better[i], metric=metrics[i])
        for i in range(m)
    ]  # fmt: skip


def decide(items: Sequence[GatedComparison], fail_on_warn: bool = False,
           notes: Iterable[str] = ()) -> GateOutcome:
    """Re-adjust over the whole family (every item of this invocation) and set each final verdict."""
    comparisons = [i.comparison for i in items]
    decisions = judge_family(
        [c.p_value for c in comparisons], [c.ci90.low for c in comparisons], [c.ci90.high for c in comparisons],
        [c.margin for c in comparisons], [c.higher_is_better for c in comparisons],
        [i.non_inferiority for i in items], [c.n_cases for c in comparisons],
        [c.required_cases for c in comparisons], [c.p_better for c in comparisons], [c.metric for c in comparisons],
    )  # fmt: skip
    final = [
        dataclasses.replace(item, comparison=dataclasses.replace(
            item.comparison, p_holm=d.p_holm, family_size=len(items), gate=d))
        for item, d in zip(items, decisions, strict=True)
    ]  # fmt: skip
    warnings = [
        f"{i.name}: strict non-inferiority needs about {i.comparison.required_cases} cases to show "
        f"no drop larger than the margin, and this suite has {i.comparison.n_cases}; below that it BLOCKs most "
        "unchanged prompts (see docs/gating.md, strict non-inferiority)"
        for i in final
        if i.non_inferiority and i.comparison.required_cases is not None
        and i.comparison.n_cases < i.comparison.required_cases
    ]  # fmt: skip
    return GateOutcome(final, fail_on_warn, list(notes), warnings)


def gate_runs(
    runs: Sequence[Path],
    baselines: Sequence[Path] = (),
    *,
    metrics: Sequence[str] | None = None,
    non_inferiority: bool = False,
    fail_on_warn: bool = False,
) -> GateOutcome:
    """Gate every run in ``runs``: against the ``baselines`` run of the same suite when one is given (one
    baseline for one run is matched whatever its name), else within the run against the suite's baseline
    variant. Holm runs over everything gated here."""
    loaded = [load(p) for p in dict.fromkeys(runs)]
    base_runs = [load(p) for p in dict.fromkeys(baselines)]
    by_suite: dict[str, Run] = {}
    for b in base_runs:
        if b.suite in by_suite:
            raise HarnessError(f"two baseline runs of suite {b.suite!r}: {by_suite[b.suite].directory} and "
                               f"{b.directory}; give one")
        by_suite[b.suite] = b
    seen: set[str] = set()
    items: list[GatedComparison] = []
    notes: list[str] = []
    for run in loaded:
        if run.suite in seen:
            raise HarnessError(f"two runs of suite {run.suite!r} to gate; give one run per suite")
        seen.add(run.suite)
        baseline = by_suite.get(run.suite)
        if baseline is None and len(loaded) == 1 and len(base_runs) == 1:
            baseline = base_runs[0]
        if baseline is None and base_runs:
            notes.append(f"{run.suite}: no baseline run of this suite was given; gating its variants against "
                         "the suite's baseline variant instead")
        found, why = (run_vs_run_comparisons(run, baseline, metrics, non_inferiority) if baseline is not None
                      else in_run_comparisons(run, metrics, non_inferiority))  # fmt: skip
        items += found
        notes += why
    return decide(items, fail_on_warn, notes)
