"""The suite loader: good suites become the right dataclasses; the bad ones are in test_bad_suites.py."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from harness.errors import SuiteError
from harness.suite import Baseline, GateSettings, Price, load_suite
from harness.suite.prices import known_price
from harness.suite.yamlread import key_path_at, load_yaml_text


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("")
    write(tmp_path, "suites/prompts/v2.yaml", """
        messages:
          - role: system
            content: You answer in one word.
          - history: true
          - role: user
            content: "{{ question }}"
        params: {max_tokens: 3}
    """)
    write(tmp_path, "suites/prompts/v3.txt", "Question: {{ question }}\n")
    write(tmp_path, "evals/qa.jsonl", """
        {"id": "sky", "vars": {"question": "Colour of the sky?", "expected": "blue"}}

        {"question": "Colour of grass?", "expected": "green", "label": "pass", "group": "nature"}
    """)
    write(tmp_path, "evals/qa.csv", """
        id,question,expected
        snow,Colour of snow?,white
    """)
    write(tmp_path, "evals/qa.yaml", """
        - id: chat
          vars: {question: "And now?", expected: "yes"}
          messages:
            - {role: user, content: Earlier question}
            - {role: assistant, content: Earlier answer}
    """)
    write(tmp_path, "suites/schema.json", '{"type": "object", "required": ["answer"]}')
    write(tmp_path, "suites/qa.yaml", """
        suite: qa
        description: Colours.
        models:
          - name: gpt-4o-mini
          - name: local
            id: local-8b
            base_url: ${HARNESS_TEST_URL:-http://127.0.0.1:8011}/v1
            api_key_env: null
            price: {input: 0.1, output: 0.2}
            max_concurrency: 2
            timeout: 5
            seed: false
            params: {top_p: 0.9}
        temperatures: [0.0, 0.7]
        repeats: 3
        seed: 42
        params: {max_tokens: 8}
        vars: {style: terse}
        tools:
          - type: function
            function: {name: lookup, parameters: {type: object}}
        prompts:
          v1:
            - role: user
              content: "{{ style }}: {{ question }}"
          v2: {file: prompts/v2.yaml}
          v3: {file: prompts/v3.txt}
        baseline: {prompt: v1, model: gpt-4o-mini, temperature: 0.0}
        gate: {metrics: [pass_rate, cost], margin: 0.1, tolerance: 0.02, mode: non-inferiority}
        retry: {max_attempts: 3}
        threshold: 0.5
        cases:
          - id: inline
            vars: {question: "Colour of coal?", expected: black}
            graders:
              - type: regex
                pattern: "^b"
          - file: ../evals/qa.jsonl
            vars: {style: plain}
          - file: ../evals/qa.csv
          - file: ../evals/qa.yaml
        graders:
          - type: contains
            value: "{{ expected }}"
            weight: 2
          - type: json_schema
            schema_file: schema.json
    """)
    return tmp_path


def test_models_prices_and_settings(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARNESS_TEST_URL", raising=False)
    suite = load_suite(project / "suites/qa.yaml")
    assert suite.name == "qa" and suite.description == "Colours."
    assert suite.root == project.resolve()
    openai, local = suite.models
    assert (openai.id, openai.name, openai.api_key_env, openai.base_url) == ("gpt-4o-mini", "gpt-4o-mini",
                                                                          "OPENAI_API_KEY", None)
    assert known_price("gpt-4o-mini") is not None
    assert openai.price == known_price("gpt-4o-mini")  # the built-in table
    assert (openai.price.input, openai.price.output, openai.price.cached_input) == (0.15, 0.60, 0.075)
    assert local.id == "local-8b" and local.api_key_env == ""
    assert local.base_url == "http://127.0.0.1:8011/v1"
    assert local.price == Price(0.1, 0.2)  # not in the table: the suite's own, with no cached or batch rate
    assert (local.max_concurrency, local.timeout, local.send_seed) == (2, 5.0, False)
    assert dict(local.params) == {"top_p": 0.9}
    assert set(suite.judges) == {"gpt-4o-mini", "local-8b"}
    assert suite.temperatures == (0.0, 0.7) and suite.repeats == 3 and suite.seed == 42
    assert dict(suite.params) == {"max_tokens": 8} and dict(suite.vars) == {"style": "terse"}
    assert suite.baseline == Baseline(prompt="v1", model="gpt-4o-mini", temperature=0.0)
    assert suite.gate == GateSettings(metrics=("pass_rate", "cost"), margin=0.1, tolerance=0.02,
                                      mode="non-inferiority")
    assert suite.retry.max_attempts == 3 and suite.threshold == 0.5
    assert len(suite.hash) == 16


def test_env_expansion_in_base_url(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_TEST_URL", "http://127.0.0.1:9999")
    suite = load_suite(project / "suites/qa.yaml")
    assert suite.model("local-8b").base_url == "http://127.0.0.1:9999/v1"


def test_prompts_inline_from_yaml_and_from_text(project: Path) -> None:
    suite = load_suite(project / "suites/qa.yaml")
    v1, v2, v3 = (suite.prompts[name] for name in ("v1", "v2", "v3"))
    assert [m.role for m in v1.messages] == ["user"] and v1.variables == {"style", "question"}
    assert v1.tools[0]["function"]["name"] == "lookup"  # suite-level tools apply
    assert [m.role for m in v2.messages] == ["system", "history", "user"]
    assert v2.messages[1].history and v2.messages[1].content is None
    assert dict(v2.params) == {"max_tokens": 3}
    assert v2.source.endswith("prompts/v2.yaml")
    assert v3.messages[0].content == "Question: {{ question }}\n" and v3.variables == {"question"}
    assert len({v1.fingerprint, v2.fingerprint, v3.fingerprint}) == 3
    assert {p.name for p in suite.files} >= {"qa.yaml", "v2.yaml", "v3.txt", "qa.jsonl", "qa.csv"}


def test_cases_from_every_source_in_order(project: Path) -> None:
    suite = load_suite(project / "suites/qa.yaml")
    cases = list(suite.iter_cases())
    assert [c.id for c in cases] == ["inline", "sky", "qa-3", "snow", "chat"]
    inline, sky, grass, snow, chat = cases
    assert inline.vars == {"question": "Colour of coal?", "expected": "black"}
    assert [g.type for g in inline.graders] == ["regex"]
    assert sky.vars == {"style": "plain", "question": "Colour of the sky?", "expected": "blue"}
    assert sky.location is not None and sky.location.line == 1 and sky.location.file.endswith("qa.jsonl")
    assert grass.label == "pass" and grass.group == "nature" and grass.location.line == 3
    assert snow.vars == {"question": "Colour of snow?", "expected": "white"}
    assert [m["role"] for m in chat.messages] == ["user", "assistant"]
    # Streamed afresh each time, identically.
    assert [c.id for c in suite.iter_cases()] == [c.id for c in cases]


def test_suite_graders_with_weights_and_files(project: Path) -> None:
    suite = load_suite(project / "suites/qa.yaml")
    contains, schema = suite.graders
    assert (contains.type, contains.weight, contains.variables) == ("contains", 2.0, {"expected"})
    assert contains.location is not None and contains.location.field == "graders[0]"
    assert schema.type == "json_schema" and schema.weight == 1.0


def test_defaults_of_a_minimal_suite(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    path = write(tmp_path, "s.yaml", """
        suite: tiny
        models: [{name: m}]
        prompts: {v1: [{role: user, content: hi}]}
        cases: [{id: only}]
    """)
    suite = load_suite(path)
    assert suite.temperatures == (0.0,) and suite.repeats == 1 and suite.graders == ()
    assert suite.baseline == Baseline() and suite.gate == GateSettings()
    assert suite.root == tmp_path.resolve()


def test_errors_name_file_line_and_field(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    path = write(tmp_path, "s.yaml", """
        suite: tiny
        models: [{name: m}]
        prompts:
          v1:
            - role: user
              content: |
                first line
                {{ oops( }}
        cases: [{id: only}]
    """)
    with pytest.raises(SuiteError) as caught:
        load_suite(path)
    assert caught.value.location.line == 8
    assert caught.value.location.field == "prompts.v1[0].content"
    assert caught.value.location.file.endswith("s.yaml")


def test_check_cases_can_be_deferred(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    path = write(tmp_path, "s.yaml", """
        suite: tiny
        models: [{name: m}]
        prompts: {v1: [{role: user, content: hi}]}
        cases: [{id: a}, {id: a}]
    """)
    assert load_suite(path, check_cases=False).name == "tiny"
    with pytest.raises(SuiteError, match="duplicate case id 'a'"):
        load_suite(path)


def test_yaml_lines_and_alias_limits() -> None:
    data = load_yaml_text("a:\n  b: |\n    text\n  c: [1, 2]\n", "f.yaml")
    assert data.key_lines == {"a": 1} and data["a"].key_lines == {"b": 2, "c": 4}
    assert data["a"].value_lines["b"] == 3  # the block scalar's text starts below its indicator
    shared = load_yaml_text("x: &x {k: 1}\ny: *x\nz: *x\n", "f.yaml")
    assert shared["y"] == shared["z"] == {"k": 1}
    with pytest.raises(SuiteError, match="alias bomb"):
        load_yaml_text("a: &a [" + ",".join(["x"] * 1000) + "]\nb: [" + ",".join(["*a"] * 200) + "]\n", "f.yaml")


def test_key_path_for_unparsable_lines() -> None:
    text = "suite: s\nprompts:\n  v1:\n    - role: user\n      content: x\nbroken: [\n"
    assert key_path_at(text, 5) == "prompts.v1.content"
    assert key_path_at(text, 6) == "broken"
    assert key_path_at("", 1) == "(top level)"


# --- YAML edge cases (issue 14): located errors, never tracebacks; whichever parser the loader uses ----------

def _yaml_error(text: str) -> SuiteError:

    with pytest.raises(SuiteError) as caught:
        load_yaml_text(text, "s.yaml")
    return caught.value


@pytest.mark.parametrize(("text", "line", "field"), [
    ("a: 1\ncases:\n  - vars: {word: hi\ngraders:\n  - x: 1\n", 3, "cases.vars"),
    ("a: 1\ncases:\n  - vars: [1, 2\ngraders: []\n", 3, "cases.vars"),
    ("a: 1\nb:\n  c: {d: [1, {e: 2}\nf: 3\n", 3, "b.c"),
])
def test_an_unclosed_bracket_is_reported_where_it_opens(text: str, line: int, field: str) -> None:
    err = _yaml_error(text)
    assert (err.location.line, err.location.field) == (line, field)
    assert "never closed" in err.message


def test_nesting_is_limited_at_its_line_not_by_a_recursion_error() -> None:
    from harness.suite.yamlread import MAX_DEPTH

    ok = "x: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n"
    assert load_yaml_text(ok, "s.yaml")["x"] is not None
    err = _yaml_error("a: 1\nb:\n  x: " + "[" * 5000 + "]" * 5000 + "\n")
    assert (err.location.line, err.location.field) == (3, "b.x")
    assert "nested more than" in err.message
    block = "top:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(300)) + "  " * 301 + "v: 1\n"
    assert _yaml_error(block).location.line is not None


def test_control_characters_are_located() -> None:
    err = _yaml_error("a: 1\nb: 'x\x00y'\n")
    assert (err.location.line, err.location.field) == (2, "b")
    assert "NUL byte" in err.message


def test_dates_are_kept_as_the_text_written() -> None:
    from harness.suite.yamlread import DateText

    data = load_yaml_text("when: 2024-05-01\nat: 2024-05-01 10:00:00\n", "s.yaml")
    assert data["when"] == "2024-05-01" and isinstance(data["when"], DateText)
    assert json.dumps(data) == '{"when": "2024-05-01", "at": "2024-05-01 10:00:00"}'
