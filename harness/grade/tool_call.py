"""``tool_call``: the model called the expected function, with the expected arguments."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from harness.grade._common import (
    RenderFailed,
    clip,
    clip_plain,
    opt_bool,
    opt_mapping,
    opt_str,
    render,
    schema_validator,
    schema_violations,
)
from harness.grade.base import Grade, GradeContext, Grader, GraderConfigError, Output, ToolCall, register


def _path(parent: str, key: str) -> str:
    return f"{parent}.{key}" if key.isidentifier() else f"{parent}[{key!r}]"


def _show(value: Any) -> str:
    return clip_plain(json.dumps(value, ensure_ascii=False), 40)


def _check_json_like(value: Any, where: str) -> None:
    """Refuse option values JSON arguments can never equal, such as the date YAML makes of 2024-01-01."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise GraderConfigError("arguments", f"{where}: keys must be strings, got {key!r}")
            _check_json_like(item, _path(where, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json_like(item, f"{where}[{index}]")
    elif value is not None and not isinstance(value, str | int | float | bool):
        raise GraderConfigError(
            "arguments",
            f"{where}: {value!r} is a {type(value).__name__}, not a JSON value (quote it in YAML)",
        )


def _render_tree(ctx: GradeContext, value: Any) -> Any:
    if isinstance(value, str):
        return render(ctx, value, "arguments")
    if isinstance(value, Mapping):
        return {key: _render_tree(ctx, item) for key, item in value.items()}
    if isinstance(value, list):
        return [_render_tree(ctx, item) for item in value]
    return value


def _scalars_equal(expected: Any, actual: Any) -> bool:
    # Python says True == 1; JSON arguments must tell booleans from numbers, yet 1 and 1.0 are one number.
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return expected == actual
    return type(expected) is type(actual) and expected == actual


def mismatch(expected: Any, actual: Any, path: str, exact: bool) -> str | None:
    """The first difference between expected and actual arguments, or None.

    Objects match by subset (extra keys allowed, recursively) unless ``exact``; arrays must have the same
    length and match element by element.
    """
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return f"{path}: expected an object, got {_show(actual)}"
        for key, item in expected.items():
            if key not in actual:
                return f"{_path(path, key)}: missing (expected {_show(item)})"
            problem = mismatch(item, actual[key], _path(path, key), exact)
            if problem:
                return problem
        extra = sorted(set(actual) - set(expected)) if exact else []
        if extra:
            return f"{path}: unexpected {', '.join(map(repr, extra))} (exact_arguments is true)"
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return f"{path}: expected {_show(expected)}, got {_show(actual)}"
        for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
            problem = mismatch(want, got, f"{path}[{index}]", exact)
            if problem:
                return problem
        return None
    if not _scalars_equal(expected, actual):
        return f"{path}: expected {_show(expected)}, got {_show(actual)}"
    return None


@register
class ToolCallGrader(Grader):
    """The model called the expected function, optionally with arguments that match.

    A call's arguments are the raw JSON text the model produced; an empty string counts as ``{}``.
    When several calls go to the function, the grade passes if any one of them satisfies the checks.

    Args:
        name: the function the model must call. May be a template, rendered per case.
        arguments: expected argument values, as a mapping. By default a subset match: every key given must
            be present with an equal value (nested objects match by subset too; arrays must be equal in
            length and order). String values may be templates, rendered per case.
        exact_arguments: require the arguments to equal ``arguments`` exactly, with no extra keys
            (default false).
        arguments_schema: a JSON Schema (draft 2020-12) the parsed arguments must satisfy; checked when the
            suite loads.
        allow_other_calls: whether calls to other functions are allowed alongside (default true).
        count: if set, the exact number of calls to ``name`` required.
    """

    name = "tool_call"

    def __init__(
        self,
        *,
        name: str | None = None,
        arguments: dict[str, Any] | None = None,
        exact_arguments: bool = False,
        arguments_schema: dict[str, Any] | None = None,
        allow_other_calls: bool = True,
        count: int | None = None,
    ) -> None:
        self.function = opt_str("name", name)
        self.arguments = None if arguments is None else dict(opt_mapping("arguments", arguments))
        if self.arguments is not None:
            _check_json_like(self.arguments, "arguments")
        self.exact_arguments = opt_bool("exact_arguments", exact_arguments)
        if self.exact_arguments and self.arguments is None:
            raise GraderConfigError("exact_arguments", "exact_arguments needs 'arguments' to compare with")
        self.validator = (
            None if arguments_schema is None else schema_validator("arguments_schema", arguments_schema)
        )
        self.allow_other_calls = opt_bool("allow_other_calls", allow_other_calls)
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
            raise GraderConfigError("count", f"count must be a whole number of at least 1, got {count!r}")
        self.count = count

    def _problem(self, call: ToolCall, expected: dict[str, Any] | None) -> str | None:
        raw = call.arguments
        try:
            parsed = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError as exc:
            return f"arguments are not valid JSON ({exc.msg} at char {exc.pos}): {clip(raw, 60)}"
        if not isinstance(parsed, dict):
            return f"arguments are not a JSON object: {clip(raw, 60)}"
        if self.validator is not None:
            violations = schema_violations(self.validator, parsed, cap=3)
            if violations:
                return "arguments violate arguments_schema: " + "; ".join(violations)
        if expected is not None:
            return mismatch(expected, parsed, "arguments", self.exact_arguments)
        return None

    def grade(self, output: Output, ctx: GradeContext) -> Grade:
        try:
            function = render(ctx, self.function, "name")
            expected = None if self.arguments is None else _render_tree(ctx, self.arguments)
        except RenderFailed as exc:
            return Grade.undecided(str(exc))
        calls = output.tool_calls
        if not calls:
            return Grade.fail(f"no tool call; the model answered with text: {clip(output.text)}")
        matching = [call for call in calls if call.name == function]
        others = sorted({call.name for call in calls if call.name != function})
        if not matching:
            return Grade.fail(f"no call to {function!r}; called {', '.join(map(repr, others))}")
        if others and not self.allow_other_calls:
            return Grade.fail(
                f"called {function!r} but also {', '.join(map(repr, others))} (allow_other_calls is false)"
            )
        if self.count is not None and len(matching) != self.count:
            return Grade.fail(f"expected {self.count} call(s) to {function!r}, got {len(matching)}")
        problems = []
        for call in matching:
            problem = self._problem(call, expected)
            if problem is None:
                checked = " with matching arguments" if expected is not None or self.validator else ""
                return Grade.ok(f"called {function!r}{checked}")
            problems.append(problem)
        if len(problems) == 1:
            return Grade.fail(f"call to {function!r}: {problems[0]}")
        listed = "; ".join(f"#{number} {problem}" for number, problem in enumerate(problems[:3], start=1))
        more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        return Grade.fail(f"none of the {len(problems)} calls to {function!r} matched: {listed}{more}")

    def describe(self) -> str:
        return f"tool_call {self.function}"
