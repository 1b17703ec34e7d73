"""The python grader: loading a user function from the suite folder only, and reading what it returns."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.grade import Grade, GradeContext, GraderConfigError, Output, ToolCall, build_grader

CHECKS = """
from harness.grade import Grade

def length_ok(output, context):
    return len(output) <= context["options"].get("max_len", 10)

def fraction(output, context):
    return output.count("a") / max(len(output), 1)

def as_dict(output, context):
    return {"passed": "refund" in output, "reason": f"case {context['case_id']}", "details": {"n": 1}}

def score_only(output, context):
    return {"score": 0.25}

def as_grade(output, context):
    return Grade.fail("custom verdict", score=0.1)

def echo_context(output, context):
    call = context["tool_calls"][0]
    ok = (context["vars"]["city"], call["name"], call["arguments"], context["messages"][0]["role"]) == (
        "Oslo", "get_weather", '{"city": "Oslo"}', "user"
    )
    context["vars"]["city"] = "mutated"
    return ok

def boom(output, context):
    raise KeyError("expected_total")

def nothing(output, context):
    pass

def wrong_type(output, context):
    return "yes"

def out_of_range(output, context):
    return 1.5

def typo_key(output, context):
    return {"pass": True}

def bad_passed(output, context):
    return {"passed": "yes"}

async def later(output, context):
    return output == "async ok"

def no_args():
    return True

