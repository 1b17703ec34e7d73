"""What every grader shares: the ``Grade`` it returns, what it sees, and the registry by name.

Adding a grader means adding one module to this package that defines a ``Grader`` subclass decorated with
``@register``; the registry discovers the package's modules on first use.
"""

from __future__ import annotations

import importlib
import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

# A grade's ``details`` key set when the grader's own model call (a judge's) never answered: refused, timed
# out, a 5xx after its retries. Such a trial is not finished: the run exits 4 and a resume grades it again.
UNANSWERED = "unanswered"

@dataclass(frozen=True)
class Grade:
    """One grader's verdict on one output.

    ``passed`` is ``None`` exactly when ``error`` is set: the grader could not decide, which is never
    counted silently as a pass or a fail.
    """

    passed: bool | None
    score: float
    reason: str
    error: str | None = None
    grader: str = ""
    weight: float = 1.0
    # Tokens and cost a grader spent itself (a judge's calls), kept apart from the graded model's.
    usage: Mapping[str, int] | None = None
    cost: float | None = None
    details: Mapping[str, Any] | None = None

    @classmethod
    def ok(cls, reason: str, score: float = 1.0) -> Grade:
        return cls(passed=True, score=score, reason=reason)

    @classmethod
    def fail(cls, reason: str, score: float = 0.0) -> Grade:
        return cls(passed=False, score=score, reason=reason)

    @classmethod
    def undecided(cls, error: str) -> Grade:
        return cls(passed=None, score=0.0, reason="", error=error)


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: str  # the raw JSON text the model produced; graders parse it themselves
    id: str = ""


@dataclass(frozen=True)
class Output:
    """What the graded model produced."""

    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    # Each model turn's calls in a tool round trip, in order (empty: one call, whose calls are tool_calls).
    steps: tuple[tuple[ToolCall, ...], ...] = ()

    @property
    def call_steps(self) -> tuple[tuple[ToolCall, ...], ...]:
        return self.steps or (self.tool_calls,)


@dataclass
class GradeContext:
    """What a grader may know about the trial besides the output.

    Args:
        case_id: the case's id.
        vars: the case's template variables (suite vars overlaid with case vars).
        messages: the rendered request messages, for graders (the judge) that show the input.
        render: renders a template string against ``vars`` (sandboxed, strict), for templated options.
        suite_dir: folder of the suite file; custom code and files resolve against it.
        services: shared objects a grader may need at grade time (the judge's clients), by name.
    """

    case_id: str
    vars: Mapping[str, Any]
    messages: tuple[Mapping[str, Any], ...] = ()
    render: Callable[[str], str] = lambda text: text
    suite_dir: str = "."
    services: Mapping[str, Any] = field(default_factory=dict)
    sample: str = ""  # the trial's sample key, for graders that make their own recorded calls


class GraderConfigError(ValueError):
    """A grader's options are invalid. ``field`` names the offending option."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


class Grader(ABC):
    """A named check on one output. Options are validated in ``__init__`` so bad ones fail at load time."""

    name: ClassVar[str]

    @abstractmethod
    def grade(self, output: Output, ctx: GradeContext) -> Grade:
        """Grade synchronously; graders that call a model override :meth:`agrade` instead."""

    async def agrade(self, output: Output, ctx: GradeContext) -> Grade:
        return self.grade(output, ctx)

    def describe(self) -> str:
        """A short label for reports."""
        return self.name


G = TypeVar("G", bound=type[Grader])
_REGISTRY: dict[str, type[Grader]] = {}
_DISCOVERED = False


def register(cls: G) -> G:
    _REGISTRY[cls.name] = cls
    return cls


def _discover() -> None:
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    package = importlib.import_module("harness.grade")
    for module in pkgutil.iter_modules(package.__path__):
        if module.name not in {"base", "runner"} and not module.name.startswith("_"):
            importlib.import_module(f"harness.grade.{module.name}")


def grader_names() -> list[str]:
    _discover()
    return sorted(_REGISTRY)


def grader_class(name: str) -> type[Grader] | None:
    _discover()
    return _REGISTRY.get(name)


def build_grader(name: str, options: Mapping[str, Any]) -> Grader:
    """Instantiate a grader by registry name. Raises ``KeyError`` or ``GraderConfigError``."""
    cls = grader_class(name)
    if cls is None:
        raise KeyError(name)
    try:
        return cls(**options)
    except TypeError as exc:
        # An unknown keyword: name it as the field so the loader can point at it.
        raise GraderConfigError("", f"{exc}".replace("__init__() ", "")) from exc
