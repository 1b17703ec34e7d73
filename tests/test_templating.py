"""Sandboxed templates: escapes are refused at load time where visible, at render time otherwise."""

from __future__ import annotations

import pytest

from harness.errors import Location, SuiteError, TemplateError
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
