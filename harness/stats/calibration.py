"""Judge calibration: how well a model-as-judge agrees with human labels.

Cases may carry ``label:`` (``pass``/``fail``, or a value of the judge's scale). For every judge
configuration in a run (model, scale and rubric), each labelled trial the judge decided gives one pair
(human, judge), compared at two levels: pass/fail always, and the scale's own categories when the labels
are scale values (1–5 scores, choice labels).

Per level: accuracy, Cohen's kappa (plus quadratic-weighted kappa on numeric scales), the confusion matrix
and, per human category, how often the judge agreed, each with a 95% interval. Accuracy and per-category
agreement use the hybrid Wilson / Clopper–Pearson interval (``pass_rate_ci``) when each case gives one pair,
and the clustered eff-n Wilson interval when repeats or several variants give a case several pairs (the case
is the unit of inference, docs/statistics.md); kappa uses a BCa bootstrap over cases (``harness.stats.kappa``
says why).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.report.format import pct
from harness.stats.intervals import Interval, clustered_proportion_ci, pass_rate_ci, undefined_interval
from harness.stats.kappa import LEVEL, RESAMPLES, kappa_interval, quadratic_weights
from harness.stats.seeding import derive_seed, seed_from
from harness.store import TrialRecord, TrialResult

PASS, FAIL = "pass", "fail"
_PASS_WORDS = {"pass": PASS, "passed": PASS, "true": PASS, "yes": PASS,
               "fail": FAIL, "failed": FAIL, "false": FAIL, "no": FAIL}  # fmt: skip


# --- agreement at one level ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    """One labelled trial: the human's and the judge's category."""

    case_id: str
    human: str
    judge: str


@dataclass(frozen=True)
class Agreement:
    """Judge–human agreement over pairs at one level (pass/fail, or the scale's categories).

    ``confusion[i][j]`` counts pairs the human put in ``categories[i]`` and the judge in ``categories[j]``;
    ``per_category[c]`` is the share of pairs with human category ``c`` where the judge agreed.
    """

    level_name: str
    categories: tuple[str, ...]
    pairs: int
    cases: int
    accuracy: Interval
    kappa: Interval
    weighted_kappa: Interval | None
    confusion: tuple[tuple[int, ...], ...]
    per_category: Mapping[str, Interval]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "level": self.level_name, "categories": list(self.categories), "pairs": self.pairs,
            "cases": self.cases, "accuracy": self.accuracy.to_dict(), "kappa": self.kappa.to_dict(),
        }
        if self.weighted_kappa is not None:
            out["weighted_kappa"] = self.weighted_kappa.to_dict()
        out["confusion"] = {f"human {h}": {f"judge {j}": self.confusion[a][b] for b, j in enumerate(self.categories)}
                            for a, h in enumerate(self.categories)}
        out["per_category"] = {f"human {c}": ci.to_dict() for c, ci in self.per_category.items()}
        return out


def _share(hits: Mapping[str, list[bool]], level: float) -> Interval:
    """Share of True over pairs, with cases as the unit when some case has several pairs."""
    per_case = [v for v in hits.values() if v]
    if not per_case:
        return undefined_interval(None, level, 0, 1, "no pairs")
    if all(len(v) == 1 for v in per_case):
        return pass_rate_ci(sum(v[0] for v in per_case), len(per_case), level)
    return clustered_proportion_ci([sum(v) / len(v) for v in per_case], [len(v) for v in per_case], level)


def agreement(pairs: Sequence[Pair], categories: Sequence[str], *, level_name: str = "pass/fail",
              ordinal: bool = False, level: float = LEVEL, seed: int = 0, resamples: int = RESAMPLES) -> Agreement:
    """Accuracy, kappa (weighted too when ``ordinal``), confusion matrix and per-category agreement."""
    index = {c: i for i, c in enumerate(categories)}
    k = len(categories)
    case_ids = sorted({p.case_id for p in pairs})
    case_index = {c: i for i, c in enumerate(case_ids)}
    tables = np.zeros((len(case_ids), k, k))
    hits: dict[str, list[bool]] = defaultdict(list)
    by_category: dict[str, dict[str, list[bool]]] = {c: defaultdict(list) for c in categories}
    for p in pairs:
        tables[case_index[p.case_id], index[p.human], index[p.judge]] += 1
        hits[p.case_id].append(p.human == p.judge)
        by_category[p.human][p.case_id].append(p.human == p.judge)
    accuracy = _share(hits, level)
    kappa = kappa_interval(tables, None, level, derive_seed(seed, level_name, "kappa"), resamples, accuracy)
    weighted = None
    if ordinal and k > 2:
        # Weighted agreement is at least the exact agreement, so the accuracy interval is a safe fallback.
        weighted = kappa_interval(tables, quadratic_weights(k), level, derive_seed(seed, level_name, "weighted"),
                                  resamples, accuracy)
    confusion = tuple(tuple(int(x) for x in row) for row in tables.sum(axis=0))
    per_category = {c: _share(by_category[c], level) for c in categories if by_category[c]}
    return Agreement(level_name, tuple(categories), len(pairs), len(case_ids), accuracy, kappa, weighted,
                     confusion, per_category)


# --- from a run's results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Disagreement:
    case_id: str
    variant: str
    repeat: int
    human: str
    judge: str
    reason: str
    output: str

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass(frozen=True)
class JudgeCalibration:
    """One judge configuration's agreement with the human labels."""

    judge: str
    model: str
    labelled: int  # labelled trials the judge graded (decided or not)
    undecided: int  # of those, trials where the judge gave no verdict
    unusable_labels: tuple[str, ...]  # labels that are neither pass/fail nor a value of the scale
    pass_fail: Agreement | None
    scale: Agreement | None
    disagreements: tuple[Disagreement, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "labelled_trials": self.labelled, "judge_undecided": self.undecided,
            "unusable_labels": list(self.unusable_labels),
            "pass_fail": self.pass_fail.to_dict() if self.pass_fail else None,
            "scale": self.scale.to_dict() if self.scale else None,
            "disagreements": [d.to_dict() for d in self.disagreements],
        }


@dataclass(frozen=True)
class Calibration:
    judges: tuple[JudgeCalibration, ...]
    seed: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"judges": {j.judge: j.to_dict() for j in self.judges}}

    def markdown(self) -> str:
        from harness.stats._calibration_text import render

        return render(self, "github")

    def table(self) -> str:
        from harness.stats._calibration_text import render

        return render(self, "simple")


