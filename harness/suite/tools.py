"""Tool round trips in the suite: which functions the prompts declare, and where their results come from.

A suite answers the model's tool calls with ``tool_results`` (static values by function name, at the suite
level or per case) or ``tool_functions`` (``get_weather: "tools.py:get_weather"``, a function in a file of the
suite's folder, loaded and confined like the ``python`` grader's). A result for a function no prompt declares
is refused at load time: it is almost always a typo, and it would otherwise never be used.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from harness.errors import Location, SuiteError
from harness.grade.base import GraderConfigError
from harness.grade.python import load_function
from harness.suite.model import Case, PromptVersion, Suite, ToolFunction
from harness.suite.yamlread import line_of, plain

DEFAULT_MAX_TOOL_TURNS = 5


def _names(entries: Iterable[Any], legacy: bool) -> set[str]:
    names = set()
    for entry in entries or ():
        if not isinstance(entry, Mapping):
            continue
        spec = entry if legacy else entry.get("function")
        if isinstance(spec, Mapping) and isinstance(spec.get("name"), str):
            names.add(spec["name"])
    return names


def declared_functions(prompt: PromptVersion, *params: Mapping[str, Any]) -> set[str]:
    """Function names a prompt offers the model: ``tools`` and legacy ``functions``, its own or in params."""
    names = _names(prompt.tools, legacy=False) | _names(prompt.functions, legacy=True)
    for layer in (*params, prompt.params):
        names |= _names(layer.get("tools") or (), legacy=False) | _names(layer.get("functions") or (), legacy=True)
    return names


def all_declared(suite: Suite) -> set[str]:
    model_params = [m.params for m in suite.models]
    return set().union(*(declared_functions(p, suite.params, *model_params) for p in suite.prompts.values()))


def _refuse_undeclared(names: Iterable[str], declared: set[str], where: Any, field: str, file: str,
                       fallback_line: int | None) -> None:
    from harness.suite.cases import did_you_mean

    for name in names:
        if name not in declared:
            offered = ", ".join(sorted(declared)) or "none"
            raise SuiteError(
                Location(file, line_of(where, name) or fallback_line, f"{field}.{name}"),
                f"a tool result for {name!r}, which no prompt declares (in tools: or functions:)"
                f"{did_you_mean(name, sorted(declared))}; declared: {offered}",
            )


def load_tool_settings(data: Mapping[str, Any], suite_dir: str, file: str, declared: set[str]
                       ) -> tuple[dict[str, Any], dict[str, ToolFunction], int]:
    """The suite-level ``tool_results``, ``tool_functions`` and ``max_tool_turns``, checked."""
    results = data.get("tool_results") or {}
    functions = data.get("tool_functions") or {}
    for field, raw in (("tool_results", results), ("tool_functions", functions)):
        _refuse_undeclared(raw, declared, raw, field, file, line_of(data, field))
    loaded: dict[str, ToolFunction] = {}
    for name, reference in functions.items():
        where = Location(file, line_of(functions, name), f"tool_functions.{name}")
        if name in results:
            raise SuiteError(where, f"{name!r} has both a static result (tool_results) and a function; keep one")
        try:
            function = load_function(str(reference), suite_dir, grader=False)
        except GraderConfigError as exc:
            raise SuiteError(where, str(exc)) from None
        loaded[name] = ToolFunction(name, str(reference), function, where)
    _check_json(results, "tool_results", file)
    turns = data.get("max_tool_turns", DEFAULT_MAX_TOOL_TURNS)
    if results or functions:
        _refuse_choices(data, file)
    return plain(results), loaded, int(turns)


def _refuse_choices(data: Mapping[str, Any], file: str) -> None:
    """``n`` > 1 cannot round-trip: each choice would need a conversation of its own."""
    layers = [("params", data.get("params"))]
    layers += [(f"models[{i}].params", m.get("params")) for i, m in enumerate(data.get("models") or [])]
    prompts = data.get("prompts") or {}
    layers += [(f"prompts.{name}.params", p.get("params")) for name, p in prompts.items() if isinstance(p, Mapping)]
    for field, params in layers:
        if isinstance(params, Mapping) and isinstance(params.get("n"), int) and params["n"] > 1:
            raise SuiteError(Location(file, line_of(params, "n"), f"{field}.n"),
                             "n > 1 does not combine with tool round trips (tool_results / tool_functions): each "
                             "choice would need its own conversation; use repeats instead")


def case_tool_results(row: Mapping[str, Any], at: Location, declared: frozenset[str] | None) -> dict[str, Any]:
    """A case's own static ``tool_results``; ``declared`` (when known) are the functions prompts offer."""
    raw = row.get("tool_results")
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or not all(isinstance(k, str) for k in raw):
        raise SuiteError(at, "tool_results must map function names to their results")
    if declared is not None:
        _refuse_undeclared(raw, set(declared), raw, at.field, at.file, at.line)
    _check_json(raw, at.field, at.file)
    return plain(dict(raw))


def _check_json(results: Mapping[str, Any], field: str, file: str) -> None:
    """A static result is sent as JSON: refuse what JSON cannot say (NaN, dates YAML made), at load time."""
    for name, value in results.items():
        try:
            json.dumps(plain(value), allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            raise SuiteError(Location(file, line_of(results, name), f"{field}.{name}"),
                             f"the result is not JSON ({exc}); quote it in YAML to send it as text") from None


def round_trips(suite: Suite, case: Case) -> bool:
    """Whether the suite gives any tool result a trial of this case could use."""
    return bool(suite.tool_results or suite.tool_functions or case.tool_results)
