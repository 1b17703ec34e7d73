"""JSON Schema (draft 2020-12) of ``report.json`` (``schema_version`` 1); docs/reports.md explains each field.

Objects allow extra keys: later releases may add fields within a schema version, never remove or rename one.
"""

from __future__ import annotations

from typing import Any

NUMBER_OR_NULL: dict[str, Any] = {"type": ["number", "null"]}
INT_OR_NULL: dict[str, Any] = {"type": ["integer", "null"]}
STRINGS: dict[str, Any] = {"type": "array", "items": {"type": "string"}}

INTERVAL: dict[str, Any] = {
    "type": "object",
    "required": ["estimate", "low", "high", "method", "level", "n", "k", "df", "note"],
    "properties": {
        "estimate": NUMBER_OR_NULL,
        "low": NUMBER_OR_NULL,
        "high": NUMBER_OR_NULL,
        "method": {"type": "string"},
        "level": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "n": {"type": "integer", "minimum": 0},
        "k": {"type": "integer", "minimum": 0},
        "df": NUMBER_OR_NULL,
        "note": {"type": ["string", "null"]},
    },
}
INTERVAL_OR_NULL: dict[str, Any] = {"anyOf": [{"$ref": "#/$defs/interval"}, {"type": "null"}]}

FLAKINESS: dict[str, Any] = {
    "type": "object",
    "required": ["n_cases", "k_min", "k_max", "within_var", "within_sd", "between_var", "icc", "noise_share",
                 "se_by_repeats", "flaky_cases", "flaky_rate", "flakiest"],  # fmt: skip
    "properties": {
        "within_sd": NUMBER_OR_NULL,
        "icc": NUMBER_OR_NULL,
        "se_by_repeats": {"type": "object", "additionalProperties": NUMBER_OR_NULL},
        "flaky_cases": {"type": "integer", "minimum": 0},
        "flaky_rate": {"$ref": "#/$defs/interval"},
        "flakiest": {"type": "array", "items": {"type": "object", "required": ["case_id", "mean", "spread",
                                                                                "repeats"]}},  # fmt: skip
    },
}

VARIANT: dict[str, Any] = {
    "type": "object",
    "required": ["variant", "model", "prompt", "temperature", "n_cases", "n_trials", "k_min", "k_max", "pass_rate",
                 "score", "error_rate", "undecided_trials", "undecided_cases", "flakiness", "tokens_in_per_case",
                 "tokens_out_per_case", "cost_per_case", "cost_median", "cost_p90", "cost_total", "judge_cost_total",
                 "judge_cost_per_case", "latency_p50_s", "latency_p95_s", "groups", "notes", "ttft_p50_s",
                 "ttft_p95_s", "tokens_per_s", "choices", "tokens_cached_per_case",
                 "tokens_reasoning_per_case"],  # fmt: skip
    "properties": {
        "variant": {"type": "string"},
        "model": {"type": "string"},
        "prompt": {"type": "string"},
        "temperature": {"type": "number"},
        "n_cases": {"type": "integer", "minimum": 0},
        "n_trials": {"type": "integer", "minimum": 0},
        "pass_rate": {"$ref": "#/$defs/interval"},
        "score": INTERVAL_OR_NULL,
        "error_rate": {"$ref": "#/$defs/interval"},
        "flakiness": {"anyOf": [FLAKINESS, {"type": "null"}]},
        "tokens_in_per_case": NUMBER_OR_NULL,
        "tokens_out_per_case": NUMBER_OR_NULL,
        "cost_per_case": INTERVAL_OR_NULL,
        "cost_total": NUMBER_OR_NULL,
        "latency_p50_s": INTERVAL_OR_NULL,
        "latency_p95_s": INTERVAL_OR_NULL,
        "groups": INT_OR_NULL,
        "notes": STRINGS,
        "ttft_p50_s": INTERVAL_OR_NULL,
        "ttft_p95_s": INTERVAL_OR_NULL,
        "tokens_per_s": NUMBER_OR_NULL,
        "tokens_cached_per_case": NUMBER_OR_NULL,
        "tokens_reasoning_per_case": NUMBER_OR_NULL,
        "choices": {"anyOf": [{"type": "null"}, {
            "type": "object",
            "required": ["samples_min", "samples_max", "requests", "choices_per_request", "pass_at_k", "majority_vote",
                         "voted_cases", "cost_per_sample"],  # fmt: skip
            "properties": {
                "pass_at_k": {"type": "object", "additionalProperties": {"$ref": "#/$defs/interval"}},
                "majority_vote": INTERVAL_OR_NULL,
                "cost_per_sample": NUMBER_OR_NULL,
            },
        }]},
    },
}

VERDICTS = ["BLOCK", "WARN", "IMPROVEMENT", "NON_INFERIOR", "INCONCLUSIVE"]

