"""Sandboxed templates: escapes are refused at load time where visible, at render time otherwise."""

from __future__ import annotations

import pytest

from harness import templating
from harness.errors import Location, SuiteError, TemplateError
from harness.template_limits import MAX_OUTPUT
from harness.templating import check_template, render_text

WHERE = Location("suite.yaml", 10, "prompts.v1[0].content")

ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ self.__init__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ x|attr('__class__') }}",
    "{{ x|attr('__class__')|attr('__base__') }}",
    "{{ x['__class__'] }}",
    "{{ x.__dict__ }}",
    "{{ c.cr_frame }}",
    "{{ g.gi_frame }}",
    "{% for c in ''.__class__.__mro__ %}{{ c }}{% endfor %}",
    "{% set k = x.__class__ %}{{ k }}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_escapes_are_refused_at_load(source: str) -> None:
    with pytest.raises(SuiteError, match="refused by the sandbox") as caught:
        check_template(source, WHERE)
    assert caught.value.location == WHERE


@pytest.mark.parametrize("name", ["cycler", "joiner", "lipsum"])
def test_removed_globals_are_refused_at_load(name: str) -> None:
    with pytest.raises(SuiteError, match=f"'{name}' is not available"):
        check_template(f"{{{{ {name} }}}}", WHERE)
    with pytest.raises(SuiteError, match=f"'{name}' is not available"):
        check_template(f"{{% set j = {name}() %}}{{{{ j() }}}}", WHERE)


@pytest.mark.parametrize(
    "source",
    [
        "{{ x|attr(name) }}",  # the attribute name is a variable: only the sandbox at render time can see it
        "{{ x['__cla' ~ 'ss__'] }}",
        "{{ x[name] }}",
        "{{ '{0.__class__}'.format(x) }}",
        "{{ x.__class__ }}",
    ],
)
def test_escapes_hidden_from_the_check_are_refused_at_render(source: str) -> None:
    with pytest.raises(TemplateError, match="case 'c1'"):
        render_text(source, {"x": "text", "name": "__class__"}, "case 'c1'")


def test_undefined_variables_are_errors_not_empty_strings() -> None:
    with pytest.raises(TemplateError, match="undefined template variable: 'missing' is undefined"):
        render_text("Hello {{ missing }}", {}, "prompt 'v1'")
    with pytest.raises(TemplateError, match="undefined"):
        render_text("{{ user.name }}", {"user": {}}, "prompt 'v1'")


def test_ordinary_templates_render() -> None:
    variables = {"name": "Ada", "items": ["a", "b"], "n": 2}
    assert render_text("Hi {{ name|upper }}", variables) == "Hi ADA"
    assert render_text("{% for i in items %}{{ loop.index }}{{ i }} {% endfor %}", variables) == "1a 2b "
    assert render_text("{{ range(n)|list }}", variables) == "[0, 1]"
    assert render_text("{% set ns = namespace(t=0) %}{% for i in range(3) %}{% set ns.t = ns.t + i %}"
                       "{% endfor %}{{ ns.t }}", {}) == "3"
    assert render_text("{{ items|join(', ') }}\n", variables) == "a, b\n"  # trailing newline kept
    assert render_text("<b>{{ name }}</b>", {"name": "<i>"}) == "<b><i></b>"  # prompts are not HTML


def test_plain_text_is_returned_untouched() -> None:
    text = "No template here, even with a lone { brace and a %."
    assert render_text(text, {}) is text


def test_check_returns_the_variables_a_template_needs() -> None:
    needed = check_template("{{ a }} {% for i in range(n) %}{{ i }}{% endfor %} {% set b = 1 %}{{ b }}", WHERE)
    assert needed == {"a", "n"}


def test_errors_point_at_the_template_line_within_the_file() -> None:
    with pytest.raises(SuiteError, match="template syntax error") as caught:
        check_template("line one\nline two\n{{ broken( }}\n", WHERE)
    assert caught.value.location.line == 12
    with pytest.raises(SuiteError, match="refused") as refused:
        check_template("fine\n{{ x.__class__ }}", WHERE)
    assert refused.value.location.line == 11
    assert refused.value.location.field == WHERE.field