def _scale_categories(scale: Mapping[str, Any]) -> list[str]:
    if scale.get("kind") == "range":
        return [str(v) for v in range(int(scale["low"]), int(scale["high"]) + 1)]
    if scale.get("kind") == "choices":
        return [str(label) for label in scale["choices"]]
    return []


def human_label(label: Any, scale: Mapping[str, Any], threshold: float) -> tuple[str, str | None] | None:
    """(pass/fail, scale category or None) for a human label on this scale; None when not understood."""
    kind = scale.get("kind")
    if isinstance(label, bool):
        return (PASS if label else FAIL), None
    if isinstance(label, str):
        word = label.strip()
        if word.casefold() in _PASS_WORDS:
            return _PASS_WORDS[word.casefold()], None
        if kind == "choices":
            for name, score in scale["choices"].items():
                if str(name).casefold() == word.casefold():
                    return (PASS if float(score) >= threshold - 1e-9 else FAIL), str(name)
            return None
        try:
            label = float(word)
        except ValueError:
            return None
    if not isinstance(label, int | float) or not math.isfinite(label):
        return None
    if kind == "range":
        if label != int(label) or not int(scale["low"]) <= label <= int(scale["high"]):
            return None
        return (PASS if label >= threshold - 1e-9 else FAIL), str(int(label))
    if kind == "choices":
        matches = [str(n) for n, s in scale["choices"].items() if math.isclose(float(s), float(label))]
        if len(matches) != 1:
            return None
        return (PASS if float(label) >= threshold - 1e-9 else FAIL), matches[0]
    if label == 1:
        return PASS, None
    return (FAIL, None) if label == 0 else None


