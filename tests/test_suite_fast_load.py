"""Loading suites fast changes nothing a user sees: libyaml's parser gives the values and lines the pure-Python
loader gives, errors keep their words and lines, and the schema shortcut for plain inline cases accepts only
cases the schema accepts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from harness.errors import SuiteError
from harness.suite import load_suite, schema_check, yamlread
from harness.suite.yamlread import DateText, LineDict, LineList, load_yaml_text

REPO = Path(__file__).resolve().parents[1]

DOCUMENTS = [
    "a: 1\nb: [1, 2, {c: d}]\n",
    "base: &b {x: 1, y: two}\nother:\n  <<: *b\n  z: 3\n",
    "text: |\n  line one\n  line two\nfolded: >\n  a\n  b\nafter: 1\n",
    "when: 2024-01-02\nstamp: 2024-01-02T03:04:05Z\nquoted: '2024-01-02'\n",
    "- id: 1\n  vars: {n: 1.5, ok: true, none: null, big: 1e3}\n- id: two\n  label: pass\n",
    "nested:\n  - - - deep\n    - [x, y]\n  - {k: [1, {m: n}]}\n",
    "anchors:\n  - &g {type: exact, value: hi}\n  - *g\n  - *g\n",
    "unicode: 'héllo ✓'\nemoji: \"\\U0001F600\"\nescaped: \"tab\\tnew\\nline\"\n",
    "# only a comment\n",
    "",
    # Everything the C-composed path builds itself or hands to the constructors (no `*` in these).
    "m:\n  <<: {x: 1, y: 2}\n  z: 3\nn:\n  <<: [{a: 1}, {b: 2}]\n",
    "1: int key\n2.5: float key\ntrue: bool key\nnull: null key\n",
    "s: !!str 123\nf: !!float 1\nset: !!set {a, b}\nomap: !!omap [{a: 1}, {b: 2}]\npairs: !!pairs [{a: 1}]\n",
    "b: !!binary aGVsbG8=\nempty:\nblank: ''\nplain: a\n  continued line\n",
    "keep: |+\n  kept\n\nstrip: |-\n  stripped\nindented: |2\n    two\nfolded: >-\n  f\n  g\n",
    "hex: 0x1F\noct: 0o17\nsexa: 1:30\ninf: .inf\nnan: .NaN\nyes: yes\nno_: No\n",
    "[a, {b: c}, [d, [e]]]\n",
    "- 'quoted: not a key'\n- \"double \\u00e9\"\n- ? complex key\n  : value\n",
    "star: 'a * in text sends the document to the Python composer'\nx: [1]\n",
]


def shape(value: Any) -> Any:
    """Values with every line number the loader attached, and the exact types (a DateText stays one)."""
    if isinstance(value, LineDict):
        return ("map", value.line, dict(value.key_lines), dict(value.value_lines),
                {k: shape(v) for k, v in value.items()})
    if isinstance(value, LineList):
        return ("seq", value.line, list(value.item_lines), [shape(v) for v in value])
    return (type(value).__name__, value)


def pure(text: str) -> Any:
    loader = yamlread._Loader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def example_texts() -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted((REPO / "suites").rglob("*.yaml"))]


def test_libyaml_is_used_when_pyyaml_has_it() -> None:
    assert yaml.__with_libyaml__, "this machine's PyYAML lacks libyaml: the fast path is not exercised"
    loaded, _ = yamlread._load_fast("a: 1\n")
    assert loaded


@pytest.mark.parametrize("text", DOCUMENTS + example_texts())
def test_fast_loader_gives_the_same_values_and_lines(text: str) -> None:
    loaded, fast = yamlread._load_fast(text)
    assert loaded
    assert shape(fast) == shape(pure(text))
    assert shape(load_yaml_text(text, "x.yaml")) == shape(pure(text))


def test_documents_without_aliases_are_composed_in_c(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []
    original = yamlread._CComposedLoader.construct_document

    def spy(self: Any, node: Any) -> Any:
        built.append("c")
        return original(self, node)

    monkeypatch.setattr(yamlread._CComposedLoader, "construct_document", spy)
    assert yamlread._load_fast("a: [1, {b: c}]\n")[0] and built == ["c"]
    assert yamlread._load_fast("a: &x [1]\nb: *x\n")[0] and built == ["c"]  # an alias: not in C


@pytest.mark.parametrize("depth", [99, 100, 101, 999])
def test_depth_limit_is_the_same_on_the_c_path(depth: int) -> None:
    for text in ("[" * depth + "]" * depth + "\n",
                 "".join(f"{'  ' * i}k{i}:\n" for i in range(depth)) + "  " * depth + "end\n"):
        loaded, fast = yamlread._load_fast(text)
        try:
            expected = shape(pure(text))
        except yaml.YAMLError:
            assert not loaded  # refused: the pure loader reports it, with its words
        else:
            assert loaded and shape(fast) == expected


def test_dates_stay_text_through_the_fast_loader() -> None:
    loaded, fast = yamlread._load_fast("d: 2024-01-02\n")
    assert loaded and isinstance(fast["d"], DateText) and fast["d"] == "2024-01-02"


@pytest.mark.parametrize(
    "text",
    [
        "a: [1, 2\nb: 3\n",                      # unclosed flow sequence
        "a: 1\na: 2\n",                           # duplicate key
        "a: 1\nb: {c: 1, c: 2}\n",                 # duplicate key, nested
        "? [a, b]\n: v\n",                        # a key that is not a plain value
        "a:\n  - b\n c: d\n",                     # bad indentation
        "a: \"unterminated\n",                    # unclosed quote
        "x: *missing\n",                          # undefined alias
        "a: 1\n---\nb: 2\n",                      # two documents
        "k: v\x00\n",                             # NUL byte
        "[" * 150 + "]" * 150 + "\n",             # nested past the limit (flow)
        "".join(f"{'  ' * i}k{i}:\n" for i in range(150)) + "  " * 150 + "end\n",  # nested past the limit
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(6)),
    ],
)
def test_errors_keep_their_words_and_lines(text: str) -> None:
    with pytest.raises(SuiteError) as fast:
        load_yaml_text(text, "bad.yaml")
    # What the pure-Python loader alone reports for the same text.
    original = yamlread._load_fast
    try:
        yamlread._load_fast = lambda _text: (False, None)  # type: ignore[assignment]
        with pytest.raises(SuiteError) as slow:
            load_yaml_text(text, "bad.yaml")
    finally:
        yamlread._load_fast = original  # type: ignore[assignment]
    assert str(fast.value) == str(slow.value)


def test_alias_bomb_is_still_refused() -> None:
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"{c}: &{c} [{', '.join(['*' + p] * 10)}]" for p, c in zip("abcdef", "bcdefg", strict=True)]
    with pytest.raises(SuiteError, match="alias bomb"):
        load_yaml_text("\n".join(levels) + "\n", "bomb.yaml")


CASES: list[Any] = [
    {"id": "a", "vars": {"x": 1}},
    {"id": 3, "label": ["anything"], "group": 7, "description": "d", "tool_results": {}},
    {"id": True},                                  # bool is no integer
    {"id": 1.5},
    {"id": DateText("2024-01-02")},                # a date is no string
    {"vars": [1, 2]},
    {"file": "cases.jsonl"},
    {"file": "x", "id": "y"},
    {"id": "m", "messages": [{"role": "user", "content": "hi"}]},
    {"id": "g", "graders": [{"type": "exact", "value": "x"}]},
    {"id": "u", "unknown": 1},
    {"group": None},
    {"description": 5},
    {},
    [],
    "text",
    None,
]


@pytest.mark.parametrize("case", CASES, ids=range(len(CASES)))
def test_shortcut_accepts_only_what_the_schema_accepts(case: Any) -> None:
    schema = {**schema_check.suite_schema()["$defs"]["caseOrFile"], "$defs": schema_check.suite_schema()["$defs"]}
    checker = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("string", schema_check._is_text)
    plain_validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=checker)(schema)
    if schema_check._plainly_valid_case(case):
        assert not list(plain_validator.iter_errors(case))
        assert not isinstance(case.get("id"), bool | DateText)


def test_shortcut_applies_to_the_suite_schema() -> None:
    assert schema_check._plain_case_fields(), "the schema's case definition changed shape: update the shortcut"
    assert schema_check._plainly_valid_case({"id": "a", "vars": {"x": 1}})


def test_a_bad_case_after_many_plain_ones_is_reported_at_its_line(tmp_path: Path) -> None:
    cases = "".join(f"  - id: c{i}\n    vars: {{text: t{i}}}\n" for i in range(500))
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "suite: s\nmodels:\n  - name: m\n    base_url: http://127.0.0.1:9/v1\n    api_key_env: null\n"
        "prompts:\n  v1:\n    - {role: user, content: '{{ text }}'}\n"
        f"cases:\n{cases}  - id: bad\n    vars: {{text: t}}\n    colour: red\n",
        encoding="utf-8",
    )
    with pytest.raises(Exception) as err:  # noqa: PT011 - SuiteErrors or SuiteError, by the loader's choice
        load_suite(suite)
    text = str(err.value)
    line = suite.read_text(encoding="utf-8").splitlines().index("    colour: red") + 1
    assert f"suite.yaml:{line}" in text and "cases[500].colour" in text and "unknown key 'colour'" in text
