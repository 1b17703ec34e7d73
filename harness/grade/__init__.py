"""The grade stage: graders by name, and combining their verdicts into a case result."""

from harness.grade.base import (
    Grade,
    GradeContext,
    Grader,
    GraderConfigError,
    Output,
    ToolCall,
    build_grader,
    grader_class,
    grader_names,
    register,
)

__all__ = [
    "Grade",
    "GradeContext",
    "Grader",
    "GraderConfigError",
    "Output",
    "ToolCall",
    "build_grader",
    "grader_class",
    "grader_names",
    "register",
]
