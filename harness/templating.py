"""Sandboxed Jinja2 templating shared by prompts, grader options and judge templates.

Templates run in Jinja2's ``SandboxedEnvironment`` with ``StrictUndefined``: a missing variable is an error,
never an empty string, and a template cannot reach Python internals. Templates are also checked statically
at load time, so ``harness validate`` refuses a sandbox escape before anything runs.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import (
    UNSAFE_ASYNC_GENERATOR_ATTRIBUTES,
    UNSAFE_COROUTINE_ATTRIBUTES,
    UNSAFE_FUNCTION_ATTRIBUTES,
    UNSAFE_GENERATOR_ATTRIBUTES,
    UNSAFE_METHOD_ATTRIBUTES,
    SandboxedEnvironment,
    SecurityError,
)

from harness.errors import Location, SuiteError, TemplateError

# Globals that have been used to climb out of sandboxes (via their __init__.__globals__) and that no
# prompt needs; range, dict and namespace stay.
_UNSAFE_GLOBALS = ("cycler", "joiner", "lipsum")

# Attributes the sandbox refuses at render time on some object; refusing the names statically lets
# ``harness validate`` reject the template before any case reaches it.
_INTERNAL_ATTRIBUTES = frozenset().union(
    UNSAFE_FUNCTION_ATTRIBUTES, UNSAFE_METHOD_ATTRIBUTES, UNSAFE_GENERATOR_ATTRIBUTES,
    UNSAFE_COROUTINE_ATTRIBUTES, UNSAFE_ASYNC_GENERATOR_ATTRIBUTES,
)


def _make_env() -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
    )
    for name in _UNSAFE_GLOBALS:
        env.globals.pop(name, None)
    return env


ENV = _make_env()


def is_template(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


def check_template(source: str, location: Location) -> set[str]:
    """Parse a template and refuse what the sandbox would refuse; return the variables it needs.

    ``location.line`` is the line where the template text starts, so an error on the template's third line
    is reported on the file's line two below it.
    """

    def at(template_line: int | None) -> Location:
        if location.line is None or not template_line:
            return location
        return Location(location.file, location.line + template_line - 1, location.field)

    try:
        ast = ENV.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise SuiteError(at(exc.lineno), f"template syntax error: {exc.message}") from None
    for node in ast.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        name = _accessed_name(node)
        if name is not None and _is_internal(name):
            raise SuiteError(
                at(node.lineno), f"template refused by the sandbox: access to {name!r} is not allowed"
            )
    needed = meta.find_undeclared_variables(ast)
    removed = sorted(needed & set(_UNSAFE_GLOBALS))
    if removed:
        line = next((n.lineno for n in ast.find_all(nodes.Name) if n.name == removed[0]), None)
        raise SuiteError(
            at(line), f"template refused by the sandbox: {removed[0]!r} is not available in templates"
        )
    return {name for name in needed if name not in ENV.globals}


def _accessed_name(node: nodes.Node) -> Any:
    """The attribute a node reads when it is a constant: ``x.name``, ``x['name']``, ``x|attr('name')``."""
    if isinstance(node, nodes.Getattr):
        return node.attr
    if isinstance(node, nodes.Getitem):
        return node.arg.value if isinstance(node.arg, nodes.Const) else None
    if isinstance(node, nodes.Filter) and node.name == "attr" and node.args:
        first = node.args[0]
        return first.value if isinstance(first, nodes.Const) else None
    return None


def _is_internal(name: Any) -> bool:
    return isinstance(name, str) and (name.startswith("_") or name in _INTERNAL_ATTRIBUTES)


@functools.lru_cache(maxsize=4096)
def _compiled(source: str) -> jinja2.Template:
    return ENV.from_string(source)


def render_text(source: str, variables: Mapping[str, Any], where: str = "") -> str:
    """Render one template string. Plain strings are returned untouched (no Jinja cost)."""
    if not is_template(source):
        return source
    try:
        return _compiled(source).render(variables)
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"{where}: undefined template variable: {exc.message}") from None
    except SecurityError as exc:
        raise TemplateError(f"{where}: template refused by the sandbox: {exc}") from None
    except jinja2.TemplateError as exc:
        raise TemplateError(f"{where}: template error: {exc}") from None
