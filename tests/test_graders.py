"""The string graders (exact, contains, not_contains, starts_with, ends_with, regex) and the registry."""

from __future__ import annotations

from typing import Any

import pytest
from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from harness.grade import Grade, GradeContext, GraderConfigError, Output, build_grader, grader_names

_ENV = SandboxedEnvironment(undefined=StrictUndefined)


def make_ctx(**variables: Any) -> GradeContext:
    return GradeContext(
        case_id="case-1", vars=variables, render=lambda text: _ENV.from_string(text).render(variables)
    )


def run(grader_type: str, text: str, ctx: GradeContext | None = None, **options: Any) -> Grade:
    return build_grader(grader_type, options).grade(Output(text=text), ctx or make_ctx())


def config_error(grader_type: str, **options: Any) -> GraderConfigError:
    with pytest.raises(GraderConfigError) as info:
        build_grader(grader_type, options)
    return info.value


def test_registry_lists_every_builtin_grader() -> None:
    expected = {
        "exact",
        "contains",
        "not_contains",
        "starts_with",
        "ends_with",
        "regex",
        "json_schema",
        "tool_call",
        "python",
    }
    assert expected <= set(grader_names())
    # The shared helpers and the runner are not graders.
    assert not {"_common", "runner", "base"} & set(grader_names())


def test_unknown_option_is_a_config_error() -> None:
    with pytest.raises(GraderConfigError, match="valeu"):
        build_grader("exact", {"valeu": "x"})


# --- exact ---------------------------------------------------------------------------------------------


def test_exact_passes_on_equal_text_after_default_strip() -> None:
    grade = run("exact", "  Paris\n", value="Paris")
    assert grade.passed is True and grade.score == 1.0 and grade.error is None


def test_exact_fails_and_says_where_the_texts_differ() -> None:
    grade = run("exact", "Pariss", value="Paris")
    assert grade.passed is False and grade.score == 0.0
    assert "'Paris'" in grade.reason and "'Pariss'" in grade.reason and "char 5" in grade.reason


def test_exact_strip_false_keeps_surrounding_whitespace() -> None:
    assert run("exact", " Paris", value="Paris", strip=False).passed is False


def test_exact_is_case_sensitive_by_default() -> None:
    assert run("exact", "paris", value="Paris").passed is False
    grade = run("exact", "PARIS", value="Paris", case_sensitive=False)
    assert grade.passed is True


def test_exact_case_insensitive_uses_casefold() -> None:
    assert run("exact", "STRASSE", value="straße", case_sensitive=False).passed is True


def test_exact_collapse_whitespace() -> None:
    text = "one  two\n\tthree"
    assert run("exact", text, value="one two three").passed is False
    assert run("exact", text, value="one two three", collapse_whitespace=True).passed is True


def test_exact_unicode_nfkc() -> None:
    full_width = "ＡＢＣ１２３"
    assert run("exact", full_width, value="ABC123").passed is False
    assert run("exact", full_width, value="ABC123", unicode=True).passed is True
    # A non-breaking space is a compatibility form of a space.
    assert run("exact", "10\u00a0kg", value="10 kg", unicode=True).passed is True


def test_exact_strip_punctuation() -> None:
    assert run("exact", "Yes.", value="yes", case_sensitive=False).passed is False
    grade = run("exact", "«Yes!»", value="yes", case_sensitive=False, strip_punctuation=True)
    assert grade.passed is True


def test_exact_reason_mentions_normalisation() -> None:
    grade = run("exact", "No", value="yes", case_sensitive=False)
    assert "casefolded" in grade.reason


def test_exact_values_any_of() -> None:
    assert run("exact", "Oui", values=["Yes", "Oui"]).passed is True
    grade = run("exact", "Non", values=["Yes", "Oui"])
    assert grade.passed is False and "one of" in grade.reason
    assert run("exact", "Oui", value=["Yes", "Oui"]).passed is True


def test_exact_empty_value_expects_an_empty_output() -> None:
    assert run("exact", "  \n", value="").passed is True
    assert run("exact", "something", value="").passed is False


def test_exact_long_mismatch_reason_is_truncated_near_the_difference() -> None:
    expected = "a" * 500 + "X" + "b" * 500
    got = "a" * 500 + "Y" + "b" * 500
    grade = run("exact", got, value=expected)
    assert grade.passed is False
    assert len(grade.reason) < 300
    assert "X" in grade.reason and "Y" in grade.reason and "char 500" in grade.reason