# --- rendering limits and attribute-reading filters (issue 14) ------------------------------------------

ATTRIBUTE_FILTER_ESCAPES = [
    "{{ items|map(attribute='__class__')|list }}",
    "{{ items|map(attribute='a.__class__')|list }}",
    "{{ items|map('attr', '__class__')|list }}",
    "{{ items|selectattr('__class__')|list }}",
    "{{ items|rejectattr('_hidden')|list }}",
    "{{ items|sort(attribute='__class__')|list }}",
    "{{ items|sort(false, false, '__class__')|list }}",
    "{{ items|groupby('__class__')|list }}",
    "{{ items|sum(attribute='__len__') }}",
    "{{ items|unique(attribute='__class__')|list }}",
    "{{ items|min(attribute='__class__') }}",
    "{{ items|max(attribute='gi_frame') }}",
]


@pytest.mark.parametrize("source", ATTRIBUTE_FILTER_ESCAPES)
def test_filters_reading_internals_by_name_are_refused_at_load(source: str) -> None:
    with pytest.raises(SuiteError, match="refused by the sandbox"):
        check_template(source, WHERE)


def test_filters_reading_internals_through_a_variable_fail_at_render_instead_of_printing_undefined() -> None:
    # The attribute name is data, so only rendering can see it: it must fail, not print "[Undefined]".
    source = "{{ items|map(attribute=name)|list }}"
    assert check_template(source, WHERE) == {"items", "name"}
    with pytest.raises(TemplateError, match="refused by the sandbox"):
        render_text(source, {"items": [{"a": 1}], "name": "__class__"}, "case 'x'")


def test_attribute_filters_on_ordinary_names_still_work() -> None:
    items = [{"n": "b", "k": 2}, {"n": "a", "k": 1}]
    source = "{{ items|sort(attribute='n')|map(attribute='k')|join(',') }} {{ items|sum(attribute='k') }}"
    check_template(source, WHERE)
    assert render_text(source, {"items": items}) == "1,2 3"


@pytest.mark.parametrize("source", ["{% include 'a.txt' %}", "{% import 'm.txt' as m %}",
                                    "{% from 'm.txt' import f %}", "{% extends 'base.txt' %}"])
def test_templates_cannot_load_other_templates(source: str) -> None:
    with pytest.raises(SuiteError, match="is not supported"):
        check_template("line one\n" + source, WHERE)


@pytest.mark.parametrize("source", ["{{ 7**(10**8) }}", "{{ 'x'*10**8 }}", "{{ 10**8 * [1] }}",
                                    "{{ (2**5000) * (2**5001) }}", "{% if x %}{{ -(9**99999) }}{% endif %}"])
def test_constant_bombs_are_refused_at_load(source: str) -> None:
    with pytest.raises(SuiteError, match="rendering limit"):
        check_template(source, WHERE)


def test_bombs_built_from_variables_are_template_errors_at_render() -> None:
    with pytest.raises(TemplateError, match="rendering limit"):
        render_text("{{ base ** power }}", {"base": 7, "power": 10**8}, "case 'x'")
    with pytest.raises(TemplateError, match="rendering limit"):
        render_text("{{ word * times }}", {"word": "ab", "times": 10**8}, "case 'x'")
    # Doubling in a loop passes the repetition limit on its own; the output cap stops what it prints.
    with pytest.raises(TemplateError, match="rendered text passes"):
        render_text("{% for i in range(100000) %}{{ block }}{% endfor %}", {"block": "y" * 1000})


def test_ordinary_arithmetic_and_repetition_are_untouched() -> None:
    assert render_text("{{ 2**64 }} {{ '-' * 40 }} {{ n * 3 }}", {"n": 7}) == f"{2**64} {'-' * 40} 21"


def test_runaway_macro_recursion_is_a_template_error() -> None:
    source = "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"
    check_template(source, WHERE)  # not visible statically
    with pytest.raises(TemplateError, match="recursion too deep"):
        render_text(source, {}, "case 'x'")


