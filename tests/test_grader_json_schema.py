"""The json_schema grader: finding the JSON in an output, and reasons that point at each violation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness.grade import Grade, GradeContext, GraderConfigError, Output, build_grader

ORDER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "items"],
    "properties": {
        "id": {"type": "string"},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["sku", "qty"],
                "properties": {"sku": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}},
            },
        },
        "shipping": {"type": "object", "properties": {"date": {"type": "string", "format": "date"}}},
    },
}


def run(text: str, **options: Any) -> Grade:
    options.setdefault("schema", ORDER_SCHEMA)
    return build_grader("json_schema", options).grade(Output(text=text), GradeContext(case_id="c", vars={}))


def test_valid_plain_json_passes() -> None:
    grade = run('{"id": "A1", "items": [{"sku": "X", "qty": 2}]}')
    assert grade.passed is True and grade.score == 1.0 and "whole output" in grade.reason


def test_json_in_a_fenced_block_is_found() -> None:
    text = 'Here you go:\n```json\n{"id": "A1", "items": []}\n```\nAnything else?'
    grade = run(text)
    assert grade.passed is True and "fenced block" in grade.reason


def test_unlabelled_fence_is_used_but_other_languages_are_not() -> None:
    assert run('Sure:\n```\n{"id": "A1", "items": []}\n```').passed is True
    # A python block is not JSON: the scan finds the embedded object after it instead.
    text = '```python\nx = {"id": 1}\n```\nResult: {"id": "A2", "items": []}'
    grade = run(text)
    assert grade.passed is False  # {"id": 1} is the first embedded JSON object, and its id is not a string
    assert "$.id: 1 is not of type 'string'" in grade.reason


def test_first_fenced_block_that_parses_wins() -> None:
    text = '```json\n{not json}\n```\n\n```json\n{"id": "B", "items": []}\n```'
    assert run(text).passed is True


def test_json_embedded_in_prose_is_found_by_scanning() -> None:
    grade = run('The order is {"id": "A1", "items": []} as requested.')
    assert grade.passed is True and "char 13" in grade.reason


def test_not_json_fails_with_a_reason() -> None:
    grade = run("I could not produce the order, sorry.")
    assert grade.passed is False and grade.error is None
    assert "not JSON" in grade.reason and "sorry" in grade.reason


def test_violations_list_nested_paths_with_array_indexes_sorted() -> None:
    text = '{"items": [{"sku": "X", "qty": 1}, {"sku": 7, "qty": 0}], "shipping": {"date": "soon"}}'
    grade = run(text)
    assert grade.passed is False
    reason = grade.reason
    for expected in (
        "$: 'id' is a required property",
        "$.items[1].qty: 0 is less than the minimum of 1",
        "$.items[1].sku: 7 is not of type 'string'",
        "$.shipping.date: 'soon' is not a 'date'",
    ):
        assert expected in reason
    assert reason.index("$: ") < reason.index("$.items[1].qty") < reason.index("$.items[1].sku")
    assert reason.index("$.items[1].sku") < reason.index("$.shipping.date")


def test_array_indexes_sort_numerically() -> None:
    schema = {"type": "array", "items": {"type": "integer"}}
    values = ", ".join('"x"' if i in (2, 10) else str(i) for i in range(12))
    reason = run(f"[{values}]", schema=schema).reason
    assert reason.index("$[2]") < reason.index("$[10]")


def test_long_violation_lists_are_capped() -> None:
    schema = {"type": "array", "items": {"type": "integer"}}
    grade = run(json.dumps(["x"] * 9), schema=schema)
    assert grade.passed is False
    assert "$[4]" in grade.reason and "$[5]" not in grade.reason and "(+4 more)" in grade.reason


def test_a_json_scalar_output_is_validated_too() -> None:
    assert run('"hello"', schema={"type": "string"}).passed is True
    assert run("42", schema={"type": "string"}).passed is False


def test_schema_file_labels_the_grader() -> None:
    grader = build_grader("json_schema", {"schema": ORDER_SCHEMA, "schema_file": "schemas/order.json"})
    assert grader.describe() == "json_schema schemas/order.json"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({}, "schema"),
        ({"schema": {"type": "strnig"}}, "schema"),
        ({"schema": {"properties": {"a": {"minimum": "one"}}}}, "schema"),
        ({"schema": ["not", "a", "mapping"]}, "schema"),
        ({"schema": {"type": "object"}, "schema_file": 3}, "schema_file"),
    ],
)
def test_config_errors_name_the_field(options: dict[str, Any], field: str) -> None:
    with pytest.raises(GraderConfigError) as info:
        build_grader("json_schema", options)
    assert info.value.field == field


def test_invalid_schema_error_points_into_the_schema() -> None:
    with pytest.raises(GraderConfigError, match=r"\$\.properties\.a\.minimum"):
        build_grader("json_schema", {"schema": {"properties": {"a": {"minimum": "one"}}}})