COMPARISON: dict[str, Any] = {
    "type": "object",
    "required": ["metric", "baseline", "candidate", "higher_is_better", "n_cases", "k_baseline", "k_candidate",
                 "only_baseline", "only_candidate", "baseline_estimate", "candidate_estimate", "delta", "ci95",
                 "ci90", "p_value", "p_method", "p_holm", "family_size", "margin", "tolerance", "sd_diff",
                 "correlation", "variance_reduction", "mde_warn", "mde_block", "required_cases",
                 "required_repeats", "mde_message", "gate", "regressions", "fixes", "movers", "notes"],  # fmt: skip
    "properties": {
        "metric": {"enum": ["pass_rate", "score", "cost", "latency_p95", "ttft_p95"]},
        "n_cases": {"type": "integer", "minimum": 0},
        "k_baseline": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
        "k_candidate": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
        "only_baseline": STRINGS,
        "only_candidate": STRINGS,
        "delta": NUMBER_OR_NULL,
        "ci95": {"$ref": "#/$defs/interval"},
        "ci90": {"$ref": "#/$defs/interval"},
        "p_value": {"type": "number", "minimum": 0, "maximum": 1},
        "p_holm": {"type": "number", "minimum": 0, "maximum": 1},
        "family_size": {"type": "integer", "minimum": 1},
        "mde_warn": NUMBER_OR_NULL,
        "mde_block": NUMBER_OR_NULL,
        "required_cases": INT_OR_NULL,
        "required_repeats": INT_OR_NULL,
        "mde_message": {"type": ["string", "null"]},
        "gate": {
            "type": "object",
            "required": ["verdict", "reason", "p_holm", "low", "high", "margin", "strict"],
            "properties": {"verdict": {"enum": VERDICTS}, "reason": {"type": "string"}},
        },
        "regressions": STRINGS,
        "fixes": STRINGS,
        "movers": {"type": "array", "items": {"type": "object", "required": ["case_id", "base", "new", "change"]}},
        "notes": STRINGS,
    },
}

PARETO_POINT: dict[str, Any] = {
    "type": "object",
    "required": ["variant", "quality", "cost_per_case", "on_front", "significantly_dominated", "dominated_by"],
    "properties": {
        "variant": {"type": "string"},
        "quality": {"$ref": "#/$defs/interval"},
        "cost_per_case": INTERVAL_OR_NULL,
        "on_front": {"type": "boolean"},
        "significantly_dominated": {"type": "boolean"},
        "dominated_by": STRINGS,
    },
}

CASE_VARIANT: dict[str, Any] = {
    "type": "object",
    "required": ["trials", "passed", "failed", "errors", "undecided", "mean_score"],
    "properties": {key: {"type": "integer", "minimum": 0} for key in ("trials", "passed", "failed", "errors",
                                                                      "undecided")},  # fmt: skip
}

REPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "prompt-harness/report/v1",
    "title": "prompt-harness run report",
    "type": "object",
    "required": ["schema", "schema_version", "suite", "run", "settings", "variants", "comparisons", "pareto",
                 "calibration", "cases", "notes"],  # fmt: skip
    "properties": {
        "schema": {"const": "prompt-harness/report"},
        "schema_version": {"const": 1},
        "suite": {"type": "object", "required": ["name", "hash"],
                  "properties": {"name": {"type": "string"}, "hash": {"type": "string"}}},  # fmt: skip
        "run": {
            "type": "object",
            "required": ["status", "trials_planned", "trials_done", "harness_version", "models", "prompts",
                         "temperatures", "repeats", "shard"],  # fmt: skip
            "properties": {
                "status": {"enum": ["running", "complete", "interrupted", "incomplete"]},
                "models": STRINGS,
                "prompts": STRINGS,
                "temperatures": {"type": "array", "items": {"type": "number"}},
            },
        },
        "settings": {
            "type": "object",
            "required": ["level", "seed", "n_resamples", "baseline", "metrics", "margin", "tolerance", "gate_mode",
                         "all_pairs"],  # fmt: skip
            "properties": {
                "seed": {"type": "integer", "minimum": 0},
                "baseline": {"type": ["string", "null"]},
                "metrics": STRINGS,
                "all_pairs": {"type": "boolean"},
            },
        },
        "variants": {"type": "array", "items": VARIANT},
        "comparisons": {"type": "array", "items": COMPARISON},
        "pareto": {
            "type": "object",
            "required": ["metric", "points"],
            "properties": {"metric": {"enum": ["pass_rate", "score"]},
                           "points": {"type": "array", "items": PARETO_POINT}},  # fmt: skip
        },
        "calibration": {"type": ["object", "null"]},
        "cases": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["case_id", "variants"],
                "properties": {"case_id": {"type": "string"},
                               "variants": {"type": "object", "additionalProperties": CASE_VARIANT}},  # fmt: skip
            },
        },
        "notes": STRINGS,
    },
    "$defs": {"interval": INTERVAL},
}
