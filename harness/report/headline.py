"""The headline: one sentence per comparison, what a reviewer needs in ten seconds.

"v2 vs v1: pass rate −12.0 pts [−20.0, −4.0], BLOCK; cost −18%; 9 cases regressed, 2 fixed". When every
rendered request of a candidate is byte-identical to its baseline's, the sentence says UNCHANGED instead of
an interval: the two variants sent the same thing, so there is nothing to evaluate.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.report.format import NONE, pct, relative_change, signed_interval
from harness.stats.comparison import Comparison
from harness.store import RESULTS_FILE, read_results

QUALITY_NAMES = {"pass_rate": "pass rate", "score": "score", "cost": "cost", "latency_p95": "latency p95",
                 "ttft_p95": "TTFT p95"}


def request_fingerprints(directory: Path) -> dict[str, dict[tuple[str, int], str]]:
    """Per variant, (case id, repeat) → a hash of the rendered request: one pass over results.jsonl."""
    found: dict[str, dict[tuple[str, int], str]] = {}
    for t in read_results(directory / RESULTS_FILE):
        if not t.request:  # not recorded (an imported or synthetic run): nothing to call identical
            continue
        body = json.dumps(t.request, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        digest = hashlib.blake2b(body.encode(), digest_size=16).hexdigest()
        found.setdefault(t.variant, {})[(t.case_id, t.repeat)] = digest
    return found


def unchanged(fingerprints: Mapping[str, Mapping[tuple[str, int], str]], baseline: str, candidate: str) -> bool:
    """True when the candidate sent byte-for-byte the baseline's requests for every (case, repeat) both ran."""
    a, b = fingerprints.get(baseline) or {}, fingerprints.get(candidate) or {}
    return bool(a) and a.keys() == b.keys() and all(a[k] == b[k] for k in a)


def _change(old: float | None, new: float | None) -> str | None:
    text = relative_change(new, old)
    return None if text == NONE else text.replace("-", "−")


def sentence(comparisons: Sequence[Comparison], cost: tuple[float | None, float | None] | None = None,
             same_requests: bool = False) -> str:  # fmt: skip
    """One comparison (baseline vs candidate, one or more metrics) as one sentence."""
    first = comparisons[0]
    head = f"{first.candidate} vs {first.baseline}: "
    if same_requests:
        return head + "UNCHANGED (every rendered request is byte-identical to the baseline's: nothing to evaluate)"
    parts = []
    for c in comparisons:
        name = QUALITY_NAMES.get(c.metric, c.metric)
        parts.append(f"{name} {signed_interval(c.ci95, c.metric).replace('-', '−')}, {c.gate.verdict.value}")
    change = None if cost is None else _change(*cost)
    if change is not None and not any(c.metric == "cost" for c in comparisons):
        parts.append(f"cost {change}")
    quality = next((c for c in comparisons if c.metric in ("pass_rate", "score")), None)
    if quality is not None:
        worse, better = flip_counts(quality)
        parts.append(f"{worse} {'case' if worse == 1 else 'cases'} regressed, {better} fixed")
    return head + "; ".join(parts)


def flip_counts(c: Comparison) -> tuple[int, int]:
    """Cases that got worse and better: pass→fail flips with one trial per case, else cases whose mean moved."""
    if c.regressions or c.fixes:
        return len(c.regressions), len(c.fixes)
    better_up = 1 if c.higher_is_better else -1
    return (sum(1 for m in c.movers if m.change * better_up < 0), sum(1 for m in c.movers if m.change * better_up > 0))


def grouped(comparisons: Iterable[Comparison]) -> list[list[Comparison]]:
    """Comparisons of one (baseline, candidate) pair together, in report order."""
    groups: dict[tuple[str, str], list[Comparison]] = {}
    for c in comparisons:
        groups.setdefault((c.baseline, c.candidate), []).append(c)
    return list(groups.values())


def headline_sentences(report: Any) -> list[str]:
    """The headline of a ``RunReport``: one sentence per compared pair, or why there is none."""
    if not report.comparisons:
        if len(report.variants) == 1:
            v = report.variants[0]
            return [f"{v.variant}: pass rate {pct(v.pass_rate.estimate)} over {v.n_cases} cases (one variant: "
                    "nothing compared)"]  # fmt: skip
        return ["no comparison: " + (report.notes[0] if report.notes else "no baseline variant in this run")]
    costs = {v.variant: None if v.cost_per_case is None else v.cost_per_case.estimate for v in report.variants}
    prints = request_fingerprints(report.directory) if report.directory is not None else {}
    return [sentence(group, (costs.get(group[0].baseline), costs.get(group[0].candidate)),
                     unchanged(prints, group[0].baseline, group[0].candidate)) for group in grouped(report.comparisons)]
