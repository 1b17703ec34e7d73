"""Judge graders in suite files: suite-level defaults, files for rubric and template, errors at the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import SuiteError
from harness.suite import load_suite

ROOT = Path(__file__).resolve().parents[1]

HEAD = """\
suite: s
models:
  - {name: graded, base_url: "http://127.0.0.1:9/v1", api_key_env: null}
judges:
  - {id: j1, name: judge-model, base_url: "http://127.0.0.1:9/v1", api_key_env: null}
  - {id: j2, name: judge-model, base_url: "http://127.0.0.1:9/v1", api_key_env: null}
prompts:
  v1: [{role: user, content: "{{ q }}"}]
cases:
  - {id: c1, vars: {q: hi}, label: pass}
"""


def load(tmp_path: Path, body: str) -> object:
    (tmp_path / "pyproject.toml").write_text("")  # the project root: files may not escape it
    path = tmp_path / "suite.yaml"
    path.write_text(HEAD + body, encoding="utf-8")
    return load_suite(path)


def error(tmp_path: Path, body: str) -> SuiteError:
    with pytest.raises(SuiteError) as info:
        load(tmp_path, body)
    return info.value


def test_suite_level_judge_defaults_fill_every_judge_grader(tmp_path: Path) -> None:
    (tmp_path / "rubric.md").write_text("Be correct.\n")
    (tmp_path / "judge.yaml").write_text("user: 'Judge this: {{ candidate }}'\n")
    suite = load(tmp_path, """\
judge: {model: j1, rubric_file: rubric.md, template_file: judge.yaml, max_tokens: 99}
graders:
  - {type: judge}
  - {type: judge, model: j2, rubric: "Be brief.", max_tokens: 10}
""")
    first, second = (spec.grader for spec in suite.graders)  # type: ignore[attr-defined]
    assert (first.model, first.rubric, first.max_tokens) == ("j1", "Be correct.\n", 99)
    assert first.template.user == "Judge this: {{ candidate }}" and first.rubric_file == "rubric.md"
    # The grader's own options win; its `rubric` also overrides the default `rubric_file`.
    assert (second.model, second.rubric, second.max_tokens, second.rubric_file) == ("j2", "Be brief.", 10, None)
    assert second.template.user == first.template.user


def test_a_case_label_reaches_the_case(tmp_path: Path) -> None:
    suite = load(tmp_path, "graders:\n  - {type: judge, model: j1, rubric: r}\n")
    (case,) = list(suite.iter_cases())  # type: ignore[attr-defined]
    assert case.label == "pass"


def test_an_undeclared_judge_model_is_named_with_its_line(tmp_path: Path) -> None:
    err = error(tmp_path, "graders:\n  - type: judge\n    model: j11\n    rubric: r\n")
    assert err.location.line == 13 and err.location.field == "graders[0].model"
    assert "not declared" in err.message and "did you mean" in err.message


def test_bad_judge_options_are_named_with_their_line(tmp_path: Path) -> None:
    err = error(tmp_path, "graders:\n  - type: judge\n    model: j1\n    rubric: r\n    scale: 1-100000\n")
    assert (err.location.line, err.location.field) == (15, "graders[0].scale")
    err = error(tmp_path, "graders:\n  - type: judge\n    model: j1\n    rubric: r\n    template: {user: oops}\n")
    assert err.location.field == "graders[0].template" and "candidate" in err.message


def test_the_example_suite_loads() -> None:
    suite = load_suite(ROOT / "suites" / "examples" / "judge.yaml")
    (spec,) = suite.graders
    grader = spec.grader
    assert grader.model == "smollm2-judge" and grader.votes == 3 and grader.reference == "{{ answer }}"  # type: ignore[attr-defined]
    assert "smollm2-judge" in suite.judges
    cases = list(suite.iter_cases())
    assert len(cases) == 8 and {c.label for c in cases} == {"pass", "fail"}


def test_the_example_suite_replays_offline_from_its_committed_cassettes(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.pipeline import RunOptions, run_suite
    from harness.stats.calibration import calibration_from_results
    from harness.store import read_results

    # A changed default judge prompt changes every judge request: re-record with
    # `harness run suites/examples/judge.yaml --record record` against the local server.
    monkeypatch.setenv("LOCAL_LLM_URL", "http://127.0.0.1:9/v1")
    monkeypatch.delenv("CI", raising=False)
    suite = load_suite(ROOT / "suites" / "examples" / "judge.yaml")
    outcome = run_suite(suite, RunOptions(reports_root=tmp_path, cassettes_root=ROOT / "cassettes", record="replay",
                                          run_id="replay", progress=False))
    results = list(read_results(outcome.results_path))
    assert not outcome.execute.replay_misses and len(results) == 8
    for result in results:
        (grade,) = result.grades
        assert grade.error is None, (result.case_id, grade.error)
        assert len(grade.details["votes"]) == 3 and result.judge_usage["prompt_tokens"] > 0
    calibration = calibration_from_results(results)
    assert calibration is not None and calibration.judges[0].pass_fail.pairs == 8  # type: ignore[union-attr]
