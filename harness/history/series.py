"""A suite's history per variant: the last N runs' numbers in order, with the drift check on them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.history.drift import CaseCounts, Drift, drift_check
from harness.history.index import HistoryIndex
from harness.stats.seeding import seed_from

# metric -> the variants-table column holding it
METRIC_COLUMNS = {"pass_rate": "pass_rate", "score": "score", "cost": "cost_per_case",
                  "latency_p50": "latency_p50_s", "latency_p95": "latency_p95_s", "ttft": "ttft_p50_s"}  # fmt: skip
QUALITY = ("pass_rate", "score")


@dataclass(frozen=True)
class Point:
    run: dict[str, Any]  # the runs row: run_id, started_at, commit_sha, branch, dirty, status, path, …
    variant: dict[str, Any]  # the variants row

    def value(self, metric: str) -> float | None:
        return self.variant.get(METRIC_COLUMNS[metric])


@dataclass(frozen=True)
class Series:
    suite: str
    variant: str
    metric: str
    points: list[Point]
    drift: Drift | None
    notes: list[str] = field(default_factory=list)


def load_series(reports_root: Path, suite: str, *, variant: str | None = None, metric: str = "pass_rate",
                last: int = 20, branch: str | None = None) -> list[Series]:  # fmt: skip
    """One series per variant of ``suite`` (or just ``variant``): its last ``last`` runs, oldest first."""
    if metric not in METRIC_COLUMNS:
        raise HarnessError(f"--metric {metric!r}: choose from {', '.join(METRIC_COLUMNS)}")
    index = HistoryIndex(reports_root)
    index.sync()
    runs = [r for r in index.runs(suite, branch) if (r["trials_done"] or 0) > 0]
    if not runs:
        known = index.suites()
        where = f" on branch {branch!r}" if branch else ""
        raise HarnessError(f"no finished run of suite {suite!r}{where} under {reports_root}/"
                           + (f"; suites with runs: {', '.join(known)}" if known else ""))  # fmt: skip
    by_run = {r["run_id"]: r for r in runs}
    rows = index.variants(suite, list(by_run))
    labels = list(dict.fromkeys(r["variant"] for r in sorted(rows, key=lambda r: (by_run[r["run_id"]]["started_at"],))))
    if variant is not None:
        if variant not in labels:
            raise HarnessError(f"--variant {variant!r}: not in the history of {suite}; variants: {'; '.join(labels)}")
        labels = [variant]
    cases = _case_counts(index, suite, labels) if metric in QUALITY else {}
    found = []
    for label in labels:
        points = sorted((Point(by_run[r["run_id"]], r) for r in rows if r["variant"] == label),
                        key=lambda p: (p.run["started_at"] or 0, p.run["run_id"]))[-last:]  # fmt: skip
        counts = [cases.get((label, p.run["run_id"]), {}) for p in points] if metric == "pass_rate" else None
        seed = seed_from(f"{suite}:{label}:{metric}:{','.join(p.run['run_id'] for p in points)}")
        drift = drift_check([p.value(metric) for p in points], counts, seed=seed) if points else None
        notes = []
        if len({p.run["suite_hash"] for p in points}) > 1:
            notes.append("the suite changed within this window (several suite hashes): the trend is over the "
                         "cases every run shares")
        found.append(Series(suite, label, metric, points, drift, notes))
    return found


def _case_counts(index: HistoryIndex, suite: str, labels: list[str]) -> dict[tuple[str, str], CaseCounts]:
    counts: dict[tuple[str, str], dict[str, tuple[int, int]]] = {}
    for row in index.cases(suite):
        if row["variant"] in labels:
            decided = (row["passed"] or 0) + (row["failed"] or 0) + (row["errors"] or 0)
            if decided:
                counts.setdefault((row["variant"], row["run_id"]), {})[row["case_id"]] = (row["passed"] or 0, decided)
    return counts
