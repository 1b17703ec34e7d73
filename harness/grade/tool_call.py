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
    opt_choice,
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

    A call's arguments are the raw JSON text the model produced; an empty string counts as ``{}``. Legacy
    ``function_call`` replies count as calls too. In a tool round trip every model turn's calls are
    checked (``step`` narrows that to one turn), and ``sequence`` checks their order. When several calls
    go to the function, the grade passes if any one of them satisfies the checks (``call`` narrows that).

    Args:
        name: the function the model must call. May be a template, rendered per case. Required unless
            ``sequence`` is given.
        arguments: expected argument values, as a mapping. By default a subset match: every key given must
            be present with an equal value (nested objects match by subset too; arrays must be equal in
            length and order). String values may be templates, rendered per case.
        exact_arguments: require the arguments to equal ``arguments`` exactly, with no extra keys
            (default false).
        arguments_schema: a JSON Schema (draft 2020-12) the parsed arguments must satisfy; checked when the
            suite loads.
        allow_other_calls: whether calls to other functions are allowed alongside (default true). With
            ``sequence``: false requires exactly the sequence, nothing before, between or after.
        count: if set, the exact number of calls to ``name`` required.
        step: check only the calls of this model turn of a tool round trip (1 = the first reply).
        call: which call must match: ``any`` (default), ``first`` or ``last`` (of the checked calls).
        sequence: calls expected in this order, each a function name or ``{name, arguments}``
            (arguments as in ``arguments``, subset match); other calls may come between them unless
            ``allow_other_calls`` is false.
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
        step: int | None = None,
        call: str = "any",
        sequence: list[Any] | None = None,
    ) -> None:
        self.sequence = None if sequence is None else _parse_sequence(sequence)
        if self.sequence is not None and name is not None:
            raise GraderConfigError("sequence", "give either name (one call) or sequence (calls in order)")
        self.function = "" if self.sequence is not None else opt_str("name", name)
        self.arguments = None if arguments is None else dict(opt_mapping("arguments", arguments))
        if self.arguments is not None:
            _check_json_like(self.arguments, "arguments")
        self.exact_arguments = opt_bool("exact_arguments", exact_arguments)
        if self.exact_arguments and self.arguments is None and self.sequence is None:
            raise GraderConfigError("exact_arguments", "exact_arguments needs 'arguments' to compare with")
        self.validator = (
            None if arguments_schema is None else schema_validator("arguments_schema", arguments_schema)
        )
        self.allow_other_calls = opt_bool("allow_other_calls", allow_other_calls)
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
            raise GraderConfigError("count", f"count must be a whole number of at least 1, got {count!r}")
        self.count = count
        if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 1):
            raise GraderConfigError("step", f"step must be a model turn number from 1, got {step!r}")
        self.step = step
        self.call = opt_choice("call", call, ("any", "first", "last"))
        if self.sequence is not None:
            for option, value in (("arguments", self.arguments), ("count", count),
                                  ("call", None if call == "any" else call)):
                if value is not None:
                    raise GraderConfigError(option, f"{option} does not combine with sequence; give arguments "
                                                    "per item of the sequence")

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

    def _calls(self, output: Output) -> tuple[ToolCall, ...] | str:
        """The calls to check, or why there are none to check."""
        steps = output.call_steps
        if self.step is None:
            return tuple(c for calls in steps for c in calls)
        if self.step > len(steps):
            return f"no model turn {self.step}: the model replied {len(steps)} time(s)"
        return steps[self.step - 1]

    def grade(self, output: Output, ctx: GradeContext) -> Grade:
        try:
            function = render(ctx, self.function, "name")
            expected = None if self.arguments is None else _render_tree(ctx, self.arguments)
            sequence = None if self.sequence is None else [
                (render(ctx, item_name, "sequence"), None if args is None else _render_tree(ctx, args))
                for item_name, args in self.sequence
            ]
        except RenderFailed as exc:
            return Grade.undecided(str(exc))
        calls = self._calls(output)
        if isinstance(calls, str):
            return Grade.fail(calls)
        where = "" if self.step is None else f" in turn {self.step}"
        if not calls:
            return Grade.fail(f"no tool call{where}; the model answered with text: {clip(output.text)}")
        if sequence is not None:
            return self._grade_sequence(calls, sequence)
        if self.call != "any":
            calls = calls[:1] if self.call == "first" else calls[-1:]
            where += f" (the {self.call} call)"
        matching = [call for call in calls if call.name == function]
        others = sorted({call.name for call in calls if call.name != function})
        if not matching:
            return Grade.fail(f"no call to {function!r}{where}; called {', '.join(map(repr, others))}")
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
                return Grade.ok(f"called {function!r}{checked}{where}")
            problems.append(problem)
        if len(problems) == 1:
            return Grade.fail(f"call to {function!r}: {problems[0]}")
        listed = "; ".join(f"#{number} {problem}" for number, problem in enumerate(problems[:3], start=1))
        more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        return Grade.fail(f"none of the {len(problems)} calls to {function!r} matched: {listed}{more}")

    def _grade_sequence(self, calls: tuple[ToolCall, ...],
                        sequence: list[tuple[str, dict[str, Any] | None]]) -> Grade:
        made = " → ".join(c.name for c in calls)
        if not self.allow_other_calls and len(calls) != len(sequence):
            return Grade.fail(f"expected exactly {len(sequence)} call(s) in order, got {len(calls)}: {made}")
        position = 0
        for index, (function, expected) in enumerate(sequence, start=1):
            problem = f"no call to {function!r}"
            while position < len(calls):
                call = calls[position]
                position += 1
                if call.name == function:
                    found = self._problem(call, expected)
                    if found is None:
                        break
                    problem = f"call to {function!r}: {found}"
                if not self.allow_other_calls:
                    return Grade.fail(f"call #{index} of the sequence: {problem}; calls made: {made}")
            else:
                return Grade.fail(f"call #{index} of the sequence ({function!r}) not found in order: "
                                  f"{problem}; calls made: {made}")
        return Grade.ok(f"called {' → '.join(name for name, _ in sequence)} in order")

    def describe(self) -> str:
        if self.sequence is not None:
            return "tool_call " + " → ".join(name for name, _ in self.sequence)
        return f"tool_call {self.function}"


def _parse_sequence(value: object) -> list[tuple[str, dict[str, Any] | None]]:
    if not isinstance(value, list) or not value:
        raise GraderConfigError("sequence", "sequence must be a non-empty list of function names or {name, arguments}")
    items: list[tuple[str, dict[str, Any] | None]] = []
    for index, item in enumerate(value):
        if isinstance(item, str) and item:
            items.append((item, None))
            continue
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str) or set(item) - {"name", "arguments"}:
            raise GraderConfigError("sequence", f"sequence[{index}] must be a function name or {{name, arguments}}, "
                                                f"got {item!r}")
        arguments = item.get("arguments")
        if arguments is not None:
            arguments = dict(opt_mapping("sequence", arguments))
            _check_json_like(arguments, f"sequence[{index}].arguments")
        items.append((item["name"], arguments))
    return items
