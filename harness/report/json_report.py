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


def report_dict(report: RunReport) -> dict[str, Any]:
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
        "cases": [case.to_dict() for case in report.cases],
        "notes": list(report.notes),
    }


def render_json(report: RunReport) -> str:
    # allow_nan=False: a NaN would make the file invalid JSON for strict parsers; the stats layer maps
    # non-finite numbers to null, and this makes any slip a loud error instead of a corrupt report.
    return json.dumps(report_dict(report), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
