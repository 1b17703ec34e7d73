"""The report as JSON for machines. Schema: ``report_schema.REPORT_SCHEMA``, documented in docs/reports.md.

Stable: keys keep their meaning within a ``schema_version``; new keys may be added, none are removed or
renamed without bumping the version. Every interval is an object with ``estimate``, ``low``, ``high``,
``method``, ``level``, ``n``, ``k``, ``df`` and ``note``.
"""

from __future__ import annotations

import json
from typing import Any

from harness.report.build import RunReport

SCHEMA_NAME = "prompt-harness/report"
SCHEMA_VERSION = 1


def report_dict(report: RunReport, cases: bool = True) -> dict[str, Any]:
    """The report as JSON data; ``cases=False`` leaves the per-case list out (``render_json`` streams it)."""
    return {
        "schema": SCHEMA_NAME,
        "schema_version": SCHEMA_VERSION,
        "suite": {"name": report.suite, "hash": report.suite_hash},
        "run": {
            "status": report.status,
            "trials_planned": report.trials_planned,
            "trials_done": report.trials_done,
            "harness_version": report.harness_version,
            "models": report.models,
            "prompts": report.prompts,
            "temperatures": report.temperatures,
            "repeats": report.repeats,
            "shard": report.shard,
        },
        "settings": {
            "level": 0.95,
            "seed": report.seed,
            "n_resamples": report.n_resamples,
            "baseline": report.baseline,
            "metrics": list(report.metrics),
            "margin": report.margin,
            "tolerance": report.tolerance,
            "gate_mode": report.gate_mode,
            "all_pairs": report.all_pairs,
        },
        "variants": [s.to_dict() for s in report.variants],
        "comparisons": [c.to_dict() for c in report.comparisons],
        "pareto": {"metric": report.pareto_metric, "points": [p.to_dict() for p in report.pareto]},
        "calibration": report.calibration.to_dict() if report.calibration is not None else None,
        "cases": [case.to_dict() for case in report.cases] if cases else [],
        "notes": list(report.notes),
    }


def render_json(report: RunReport) -> str:
    """``json.dumps(report_dict(report), indent=2)``, the same text, but the per-case list (one entry per case:
    100,000 in a large run) is encoded case by case instead of as one structure of dicts first."""
    # allow_nan=False: a NaN would make the file invalid JSON for strict parsers; the stats layer maps
    # non-finite numbers to null, and this makes any slip a loud error instead of a corrupt report.
    encoder = json.JSONEncoder(indent=2, ensure_ascii=False, allow_nan=False)
    parts = []
    for i, (key, value) in enumerate(report_dict(report, cases=False).items()):
        parts.append(f"{',' if i else '{'}\n  {encoder.encode(key)}: ")
        if key == "cases" and report.cases:
            # Nested like the encoder nests a list at level 1: items on lines of their own, 4 spaces in.
            parts += (f"{',' if j else '['}\n    {_nested(encoder.encode(c.to_dict()), 2)}"
                      for j, c in enumerate(report.cases))  # fmt: skip
            parts.append("\n  ]")
        else:
            parts.append(_nested(encoder.encode(value), 1))
    parts.append("\n}\n")
    return "".join(parts)


def _nested(text: str, level: int) -> str:
    # Encoded JSON has newlines only between its tokens (strings escape theirs), so indenting every line after
    # the first is exactly how the encoder lays out a value ``level`` levels deep.
    return text.replace("\n", "\n" + "  " * level)