def test_exact_templated_value_renders_per_case() -> None:
    grader = build_grader("exact", {"value": "{{ expected }}"})
    assert grader.grade(Output("42"), make_ctx(expected="42")).passed is True
    assert grader.grade(Output("42"), make_ctx(expected="43")).passed is False


def test_exact_template_that_cannot_render_is_undecided() -> None:
    grade = run("exact", "42", value="{{ missing_var }}")
    assert grade.passed is None and grade.error is not None
    assert "value" in grade.error and "missing_var" in grade.error


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({}, "value"),
        ({"value": "a", "values": ["b"]}, "value"),
        ({"value": 42}, "value"),
        ({"values": []}, "values"),
        ({"values": ["ok", 3]}, "values"),
        ({"value": "a", "strip": "yes"}, "strip"),
        ({"value": "a", "case_sensitive": 0}, "case_sensitive"),
        ({"value": "a", "unicode": None}, "unicode"),
    ],
)
def test_exact_config_errors_name_the_field(options: dict[str, Any], field: str) -> None:
    assert config_error("exact", **options).field == field


# --- contains / not_contains -----------------------------------------------------------------------------


def test_contains_single_value() -> None:
    assert run("contains", "Returns accepted within 30 days.", value="30 days").passed is True
    grade = run("contains", "Returns accepted within a month.", value="30 days")
    assert grade.passed is False and "'30 days'" in grade.reason and "a month" in grade.reason


def test_contains_all_scores_the_fraction_found() -> None:
    grade = run("contains", "red and green", value=["red", "green", "blue"])
    assert grade.passed is False
    assert grade.score == pytest.approx(2 / 3)
    assert "'blue'" in grade.reason and "2/3" in grade.reason
    assert run("contains", "red green blue", value=["red", "green", "blue"]).passed is True


def test_contains_any() -> None:
    assert run("contains", "only green", values=["red", "green"], match="any").passed is True
    grade = run("contains", "purple", values=["red", "green"], match="any")
    assert grade.passed is False and grade.score == 0.0


def test_contains_case_insensitive() -> None:
    assert run("contains", "THIRTY DAYS", value="thirty days").passed is False
    assert run("contains", "THIRTY DAYS", value="thirty days", case_sensitive=False).passed is True


def test_contains_templated_value() -> None:
    grader = build_grader("contains", {"value": "{{ city }}"})
    assert grader.grade(Output("It is sunny in Oslo."), make_ctx(city="Oslo")).passed is True
    assert grader.grade(Output("It is sunny in Oslo."), make_ctx(city="Rome")).passed is False


def test_contains_template_rendering_to_empty_is_undecided_not_a_silent_pass() -> None:
    grade = run("contains", "anything", make_ctx(city=""), value="{{ city }}")
    assert grade.passed is None and "empty" in (grade.error or "")


def test_contains_config_errors() -> None:
    assert config_error("contains", value="x", match="most").field == "match"
    assert config_error("contains").field == "value"
    assert config_error("contains", value="").field == "value"


def test_not_contains_passes_when_absent() -> None:
    grade = run("not_contains", "Happy to help!", value=["as an AI", "I cannot"])
    assert grade.passed is True


def test_not_contains_fails_with_the_hit_and_its_position() -> None:
    grade = run("not_contains", "Sure. As an AI model, I think...", value="As an AI")
    assert grade.passed is False
    assert "'As an AI'" in grade.reason and "char 6" in grade.reason


def test_not_contains_case_insensitive_and_counts_extra_hits() -> None:
    text = "AS AN AI, I CANNOT do that"
    assert run("not_contains", text, value=["as an ai", "i cannot"]).passed is True
    grade = run("not_contains", text, value=["as an ai", "i cannot"], case_sensitive=False)
    assert grade.passed is False and "+1 more" in grade.reason


def test_not_contains_undecided_on_bad_template_and_config_error() -> None:
    assert run("not_contains", "x", value="{{ nope }}").passed is None
    assert config_error("not_contains", value=["ok"], case_sensitive="no").field == "case_sensitive"


# --- starts_with / ends_with --------------------------------------------------------------------------------


def test_starts_with_strips_leading_whitespace_by_default() -> None:
    assert run("starts_with", "\n  Dear customer, ...", value="Dear customer").passed is True
    assert run("starts_with", "\n  Dear customer", value="Dear customer", strip=False).passed is False