def calibration_from_results(results: Iterable[TrialRecord], seed: int | None = None, level: float = LEVEL,
                             resamples: int = RESAMPLES) -> Calibration | None:
    """Judge–human agreement per judge configuration, or None when no trial has both a label and a judge.

    Deterministic: trials are ordered by (case, variant, repeat), and the bootstrap seed defaults to a hash of
    the labelled trials' ids, so the same results always give the same report.
    """
    rows: dict[str, list[tuple[TrialRecord, Any]]] = defaultdict(list)
    for result in results:
        if result.label is None:
            continue
        for grade in result.grades:
            details = grade.details or {}
            if grade.grader == "judge" and isinstance(details.get("judge"), str):
                rows[details["judge"]].append((result, grade))
    if not rows:
        return None
    if seed is None:
        ids = sorted({r.trial_id for group in rows.values() for r, _ in group})
        seed = seed_from("\n".join(ids))
    judges = tuple(_calibrate(key, rows[key], derive_seed(seed, key), level, resamples) for key in sorted(rows))
    return Calibration(judges, seed)


def _calibrate(key: str, rows: list[tuple[TrialRecord, Any]], seed: int, level: float,
               resamples: int) -> JudgeCalibration:
    rows = sorted(rows, key=lambda row: (row[0].case_id, row[0].variant, row[0].repeat))
    first = rows[0][1].details
    scale = first.get("scale") or {"kind": "pass_fail"}
    categories = _scale_categories(scale)
    binary: list[Pair] = []
    fine: list[Pair] = []
    unusable: list[str] = []
    undecided = 0
    disagreements = []
    for result, grade in rows:
        details = grade.details or {}
        human = human_label(result.label, scale, float(details.get("threshold", 0.5)))
        if human is None:
            unusable.append(f"{result.case_id}: {result.label!r}")
            continue
        if grade.passed is None:
            undecided += 1
            continue
        judge_binary = PASS if grade.passed else FAIL
        judge_category = str(details.get("verdict")) if categories else None
        binary.append(Pair(result.case_id, human[0], judge_binary))
        has_category = human[1] is not None and judge_category in categories
        if has_category:
            fine.append(Pair(result.case_id, str(human[1]), str(judge_category)))
        shown_human, shown_judge = (human[1], judge_category) if has_category else (human[0], judge_binary)
        if shown_human != shown_judge:
            disagreements.append(Disagreement(result.case_id, result.variant, result.repeat, str(shown_human),
                                              str(shown_judge), str(details.get("reason") or grade.reason),
                                              result.output_snippet))
    return JudgeCalibration(
        judge=key, model=str(first.get("model", "")), labelled=len(rows) - len(unusable), undecided=undecided,
        unusable_labels=tuple(unusable),
        pass_fail=agreement(binary, [PASS, FAIL], level=level, seed=seed, resamples=resamples) if binary else None,
        scale=agreement(fine, categories, level_name="scale", ordinal=scale.get("kind") == "range", level=level,
                        seed=seed, resamples=resamples) if fine else None,
        disagreements=tuple(disagreements),
    )


# --- agreement among a judge's own votes -------------------------------------------------------------------


@dataclass(frozen=True)
class VoteAgreement:
    """How often a judge's votes on one output disagreed (judges with ``votes`` > 1; no labels needed)."""

    judge: str
    trials: int  # trials with two or more usable votes
    split: int  # of those, trials whose votes were not unanimous
    mean_agreement: float | None  # mean share of votes agreeing with the trial's most common verdict

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    def line(self) -> str:
        mean = pct(self.mean_agreement)
        return (f"judge votes {self.judge}: split on {self.split} of {self.trials} trials; "
                f"mean agreement with the majority {mean}")


def vote_agreement(results: Iterable[TrialResult]) -> list[VoteAgreement]:
    """Per judge configuration, how much its votes disagreed, over every trial it graded with several votes.

    Needs full results: a ``CompactResult`` keeps judge grades of labelled trials only."""
    shares: dict[str, list[float]] = defaultdict(list)
    for result in results:
        for grade in result.grades:
            details = grade.details or {}
            usable = [v for v in details.get("votes") or [] if v.get("verdict") is not None]
            if grade.grader == "judge" and isinstance(details.get("judge"), str) and len(usable) > 1 \
                    and isinstance(details.get("agreement"), int | float):
                shares[details["judge"]].append(float(details["agreement"]))
    return [VoteAgreement(key, len(values), sum(1 for v in values if v < 1.0), float(np.mean(values)))
            for key, values in sorted(shares.items())]
