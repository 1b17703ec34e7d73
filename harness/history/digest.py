"""One run folder reduced to the rows the history index keeps: the run, its variants, its cases."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.store import Manifest, folder_stamp

# Resamples for the few bootstrap intervals a summary computes (cost, latency): the index keeps only their
# point estimates, and pass-rate intervals do not resample, so fewer draws change nothing it stores.
DIGEST_RESAMPLES = 199


@dataclass(frozen=True)
class VariantRow:
    variant: str
    model: str
    prompt: str
    temperature: float
    n_cases: int
    n_trials: int
    errors: int
    pass_rate: float | None
    pass_low: float | None
    pass_high: float | None
    pass_method: str
    score: float | None
    cost_per_case: float | None
    cost_total: float | None
    judge_cost_total: float | None
    latency_p50_s: float | None
    latency_p95_s: float | None
    ttft_p50_s: float | None


@dataclass(frozen=True)
class CaseRow:
    """One case of one variant: how many trials, passed, failed and errored (undecided = the rest)."""

    variant: str
    case_id: str
    trials: int
    passed: int
    failed: int
    errors: int
    score: float | None


@dataclass(frozen=True)
class RunDigest:
    suite: str
    run_id: str
    path: str
    stamp: str  # what changes when the folder does: the index re-reads a run only when this differs
    manifest: dict[str, Any]
    variants: list[VariantRow] = field(default_factory=list)
    cases: list[CaseRow] = field(default_factory=list)


def digest_run(directory: Path) -> RunDigest:
    """The index rows of one run folder. Raises ``ValueError``/``OSError`` for a folder that is not a run."""
    from harness.report.build import load_run, run_seed
    from harness.stats.cases import by_variant, label_of, pass_value, score_value
    from harness.stats.summary import summarize_variants

    stamp = folder_stamp(directory)
    manifest, results = load_run(directory)
    summaries = summarize_variants(results, seed=run_seed(manifest), n_resamples=DIGEST_RESAMPLES)
    rows = []
    errors_by_variant: dict[str, int] = {}
    ttft_by_variant: dict[str, float | None] = {}  # median time to first token of streamed replies
    cases: list[CaseRow] = []
    for key, trials in by_variant(results).items():
        label = label_of(key)
        per_case: dict[str, list[Any]] = {}
        for trial in trials:
            per_case.setdefault(trial.case_id, []).append(trial)
        errors_by_variant[label] = sum(t.error is not None for t in trials)
        firsts = [t.ttft_ms / 1000 for t in trials if getattr(t, "ttft_ms", None) is not None]
        ttft_by_variant[label] = float(statistics.median(firsts)) if firsts else None
        for case_id, group in per_case.items():
            scores = [s for t in group if (s := score_value(t)) is not None]
            cases.append(CaseRow(
                variant=label, case_id=case_id, trials=len(group),
                passed=sum(t.error is None and pass_value(t) == 1.0 for t in group),
                failed=sum(t.error is None and pass_value(t) == 0.0 for t in group),
                errors=sum(t.error is not None for t in group),
                score=sum(scores) / len(scores) if scores else None,
            ))  # fmt: skip
    for s in summaries:
        ttft = ttft_by_variant.get(s.variant)
        rows.append(VariantRow(
            variant=s.variant, model=s.model, prompt=s.prompt, temperature=float(s.temperature),
            n_cases=s.n_cases, n_trials=s.n_trials, errors=errors_by_variant.get(s.variant, 0),
            pass_rate=s.pass_rate.estimate, pass_low=s.pass_rate.low, pass_high=s.pass_rate.high,
            pass_method=s.pass_rate.method, score=None if s.score is None else s.score.estimate,
            cost_per_case=None if s.cost_per_case is None else s.cost_per_case.estimate,
            cost_total=s.cost_total, judge_cost_total=s.judge_cost_total,
            latency_p50_s=None if s.latency_p50_s is None else s.latency_p50_s.estimate,
            latency_p95_s=None if s.latency_p95_s is None else s.latency_p95_s.estimate,
            ttft_p50_s=ttft,
        ))  # fmt: skip
    manifest_dict = _manifest_fields(manifest)
    return RunDigest(suite=manifest.suite, run_id=directory.name, path=str(directory.resolve()),
                     stamp=stamp, manifest=manifest_dict, variants=rows, cases=cases)  # fmt: skip


def _manifest_fields(manifest: Manifest) -> dict[str, Any]:
    git = manifest.git or {}
    return {
        "started_at": manifest.started_at, "finished_at": manifest.finished_at, "status": manifest.status,
        "trials_planned": manifest.trials_planned, "trials_done": manifest.trials_done,
        "commit": git.get("commit"), "branch": git.get("branch"),
        "dirty": None if git.get("dirty") is None else int(bool(git.get("dirty"))),
        "harness_version": manifest.harness_version, "suite_hash": manifest.suite_hash,
    }  # fmt: skip