def test_starts_with_fail_reason_shows_the_start() -> None:
    grade = run("starts_with", "Hello there, dear customer", value="Dear customer")
    assert grade.passed is False
    assert "'Dear customer'" in grade.reason and "'Hello there" in grade.reason


def test_starts_with_any_of_values_and_case() -> None:
    assert run("starts_with", "HI!", values=["hello", "hi"], case_sensitive=False).passed is True
    assert run("starts_with", "HI!", values=["hello", "hi"]).passed is False


def test_ends_with() -> None:
    assert run("ends_with", "The answer is 42.\n", value="42.").passed is True
    grade = run("ends_with", "The answer is 41.", value="42.")
    assert grade.passed is False and "41." in grade.reason


def test_ends_with_templated_and_config_errors() -> None:
    grader = build_grader("ends_with", {"value": "{{ sign_off }}"})
    assert grader.grade(Output("Thanks, Ann"), make_ctx(sign_off="Ann")).passed is True
    assert grader.grade(Output("Thanks, Ann"), make_ctx()).passed is None
    assert config_error("ends_with", value="x", strip=1).field == "strip"
    assert config_error("starts_with", values="x", value="y").field == "value"


# --- regex -------------------------------------------------------------------------------------------------


def test_regex_search_passes_and_reports_the_match() -> None:
    grade = run("regex", "Order ORD-12345 shipped", pattern=r"ORD-\d{5}")
    assert grade.passed is True and "'ORD-12345'" in grade.reason and "char 6" in grade.reason


def test_regex_search_fails_with_pattern_and_output() -> None:
    grade = run("regex", "Order shipped", pattern=r"ORD-\d{5}")
    assert grade.passed is False and r"ORD-\d{5}" in grade.reason and "Order shipped" in grade.reason


def test_regex_modes() -> None:
    text = "ID: 123"
    assert run("regex", text, pattern=r"\d+", mode="search").passed is True
    assert run("regex", text, pattern=r"\d+", mode="match").passed is False
    assert run("regex", text, pattern=r"ID: \d+", mode="match").passed is True
    assert run("regex", text, pattern=r"ID", mode="fullmatch").passed is False
    assert run("regex", text, pattern=r"ID: \d+", mode="fullmatch").passed is True


def test_regex_flags() -> None:
    text = "first line\nSECOND line"
    assert run("regex", text, pattern="^second").passed is False
    assert run("regex", text, pattern="^second", flags=["IGNORECASE"]).passed is False
    assert run("regex", text, pattern="^second", flags=["IGNORECASE", "MULTILINE"]).passed is True
    assert run("regex", text, pattern="line.SECOND").passed is False
    assert run("regex", text, pattern="line.SECOND", flags=["DOTALL"]).passed is True
    # Flag names are accepted in any case.
    assert run("regex", text, pattern="line.second", flags=["dotall", "ignorecase"]).passed is True


def test_regex_must_not_match() -> None:
    assert run("regex", "all good", pattern=r"\berror\b", must_match=False).passed is True
    grade = run("regex", "an error occurred", pattern=r"\berror\b", must_match=False)
    assert grade.passed is False and "'error'" in grade.reason and "must not" in grade.reason


def test_regex_templated_pattern() -> None:
    grader = build_grader("regex", {"pattern": "order {{ order_id }}", "flags": ["IGNORECASE"]})
    assert grader.grade(Output("Your ORDER 77 is late"), make_ctx(order_id="77")).passed is True
    assert grader.grade(Output("Your ORDER 77 is late"), make_ctx(order_id="78")).passed is False


def test_regex_templated_pattern_that_renders_invalid_is_undecided() -> None:
    grade = run("regex", "x", make_ctx(part="(unclosed"), pattern="{{ part }}")
    assert grade.passed is None and "invalid regular expression" in (grade.error or "")


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"pattern": "(unclosed"}, "pattern"),
        ({}, "pattern"),
        ({"pattern": 5}, "pattern"),
        ({"pattern": "a", "flags": ["IGNORECASE", "UNICORN"]}, "flags"),
        ({"pattern": "a", "flags": 3}, "flags"),
        ({"pattern": "a", "mode": "find"}, "mode"),
        ({"pattern": "a", "must_match": "false"}, "must_match"),
    ],
)
def test_regex_config_errors_name_the_field(options: dict[str, Any], field: str) -> None:
    assert config_error("regex", **options).field == field


def test_regex_bad_pattern_message_says_what_is_wrong() -> None:
    assert "missing ), unterminated subpattern" in str(config_error("regex", pattern="(unclosed"))
