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
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from harness.errors import Location, SuiteError, TemplateError

# Globals that have been used to climb out of sandboxes (via their __init__.__globals__) and that no
# prompt needs; range, dict and namespace stay.
_UNSAFE_GLOBALS = ("cycler", "joiner", "lipsum")


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
    """Parse a template and refuse what the sandbox would refuse; return the variables it needs."""
    try:
        ast = ENV.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        line = location.line + exc.lineno - 1 if location.line is not None and exc.lineno else location.line
        raise SuiteError(
            Location(location.file, line, location.field), f"template syntax error: {exc.message}"
        ) from None
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        attr = node.attr if isinstance(node, nodes.Getattr) else _const_key(node)
        if isinstance(attr, str) and attr.startswith("_"):
            raise SuiteError(
                location, f"template refused by the sandbox: access to {attr!r} is not allowed"
            )
    needed = meta.find_undeclared_variables(ast)
    return {name for name in needed if name not in ENV.globals}


def _const_key(node: nodes.Getitem) -> Any:
    return node.arg.value if isinstance(node.arg, nodes.Const) else None


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