def test_a_render_error_at_run_time_fails_that_trial_once_without_any_call(tmp_path) -> None:  # noqa: ANN001
    """A bomb that only a trial's data reveals is that trial's template error: no call, no retry."""
    import asyncio
    import dataclasses
    import random

    from harness.execute.scheduler import Scheduler
    from harness.plan import iter_trials
    from harness.render import render_request
    from harness.suite import load_suite
    from harness.suite.model import RetrySettings

    (tmp_path / "suite.yaml").write_text(
        "suite: bomb\nmodels:\n  - name: m\n    base_url: http://127.0.0.1:9/v1\n    api_key_env: null\n"
        "prompts:\n  v1:\n    - {role: user, content: '{{ word * times }}'}\n"
        "cases:\n  - {id: one, vars: {word: hi, times: 2}}\ngraders:\n  - {type: contains, value: hi}\n")
    suite = load_suite(tmp_path / "suite.yaml")
    trials = [dataclasses.replace(t, case=dataclasses.replace(t.case, vars={"word": "hi", "times": 10**8}))
              for t in iter_trials(suite)]
    calls: list[str] = []
    finished: list[object] = []

    async def call(trial: object, request: object) -> object:
        calls.append("called")
        raise AssertionError("no call may be made for a trial that cannot render")

    async def finish(trial: object, request: object, attempted: object) -> None:
        finished.append(attempted)

    scheduler = Scheduler(
        render=lambda t: render_request(suite, t.prompt, t.model, t.case, t.temperature, t.repeat),
        call=call, finish=finish, retry=RetrySettings(max_attempts=5), concurrency={"m": 1},
        rng=random.Random(1), sleep=lambda _: asyncio.sleep(0),
    )
    asyncio.run(scheduler.run(iter(trials)))
    assert calls == []
    assert len(finished) == 1
    attempted = finished[0]
    assert attempted.error is not None and attempted.error.kind == "template"  # type: ignore[attr-defined]
    assert "rendering limit" in attempted.error.message  # type: ignore[attr-defined]
    assert attempted.attempts == 0  # type: ignore[attr-defined]


GROWING_BOMBS = [
    ("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", {}),
    ("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}", {}),
    ("{% set ns = namespace(s='xxxxxxxxxx') %}{% for i in range(9) %}{% set ns.s = ns.s|replace('x', ns.s) %}"
     "{% endfor %}", {}),
    ("{% set ns = namespace(s='xxxxxxxxxx') %}{% for i in range(9) %}{% set ns.s = ns.s.replace('x', ns.s) %}"
     "{% endfor %}", {}),
    ("{{ 'x'|center(n) }}", {"n": 10**8}),
    ("{{ 'x'.ljust(n) }}", {"n": 10**8}),
    ("{{ '{:>{w}}'.format(1, w=n) }}", {"n": 10**8}),
    ("{{ '%*s' % (n, 'x') }}", {"n": 10**8}),
    ("{{ text|indent(n) }}", {"n": 10**8, "text": "a\nb"}),
    ("{{ sep.join(items) }}", {"sep": "x" * 1000, "items": ["a"] * 20000}),
]


@pytest.mark.parametrize(("source", "variables"), GROWING_BOMBS)
def test_every_way_of_growing_a_value_is_bounded_before_it_is_built(source: str, variables: dict) -> None:
    with pytest.raises(TemplateError, match="rendering limit"):
        render_text(source, variables, "case 'x'")


@pytest.mark.parametrize("source", ["{{ '%100000000s' % 'x' }}", "{{ '{:>100000000}'.format(1) }}",
                                    "{{ 'a' ~ ('b' * 2000000) }}"])
def test_constant_width_bombs_are_refused_at_load_or_render(source: str) -> None:
    with pytest.raises((SuiteError, TemplateError), match="rendering limit"):
        check_template(source, WHERE)
        render_text(source, {}, "case 'x'")


