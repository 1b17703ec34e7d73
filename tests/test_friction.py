"""What a newcomer tripped over (issue 12), each fixed and pinned: hints that name the exact flag with paths
relative to the working directory, python graders from the project's evals/ with templated options,
json_schema strict, validate --schema alone, regex letter flags, SUITE@RUN in compare."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_gate_fixtures import DEAD_URL, flips, write_run

from harness.errors import HarnessError
from harness.grade import GraderConfigError, Output, build_grader
from harness.grade.base import GradeContext
from harness.suite import load_suite
from harness.templating import render_text

TINY = """\
suite: tiny
models:
  - name: local
    base_url: {url}
    api_key_env: null
prompts:
  v1:
    - {{role: user, content: "Say {{{{ word }}}}"}}
cases:
  - id: a
    vars: {{word: hi, product: Acme}}
graders:
{graders}
"""


def harness(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}  # a newcomer's laptop, not CI
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def project(root: Path, graders: str = "  - {type: contains, value: hi}") -> Path:
    (root / "pyproject.toml").write_text("[project]\nname = 'demo'\n", encoding="utf-8")
    (root / "suites").mkdir()
    suite = root / "suites" / "tiny.yaml"
    suite.write_text(TINY.format(url=DEAD_URL, graders=graders), encoding="utf-8")
    return suite


def test_keyless_first_run_hint_names_the_flag_with_relative_paths(tmp_path: Path) -> None:
    project(tmp_path)
    done = harness("run", "suites/tiny.yaml", "--quiet", cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    err = done.stderr
    assert "adding --record record-missing" in err and "no key needed" in err and DEAD_URL in err
    assert "key variable" not in err  # the suite has none
    assert "harness run suites/tiny.yaml --resume" in err and str(tmp_path) not in err.split("record-missing")[-1]
    assert "results: reports/tiny/" in err


def ctx_for(variables: dict[str, str]) -> GradeContext:
    return GradeContext(case_id="a", vars=variables, render=lambda text: render_text(text, variables, "test"))


def test_python_graders_load_from_the_project_evals_folder_with_templated_options(tmp_path: Path) -> None:
    (tmp_path / "evals").mkdir()
    (tmp_path / "evals" / "graders.py").write_text(
        "def mentions(output, context):\n"
        "    want = context['options']['must']\n"
        "    more = context['options']['more']\n"
        "    return {'passed': want in output, 'reason': f'looked for {want!r}; also {more}'}\n",
        encoding="utf-8")  # fmt: skip
    suite = project(tmp_path, "  - type: python\n    function: ../evals/graders.py:mentions\n"
                              "    options: {must: '{{ product }}', more: ['{{ word }}', 3]}")  # fmt: skip
    loaded = load_suite(suite)
    grader = loaded.graders[0].grader
    grade = grader.grade(Output("Acme says hi"), ctx_for({"word": "hi", "product": "Acme"}))
    assert grade.passed is True and grade.reason == "looked for 'Acme'; also ['hi', 3]"
    assert grader.grade(Output("nope"), ctx_for({"word": "hi", "product": "Acme"})).passed is False
    assert grader.options == {"must": "{{ product }}", "more": ["{{ word }}", 3]}  # not rendered in place


def test_python_graders_outside_the_suite_folder_and_evals_are_refused(tmp_path: Path) -> None:
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "g.py").write_text("def f(output, context):\n    return True\n", encoding="utf-8")
    suite = project(tmp_path, "  - {type: python, function: ../tools/g.py:f}")
    with pytest.raises(HarnessError) as caught:
        load_suite(suite)
    assert "would leave the suite folder" in str(caught.value) and "evals/" in str(caught.value)
    outside = tmp_path.parent / f"{tmp_path.name}-outside.py"
    outside.write_text("def f(output, context):\n    return True\n", encoding="utf-8")
    (tmp_path / "evals").mkdir()
    (tmp_path / "evals" / "link.py").symlink_to(outside)  # a link out of evals/ is refused too
    with pytest.raises(GraderConfigError):
        build_grader("python", {"function": "../evals/link.py:f", "suite_dir": str(tmp_path / "suites"),
                                "root": str(tmp_path)})  # fmt: skip


@pytest.mark.parametrize(("output", "strict_passes", "loose_passes"), [
    ('{"a": 1}', True, True),
    ('```json\n{"a": 1}\n```\n', True, True),
    ('  ```\n{"a": 1}\n```', True, True),
    ('```python\nimport json\nprint(json.dumps({"a": 1}))\n```', False, True),
    ('Here you go: {"a": 1}', False, True),
    ('```json\n{"a": 1}\n```\nHope this helps!', False, True),
    ('{"a": "x"}', False, False),
])  # fmt: skip
def test_json_schema_strict_wants_the_whole_output(output: str, strict_passes: bool, loose_passes: bool) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    strict = build_grader("json_schema", {"schema": schema, "strict": True})
    loose = build_grader("json_schema", {"schema": schema})
    assert strict.grade(Output(output), ctx_for({})).passed is strict_passes
    assert loose.grade(Output(output), ctx_for({})).passed is loose_passes
    with pytest.raises(GraderConfigError):
        build_grader("json_schema", {"schema": schema, "strict": "yes"})


@pytest.mark.parametrize(("flags", "text", "passes"), [
    (["i"], "HELLO", True), ("i", "HELLO", True), (["I"], "HELLO", True), ([], "HELLO", False),
    (["ms"], "x\nhello", True), (["IGNORECASE"], "HeLLo", True),
])  # fmt: skip
def test_regex_accepts_letter_flags(flags: object, text: str, passes: bool) -> None:
    pattern = "^hello" if flags == ["ms"] else "hello"
    grader = build_grader("regex", {"pattern": pattern, "flags": flags})
    assert grader.grade(Output(text), ctx_for({})).passed is passes


def test_regex_unknown_flag_names_the_letters() -> None:
    with pytest.raises(GraderConfigError) as caught:
        build_grader("regex", {"pattern": "x", "flags": ["q"]})
    assert "i, m, s, x, a" in str(caught.value)


def test_validate_schema_needs_no_path(tmp_path: Path) -> None:
    done = harness("validate", "--schema", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["$schema"].startswith("https://json-schema.org/")
    bare = harness("validate", cwd=tmp_path)
    assert bare.returncode == 2 and "--schema" in bare.stderr


def test_compare_takes_suite_at_run(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    write_run(reports, "s", "r0", flips(20, 0), started_at=1000.0)
    write_run(reports, "s", "r1", flips(20, 4), started_at=2000.0)
    done = harness("compare", "s@r0", "s@r1", "--format", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    v2 = next(c for c in data["comparisons"] if c["candidate"].startswith("m · v2"))
    assert len(v2["regressions"]) == 4
    latest = harness("compare", "s@r0", "s@latest", "--format", "json", cwd=tmp_path)
    assert json.loads(latest.stdout)["comparisons"] == data["comparisons"]
