"""The tool_call grader: expected function, argument subset/exact match, argument schema."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from harness.grade import Grade, GradeContext, GraderConfigError, Output, ToolCall, build_grader

_ENV = SandboxedEnvironment(undefined=StrictUndefined)


def make_ctx(**variables: Any) -> GradeContext:
    return GradeContext(
        case_id="c", vars=variables, render=lambda text: _ENV.from_string(text).render(variables)
    )


def call(name: str, arguments: Any = None, raw: str | None = None) -> ToolCall:
    return ToolCall(name=name, arguments=raw if raw is not None else json.dumps(arguments or {}))


def run(calls: list[ToolCall], text: str = "", ctx: GradeContext | None = None, **options: Any) -> Grade:
    options.setdefault("name", "get_weather")
    output = Output(text=text, tool_calls=tuple(calls))
    return build_grader("tool_call", options).grade(output, ctx or make_ctx())


WEATHER = {"city": "Paris", "units": "metric", "days": 3}


def test_the_expected_call_passes() -> None:
    grade = run([call("get_weather", WEATHER)])
    assert grade.passed is True and "'get_weather'" in grade.reason


def test_no_tool_call_fails_quoting_the_text_answer() -> None:
    grade = run([], text="It is sunny in Paris.")
    assert grade.passed is False
    assert grade.reason.startswith("no tool call; the model answered with text: ")
    assert "sunny in Paris" in grade.reason


def test_call_to_another_function_fails_naming_it() -> None:
    grade = run([call("search_web", {"q": "weather"})])
    assert grade.passed is False and "'search_web'" in grade.reason


def test_arguments_subset_match_by_default() -> None:
    assert run([call("get_weather", WEATHER)], arguments={"city": "Paris"}).passed is True
    grade = run([call("get_weather", WEATHER)], arguments={"city": "London"})
    assert grade.passed is False
    assert 'arguments.city: expected "London", got "Paris"' in grade.reason


def test_missing_argument_is_named() -> None:
    grade = run([call("get_weather", {"city": "Paris"})], arguments={"units": "metric"})
    assert grade.passed is False and "arguments.units: missing" in grade.reason


def test_nested_objects_match_by_subset_and_arrays_exactly() -> None:
    actual = {"filter": {"tags": ["a", "b"], "limit": 5, "sort": "asc"}}
    assert run([call("get_weather", actual)], arguments={"filter": {"tags": ["a", "b"]}}).passed is True
    grade = run([call("get_weather", actual)], arguments={"filter": {"tags": ["a", "c"]}})
    assert grade.passed is False and "arguments.filter.tags[1]" in grade.reason
    grade = run([call("get_weather", actual)], arguments={"filter": {"tags": ["a"]}})
    assert grade.passed is False and "arguments.filter.tags" in grade.reason


def test_exact_arguments_rejects_extra_keys() -> None:
    grade = run([call("get_weather", WEATHER)], arguments={"city": "Paris"}, exact_arguments=True)
    assert grade.passed is False and "'days'" in grade.reason and "'units'" in grade.reason
    assert run([call("get_weather", WEATHER)], arguments=dict(WEATHER), exact_arguments=True).passed is True


def test_booleans_are_not_numbers_but_one_equals_one_point_zero() -> None:
    assert run([call("get_weather", {"flag": 1})], arguments={"flag": True}).passed is False
    assert run([call("get_weather", {"days": 3.0})], arguments={"days": 3}).passed is True


def test_unparseable_arguments_fail_with_reason() -> None:
    grade = run([call("get_weather", raw='{"city": "Paris"')], arguments={"city": "Paris"})
    assert grade.passed is False and "not valid JSON" in grade.reason
    grade = run([call("get_weather", raw='["Paris"]')])
    assert grade.passed is False and "not a JSON object" in grade.reason


def test_empty_argument_text_counts_as_an_empty_object() -> None:
    assert run([call("get_weather", raw="")]).passed is True
    assert run([call("get_weather", raw="")], arguments={"city": "Paris"}).passed is False


def test_arguments_schema() -> None:
    schema = {
        "type": "object",
        "required": ["city"],
        "properties": {"city": {"type": "string"}, "days": {"type": "integer", "maximum": 7}},
    }
    assert run([call("get_weather", WEATHER)], arguments_schema=schema).passed is True
    grade = run([call("get_weather", {"days": 10})], arguments_schema=schema)
    assert grade.passed is False
    assert "$: 'city' is a required property" in grade.reason
    assert "$.days: 10 is greater than the maximum of 7" in grade.reason


def test_allow_other_calls() -> None:
    calls = [call("search_web", {"q": "x"}), call("get_weather", WEATHER)]
    assert run(calls).passed is True
    grade = run(calls, allow_other_calls=False)
    assert grade.passed is False and "'search_web'" in grade.reason


def test_count() -> None:
    calls = [call("get_weather", {"city": "Paris"}), call("get_weather", {"city": "Oslo"})]
    assert run(calls, count=2).passed is True
    grade = run(calls, count=1)
    assert grade.passed is False and "expected 1 call(s)" in grade.reason and "got 2" in grade.reason


def test_any_matching_call_satisfies_and_all_failures_are_reported() -> None:
    calls = [call("get_weather", {"city": "Paris"}), call("get_weather", {"city": "Oslo"})]
    assert run(calls, arguments={"city": "Oslo"}).passed is True
    grade = run(calls, arguments={"city": "Rome"})
    assert grade.passed is False
    assert "none of the 2 calls" in grade.reason and "#1" in grade.reason and "#2" in grade.reason


def test_templated_name_and_arguments() -> None:
    grader = build_grader("tool_call", {"name": "{{ tool }}", "arguments": {"city": "{{ city }}"}})
    output = Output(text="", tool_calls=(call("get_weather", WEATHER),))
    assert grader.grade(output, make_ctx(tool="get_weather", city="Paris")).passed is True
    assert grader.grade(output, make_ctx(tool="get_weather", city="Rome")).passed is False
    undecided = grader.grade(output, make_ctx(tool="get_weather"))
    assert undecided.passed is None and "city" in (undecided.error or "")


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({}, "name"),
        ({"name": 3}, "name"),
        ({"name": "f", "arguments": ["city"]}, "arguments"),
        ({"name": "f", "arguments": {"when": __import__("datetime").date(2024, 1, 1)}}, "arguments"),
        ({"name": "f", "exact_arguments": True}, "exact_arguments"),
        ({"name": "f", "arguments": {}, "exact_arguments": "yes"}, "exact_arguments"),
        ({"name": "f", "arguments_schema": {"type": 5}}, "arguments_schema"),
        ({"name": "f", "allow_other_calls": None}, "allow_other_calls"),
        ({"name": "f", "count": 0}, "count"),
        ({"name": "f", "count": True}, "count"),
    ],
)
def test_config_errors_name_the_field(options: dict[str, Any], field: str) -> None:
    with pytest.raises(GraderConfigError) as info:
        build_grader("tool_call", options)
    assert info.value.field == field