not_a_function = 3
"""


@pytest.fixture
def suite_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "suite"
    folder.mkdir()
    (folder / "checks.py").write_text(CHECKS)
    return folder


def make(suite_dir: Path, function: str, **options: Any) -> Any:
    return build_grader("python", {"function": function, "suite_dir": str(suite_dir), **options})


def run(suite_dir: Path, function: str, text: str = "", **options: Any) -> Grade:
    return make(suite_dir, function, **options).grade(Output(text=text), GradeContext(case_id="c7", vars={}))


def config_error(suite_dir: Path | str, function: Any, **options: Any) -> GraderConfigError:
    with pytest.raises(GraderConfigError) as info:
        build_grader("python", {"function": function, "suite_dir": str(suite_dir), **options})
    return info.value


def test_bool_return(suite_dir: Path) -> None:
    assert run(suite_dir, "checks:length_ok", "short").passed is True
    grade = run(suite_dir, "checks:length_ok", "far too long for the limit")
    assert grade.passed is False and grade.score == 0.0 and "returned False" in grade.reason


def test_options_are_passed_through(suite_dir: Path) -> None:
    long_text = "x" * 50
    assert run(suite_dir, "checks:length_ok", long_text).passed is False
    assert run(suite_dir, "checks:length_ok", long_text, options={"max_len": 100}).passed is True


def test_float_return_uses_threshold(suite_dir: Path) -> None:
    grade = run(suite_dir, "checks:fraction", "aab")
    assert grade.passed is True and grade.score == pytest.approx(2 / 3)
    grade = run(suite_dir, "checks:fraction", "aab", threshold=0.8)
    assert grade.passed is False and "threshold 0.8" in grade.reason


def test_dict_return(suite_dir: Path) -> None:
    grade = run(suite_dir, "checks:as_dict", "refund issued")
    assert grade.passed is True and grade.score == 1.0 and grade.reason == "case c7"
    assert grade.details == {"n": 1}
    assert run(suite_dir, "checks:as_dict", "no").passed is False


def test_dict_with_score_only_uses_threshold(suite_dir: Path) -> None:
    assert run(suite_dir, "checks:score_only").passed is False
    assert run(suite_dir, "checks:score_only", threshold=0.2).passed is True


def test_grade_return_is_used_as_is(suite_dir: Path) -> None:
    grade = run(suite_dir, "checks:as_grade")
    assert (grade.passed, grade.score, grade.reason) == (False, 0.1, "custom verdict")


def test_context_carries_case_data_and_is_a_copy(suite_dir: Path) -> None:
    grader = make(suite_dir, "checks:echo_context")
    variables = {"city": "Oslo"}
    ctx = GradeContext(case_id="c", vars=variables, messages=({"role": "user", "content": "weather?"},))
    output = Output(text="", tool_calls=(ToolCall(name="get_weather", arguments='{"city": "Oslo"}'),))
    assert grader.grade(output, ctx).passed is True
    assert variables == {"city": "Oslo"}


@pytest.mark.parametrize(
    ("function", "expected_error"),
    [
        ("checks:boom", "checks:boom raised KeyError: 'expected_total'"),
        ("checks:nothing", "returned None"),
        ("checks:wrong_type", "returned a str"),
        ("checks:out_of_range", "outside [0, 1]"),
        ("checks:typo_key", "unknown keys ['pass']"),
        ("checks:bad_passed", "passed='yes'"),
    ],
)
def test_bad_results_are_undecided(suite_dir: Path, function: str, expected_error: str) -> None:
    grade = run(suite_dir, function, "x")
    assert grade.passed is None and grade.score == 0.0
    assert expected_error in (grade.error or "")


def test_async_function_runs_through_agrade(suite_dir: Path) -> None:
    grader = make(suite_dir, "checks:later")
    ctx = GradeContext(case_id="c", vars={})
    assert asyncio.run(grader.agrade(Output("async ok"), ctx)).passed is True
    assert asyncio.run(grader.agrade(Output("nope"), ctx)).passed is False
    assert grader.grade(Output("async ok"), ctx).passed is None


def test_loads_under_a_private_name_not_the_file_name(suite_dir: Path) -> None:
    make(suite_dir, "checks:length_ok")
    assert "checks" not in sys.modules


def test_nested_module_and_file_path_forms(suite_dir: Path) -> None:
    (suite_dir / "graders").mkdir()
    (suite_dir / "graders" / "tone.py").write_text(
        "def polite(output, context):\n    return 'please' in output\n"
    )
    assert run(suite_dir, "graders.tone:polite", "please wait").passed is True
    assert run(suite_dir, "graders/tone.py:polite", "wait").passed is False


def test_refuses_stdlib_modules(suite_dir: Path) -> None:
    error = config_error(suite_dir, "os:system")
    assert error.field == "function" and "os.py" in str(error) and "suite folder" in str(error)


def test_refuses_paths_leaving_the_suite_folder(suite_dir: Path) -> None:
    # The file exists, one level up: it must still be refused.
    (suite_dir.parent / "x.py").write_text("def f(output, context):\n    return True\n")
    for reference in ("../x:f", "../x.py:f", "..x:f", str(suite_dir.parent / "x.py") + ":f"):
        error = config_error(suite_dir, reference)
        assert error.field == "function" and "refused" in str(error), reference


def test_refuses_a_symlink_pointing_out_of_the_suite_folder(suite_dir: Path) -> None:
    outside = suite_dir.parent / "outside.py"
    outside.write_text("def f(output, context):\n    return True\n")
    (suite_dir / "link.py").symlink_to(outside)
    assert "outside the suite folder" in str(config_error(suite_dir, "link:f"))


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("checks", "expected 'module:function'"),
        ("checks:", "expected 'module:function'"),
        ("missing:f", "no file missing.py"),
        ("checks:absent", "has no function 'absent'"),
        ("checks:not_a_function", "has no function 'not_a_function'"),
        ("checks:no_args", "must accept (output, context)"),
    ],
)
def test_load_errors(suite_dir: Path, function: str, message: str) -> None:
    error = config_error(suite_dir, function)
    assert error.field == "function" and message in str(error)


def test_module_that_fails_to_import_is_a_config_error(suite_dir: Path) -> None:
    (suite_dir / "broken.py").write_text("import not_a_real_module_xyz\n")
    error = config_error(suite_dir, "broken:f")
    assert error.field == "function" and "ModuleNotFoundError" in str(error)


def test_option_config_errors(suite_dir: Path) -> None:
    assert config_error(suite_dir, 5).field == "function"
    assert config_error(suite_dir / "nope", "checks:length_ok").field == "suite_dir"
    assert config_error(suite_dir, "checks:fraction", threshold=2).field == "threshold"
    assert config_error(suite_dir, "checks:fraction", threshold=True).field == "threshold"
    assert config_error(suite_dir, "checks:fraction", options=[1]).field == "options"
    with pytest.raises(GraderConfigError) as info:
        build_grader("python", {"function": "checks:fraction"})
    assert info.value.field == "suite_dir"
