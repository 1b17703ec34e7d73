"""Sandboxed Jinja2 templating shared by prompts, grader options and judge templates.

Templates run in Jinja2's ``SandboxedEnvironment`` with ``StrictUndefined``: a missing variable is an error,
never an empty string, and a template cannot reach Python internals. Templates are also checked statically
at load time, so ``harness validate`` refuses a sandbox escape before anything runs.

Rendering is bounded too (``harness.template_limits``): operations that grow values refuse results past a
size (``7**(10**8)`` would hold the event loop for minutes, ``'x'*10**8`` allocate 100 MB), the rendered text
has a size cap, and runaway macro recursion is caught. Templates cannot load other templates (no
``include``/``import``/``extends``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
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
from harness.template_limits import (
    BOUNDED_FILTERS,
    MAX_OUTPUT,
    OPERATORS,
    BoundedCodeGenerator,
    TemplateLimit,
    bounded_join,
    check_binop,
    check_str_call,
)

# Globals that have been used to climb out of sandboxes (via their __init__.__globals__) and that no
# prompt needs; range, dict and namespace stay.
_UNSAFE_GLOBALS = ("cycler", "joiner", "lipsum")

# Attributes the sandbox refuses at render time on some object; refusing the names statically lets
# ``harness validate`` reject the template before any case reaches it.
_INTERNAL_ATTRIBUTES = frozenset().union(
    UNSAFE_FUNCTION_ATTRIBUTES, UNSAFE_METHOD_ATTRIBUTES, UNSAFE_GENERATOR_ATTRIBUTES,
    UNSAFE_COROUTINE_ATTRIBUTES, UNSAFE_ASYNC_GENERATOR_ATTRIBUTES,
)


# Filters that read an attribute named by a string argument: (positional index of that argument, or None).
_ATTRIBUTE_FILTERS: dict[str, int | None] = {
    "map": None, "selectattr": 0, "rejectattr": 0, "groupby": 0, "sum": 0, "sort": 2, "unique": 1,
    "min": 1, "max": 1,
}
# Tags that load other templates; prompts are self-contained (and the environment has no loader).
_LOADING_TAGS = {nodes.Include: "include", nodes.Import: "import", nodes.FromImport: "from ... import",
                 nodes.Extends: "extends"}


class _BoundedSandbox(SandboxedEnvironment):
    """The sandbox with the rendering limits of ``harness.template_limits`` applied."""

    # Intercepting an operator also keeps Jinja from folding it at compile time, where no check would run.
    intercepted_binops = frozenset(OPERATORS)
    code_generator_class = BoundedCodeGenerator
    bounded_join = staticmethod(bounded_join)  # what `~` compiles to

    def call_binop(self, context: Any, op: str, left: Any, right: Any) -> Any:
        check_binop(op, left, right)
        return OPERATORS[op](left, right)

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        check_str_call(obj, args, kwargs)
        return super().call(context, obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        # The sandbox hands templates its own wrapper for str.format; the width check goes around it.
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None

        def checked(*args: Any, **kwargs: Any) -> str:
            check_str_call(value, args, kwargs)
            return wrapped(*args, **kwargs)

        return checked

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        # The sandbox's default is an Undefined that prints as nothing (or "[Undefined]" inside a list, as
        # `map(attribute='__class__')` showed): an escape attempt must fail loudly instead.
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe")


def _make_env() -> SandboxedEnvironment:
    env = _BoundedSandbox(
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
    )
    for name in _UNSAFE_GLOBALS:
        env.globals.pop(name, None)
    env.filters.update(BOUNDED_FILTERS)
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
        _check_nodes(ast, at)
        needed = meta.find_undeclared_variables(ast)
    except jinja2.TemplateSyntaxError as exc:
        raise SuiteError(at(exc.lineno), f"template syntax error: {exc.message}") from None
    except RecursionError:
        raise SuiteError(location, "template nested too deeply") from None
    removed = sorted(needed & set(_UNSAFE_GLOBALS))
    if removed:
        line = next((n.lineno for n in ast.find_all(nodes.Name) if n.name == removed[0]), None)
        raise SuiteError(
            at(line), f"template refused by the sandbox: {removed[0]!r} is not available in templates"
        )
    return {name for name in needed if name not in ENV.globals}


def _check_nodes(ast: nodes.Template, at: Callable[[int | None], Location]) -> None:
    """Refuse statically what rendering would refuse: internals by name, loading tags, constant bombs."""
    for node in ast.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        for name in _accessed_names(node):
            if _is_internal(name):
                raise SuiteError(
                    at(node.lineno), f"template refused by the sandbox: access to {name!r} is not allowed"
                )
    for tag_node in ast.find_all(tuple(_LOADING_TAGS)):
        raise SuiteError(at(tag_node.lineno), f"template refused: {{% {_LOADING_TAGS[type(tag_node)]} %}} is not "
                         "supported; a prompt cannot load other templates (put the text in the prompt or a var)")
    for expr in ast.find_all(nodes.BinExpr):
        try:
            _static_value(expr)
        except TemplateLimit as exc:
            raise SuiteError(at(expr.lineno), f"template exceeds a rendering limit: {exc}") from None
        except _NotConstant:
            continue


class _NotConstant(Exception):
    pass


def _static_value(node: nodes.Node) -> Any:
    """The value of a constant expression, computed under the rendering limits."""
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, nodes.List | nodes.Tuple):
        return [_static_value(item) for item in node.items]
    if isinstance(node, nodes.Neg):
        return -_static_value(node.node)
    if isinstance(node, nodes.BinExpr):
        left, right = _static_value(node.left), _static_value(node.right)
        check_binop(node.operator, left, right)
        try:
            return ENV.binop_table[node.operator](left, right)
        except (TypeError, ValueError, ArithmeticError):
            raise _NotConstant from None
    raise _NotConstant


def _accessed_names(node: nodes.Node) -> list[Any]:
    """The attributes a node reads by constant name: ``x.name``, ``x['name']``, ``x|attr('name')`` and the
    attribute arguments of filters such as ``map(attribute='a.b')`` or ``selectattr('name')``."""
    if isinstance(node, nodes.Getattr):
        return [node.attr]
    if isinstance(node, nodes.Getitem):
        return [node.arg.value] if isinstance(node.arg, nodes.Const) else []
    if not isinstance(node, nodes.Filter):
        return []
    consts = [arg.value if isinstance(arg, nodes.Const) else None for arg in node.args]
    if node.name == "attr":
        return consts[:1]
    if node.name not in _ATTRIBUTE_FILTERS:
        return []
    named = [kw.value.value for kw in node.kwargs if kw.key == "attribute" and isinstance(kw.value, nodes.Const)]
    index = _ATTRIBUTE_FILTERS[node.name]
    if node.name == "map" and consts[:1] == ["attr"]:
        index = 1  # map('attr', 'name') applies the attr filter to each item
    if index is not None and len(consts) > index:
        named.append(consts[index])
    # An attribute path like 'a.__class__' or 'a.0' is read part by part.
    return [part for name in named if isinstance(name, str) for part in name.split(".")]


def _is_internal(name: Any) -> bool:
    return isinstance(name, str) and (name.startswith("_") or name in _INTERNAL_ATTRIBUTES)


@functools.lru_cache(maxsize=4096)
def _compiled(source: str) -> jinja2.Template:
    return ENV.from_string(source)


def render_text(source: str, variables: Mapping[str, Any], where: str = "") -> str:
    """Render one template string. Plain strings are returned untouched (no Jinja cost)."""
    if not is_template(source):
        return source
    plainly = _render_plainly(source, variables)
    if plainly is not None:
        return plainly
    try:
        return _bounded_render(_compiled(source), variables)
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"{where}: undefined template variable: {exc.message}") from None
    except TemplateLimit as exc:
        raise TemplateError(f"{where}: template exceeds a rendering limit: {exc}") from None
    except SecurityError as exc:
        raise TemplateError(f"{where}: template refused by the sandbox: {exc}") from None
    except jinja2.TemplateError as exc:
        raise TemplateError(f"{where}: template error: {exc}") from None
    except RecursionError:
        raise TemplateError(f"{where}: template error: recursion too deep (a macro that calls itself without "
                            "end?)") from None
    except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
        # Python errors from template expressions (1/0, int('x'), a wrong loader tag): still the template's.
        raise TemplateError(f"{where}: template error: {type(exc).__name__}: {exc}") from None


@functools.lru_cache(maxsize=4096)
def _plain_parts(source: str) -> tuple[tuple[bool, str], ...] | None:
    """A template that only prints variables (``Hello {{ name }}``: text and bare names, no filter,
    attribute, test, call or statement) as its parts in order: (False, text as Jinja outputs it) or
    (True, a variable's name). None for any other template."""
    try:
        body = ENV.parse(source).body
    except jinja2.TemplateError:
        return None
    parts: list[tuple[bool, str]] = []
    for node in body:
        if not isinstance(node, nodes.Output):
            return None
        for child in node.nodes:
            if isinstance(child, nodes.Name) and child.ctx == "load":
                parts.append((True, child.name))
            elif isinstance(child, nodes.TemplateData):
                parts.append((False, child.data))
            else:
                return None
    return tuple(parts)


def plain_names(source: str) -> tuple[str, ...] | None:
    """The variables of a template that only prints variables, or None for any other template.

    Rendering such a template can fail in two ways only: a variable is undefined, or the text passes the
    output limit. Checking a case against it needs no rendering (see ``fits_plainly``).
    """
    if not is_template(source):
        return ()
    parts = _plain_parts(source)
    return None if parts is None else tuple(text for is_name, text in parts if is_name)


def _render_plainly(source: str, variables: Mapping[str, Any]) -> str | None:
    """What Jinja renders for a template that only prints text variables, without Jinja (whose context per
    render was most of the cost); None whenever Jinja has to decide (any other template, a value that is not
    text, a name that is not a variable, an output near the limit)."""
    parts = _plain_parts(source)
    if parts is None:
        return None
    out = []
    size = 0
    for is_name, text in parts:
        if is_name:
            text = variables.get(text)
            if type(text) is not str:
                return None
        size += len(text)
        out.append(text)
    return "".join(out) if size <= MAX_OUTPUT else None


def fits_plainly(source: str, names: tuple[str, ...], variables: Mapping[str, Any]) -> bool:
    """Whether a ``plain_names`` template surely renders with ``variables``: every name is defined and the
    text stays far below the output limit (near it, only a real render can tell)."""
    size = len(source)
    for name in names:
        if name not in variables:
            return False
        value = variables[name]
        if isinstance(value, str):
            size += len(value)
        elif value is None or isinstance(value, bool | float) or (isinstance(value, int) and abs(value) < 10**18):
            size += 32  # at most this long as text
        else:
            return False  # a list, a mapping, a huge number: render it
    return size < MAX_OUTPUT // 2


def _bounded_render(template: jinja2.Template, variables: Mapping[str, Any]) -> str:
    """``template.render`` with the output size capped as it is produced."""
    chunks: list[str] = []
    size = 0
    for chunk in template.generate(variables):
        size += len(chunk)
        if size > MAX_OUTPUT:
            raise TemplateLimit(f"the rendered text passes {MAX_OUTPUT:,} characters")
        chunks.append(chunk)
    return "".join(chunks)
