"""The suite stage: YAML in, a typed ``Suite`` out."""

from harness.suite.loader import check_suite_cases, load_suite
from harness.suite.model import (
    Baseline,
    Case,
    GateSettings,
    GraderSpec,
    MessageTemplate,
    ModelSpec,
    Price,
    PromptVersion,
    Suite,
)
from harness.suite.schema_check import suite_schema

__all__ = [
    "Baseline",
    "Case",
    "GateSettings",
    "GraderSpec",
    "MessageTemplate",
    "ModelSpec",
    "Price",
    "PromptVersion",
    "Suite",
    "check_suite_cases",
    "load_suite",
    "suite_schema",
]