def test_growing_operations_of_ordinary_size_behave_as_before() -> None:
    source = ("{{ a ~ b }} {{ 'x' ~ 1 ~ none }} {{ [1, 2] + [3] }} {{ 'ab' + 'c' }} {{ '%05d' % 42 }} "
              "{{ '{:>5}'.format(1) }} {{ 'x'|center(5) }} {{ 'a b'|replace('a', 'z') }} {{ ', '.join(['a', 'b']) }} "
              "{{ 'a\nb'|indent(2) }}{% macro m(x) %}<{{ x }}>{% endmacro %} {{ m('y') ~ '!' }}")
    check_template(source, WHERE)
    assert render_text(source, {"a": "A", "b": 2}) == (
        "A2 x1None [1, 2, 3] abc 00042     1   x   z b a, b a\n  b <y>!")


@pytest.mark.parametrize(
    ("source", "names"),
    [
        ("plain text", ()),
        ("Hello {{ name }}!", ("name",)),
        ("{{ a }}{{ b }} and {{ a }}", ("a", "b", "a")),
        ("{{ name | upper }}", None),
        ("{{ user.name }}", None),
        ("{{ items[0] }}", None),
        ("{% if x %}{{ x }}{% endif %}", None),
        ("{{ x ~ y }}", None),
        ("{{ f() }}", None),
        ("{{ 'literal' }}", None),
        ("{{ unclosed", None),
    ],
)
def test_plain_names_recognises_only_bare_variable_templates(source: str, names: tuple[str, ...] | None) -> None:
    assert templating.plain_names(source) == names


def test_fits_plainly_never_skips_a_render_that_would_fail() -> None:
    source = "say {{ text }}"
    names = templating.plain_names(source)
    assert names == ("text",)
    assert templating.fits_plainly(source, names, {"text": "short"})
    assert not templating.fits_plainly(source, names, {})  # undefined: only a render says how
    for value in ([1, 2], {"k": "v"}, 10**30, "x" * (MAX_OUTPUT // 2)):
        assert not templating.fits_plainly(source, names, {"text": value})
    too_long = "x" * (MAX_OUTPUT + 1)
    assert not templating.fits_plainly(source, names, {"text": too_long})
    with pytest.raises(TemplateError, match="rendering limit"):
        templating.render_text(source, {"text": too_long})
    for value in (None, True, 1.5, float("nan"), 12345):
        assert templating.fits_plainly(source, names, {"text": value})
        assert len(templating.render_text(source, {"text": value})) < 40


@pytest.mark.parametrize(
    "source",
    [
        "{{ a }}",
        "say {{ a }} and {{ b }}!",
        "line one\r\nline two {{ a }}\r\n",
        "trailing newline {{ a }}\n",
        "{# a comment #}{{ a }}{# another #}",
        "{% raw %}{{ not a variable }}{% endraw %} {{ a }}",
        "  {{ a }}  \n\n  {{ b }}",
        "{{ a }}{{ a }}{{ a }}",
        "{{ range }}",  # a Jinja global: only Jinja knows what it prints
        "{{ a | upper }}",
    ],
)
@pytest.mark.parametrize(
    "variables",
    [
        {"a": "x", "b": "y"},
        {"a": "", "b": "ünïcødé ✓ {{ b }}"},
        {"a": 5, "b": "y"},
        {"a": None, "b": "y"},
        {"a": ["l"], "b": {"k": "v"}},
        {"range": "shadowed", "a": "x", "b": "y"},
    ],
)
def test_plain_templates_render_exactly_as_jinja_does(source: str, variables: dict[str, object]) -> None:
    try:
        expected: object = templating._bounded_render(templating._compiled(source), variables)
    except Exception as exc:  # noqa: BLE001 - the error type is what must match
        expected = type(exc)
    fast = templating._render_plainly(source, variables)
    if fast is not None:
        assert fast == expected
    try:
        got: object = render_text(source, variables)
    except TemplateError:
        got = "error"
    if not isinstance(expected, str):
        assert got == "error"
    else:
        assert got == expected


def test_text_variables_are_rendered_without_jinja() -> None:
    assert templating._render_plainly("say {{ a }}\r\n", {"a": "hi"}) == "say hi\n"
    assert templating._render_plainly("{{ a | upper }}", {"a": "hi"}) is None
    assert templating._render_plainly("{{ a }}", {"a": 1}) is None
    assert templating._render_plainly("{{ a }}", {"a": "x" * (MAX_OUTPUT + 1)}) is None
