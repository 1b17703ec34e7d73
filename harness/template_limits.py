"""Rendering limits for the template sandbox: values a template builds are bounded before they are built.

A template is data from a suite or a case file, rendered inside the harness's event loop: ``7**(10**8)`` held
it for minutes and ``'x'*10**8`` allocated 100 MB. Every operation that can grow a value faster than the
template text itself is checked against a limit first — ``**`` and ``*`` on integers, repetition, ``+`` and
``~`` joins, ``%`` and ``str.format`` widths, and the growing string methods and filters — and the rendered
output is capped as it streams (``harness.templating``). The limits sit far above any real prompt (a 1M-token
context is about 4 MB of text).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable
from typing import Any

from jinja2 import pass_eval_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.filters import do_center, do_indent, do_replace
from jinja2.nodes import Concat, EvalContext
from jinja2.sandbox import SecurityError

MAX_INT_BITS = 10_000  # an integer result of ** or * (~3,000 digits)
MAX_REPEAT = 1_000_000  # characters or items built by repeating a string or list with *
MAX_OUTPUT = 16 * 1024 * 1024  # characters of rendered text, and of any one string a template builds

OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "**": operator.pow, "*": operator.mul, "+": operator.add, "%": operator.mod,
}
# A width in a %-format or a format spec: "%100000000s", "{:>100000000}", "%*d".
_PERCENT_WIDTH = re.compile(r"%[-#0 +]*(\*|\d+)")
_FORMAT_WIDTH = re.compile(r"\{[^{}]*?:[^{}]*?(\d+)")
# str methods whose result grows with an integer argument or a replacement.
_GROWING_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs", "format", "format_map",
                              "replace", "join"})


class TemplateLimit(SecurityError):
    """A template tried to build a value past the rendering limits."""


def _sized(value: Any) -> bool:
    return isinstance(value, str | list | tuple)


def _too_wide(widths: Iterable[str], star_args: Iterable[Any] = ()) -> bool:
    numbers = [int(w) for w in widths if w.isdigit()]
    numbers += [a for a in star_args if isinstance(a, int) and not isinstance(a, bool)]
    return any(n > MAX_OUTPUT for n in numbers)


def check_binop(op: str, left: Any, right: Any) -> None:
    """Refuse ``left op right`` before computing it when the result would be too large."""
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (left, right))
    if op == "**" and ints and right > 0 and abs(left) > 1:
        if right * math.log2(abs(left)) > MAX_INT_BITS:
            raise TemplateLimit(f"{left} ** {right} is too large (limit {MAX_INT_BITS:,} bits)")
    elif op == "*" and ints:
        if left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise TemplateLimit(f"a product of {MAX_INT_BITS:,}+ bits is too large")
    elif op == "*":
        sized, count = (left, right) if _sized(left) else (right, left)
        if _sized(sized) and isinstance(count, int) and len(sized) * count > MAX_REPEAT:
            raise TemplateLimit(f"repeating {type(sized).__name__} of length {len(sized)} {count:,} times is too "
                                f"large (limit {MAX_REPEAT:,})")
    elif op == "+" and _sized(left) and _sized(right) and len(left) + len(right) > MAX_OUTPUT:
        raise TemplateLimit(f"joining values into {len(left) + len(right):,} items passes {MAX_OUTPUT:,}")
    elif op == "%" and isinstance(left, str):
        args = right if isinstance(right, tuple) else (right,)
        if _too_wide(_PERCENT_WIDTH.findall(left), args if "*" in left else ()):
            raise TemplateLimit(f"a %-format width passes {MAX_OUTPUT:,} characters")


def check_str_call(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse a call of a growing ``str`` method whose result would pass ``MAX_OUTPUT``."""
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    if not isinstance(owner, str) or name not in _GROWING_METHODS:
        return
    values = [*args, *kwargs.values()]
    if name == "replace" and len(args) >= 2:
        _check_replace(owner, args[0], args[1], args[2] if len(args) > 2 else None)
    elif name == "join":
        items = list(args[0]) if args else []
        if sum(len(str(i)) for i in items) + len(owner) * max(len(items) - 1, 0) > MAX_OUTPUT:
            raise TemplateLimit(f"joining builds more than {MAX_OUTPUT:,} characters")
    elif name in ("format", "format_map") and _too_wide(_FORMAT_WIDTH.findall(owner), values):
        raise TemplateLimit(f"a format width passes {MAX_OUTPUT:,} characters")
    elif name == "expandtabs" and values and isinstance(values[0], int) and values[0] * owner.count("\t") > MAX_OUTPUT:
        raise TemplateLimit(f"expanding tabs builds more than {MAX_OUTPUT:,} characters")
    elif _too_wide((), values[:1]):
        raise TemplateLimit(f"{name}() to more than {MAX_OUTPUT:,} characters")


def _check_replace(text: Any, old: Any, new: Any, count: Any) -> None:
    text, old, new = str(text), str(old), str(new)
    hits = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    if len(text) + hits * (len(new) - len(old)) > MAX_OUTPUT:
        raise TemplateLimit(f"replace() builds more than {MAX_OUTPUT:,} characters")


@pass_eval_context
def bounded_replace(eval_ctx: EvalContext, s: Any, old: Any, new: Any, count: int | None = None) -> Any:
    _check_replace(s, old, new, count)
    return do_replace(eval_ctx, s, old, new, count)


def bounded_center(value: Any, width: int = 80) -> str:
    if _too_wide((), (width,)):
        raise TemplateLimit(f"center() to more than {MAX_OUTPUT:,} characters")
    return do_center(value, width)


def bounded_indent(s: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    lines = str(s).count("\n") + 1
    size = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    if len(str(s)) + lines * size > MAX_OUTPUT:
        raise TemplateLimit(f"indent() builds more than {MAX_OUTPUT:,} characters")
    return do_indent(s, width, first, blank)


BOUNDED_FILTERS: dict[str, Callable[..., Any]] = {
    "replace": bounded_replace, "center": bounded_center, "indent": bounded_indent,
}


def bounded_join(parts: Iterable[Any]) -> str:
    """``a ~ b ~ c``: joined only when the result stays under ``MAX_OUTPUT`` (doubling a string in a loop
    with ``~`` would otherwise reach gigabytes before any output is written)."""
    texts = [str(part) for part in parts]
    if sum(map(len, texts)) > MAX_OUTPUT:
        raise TemplateLimit(f"joining with ~ builds more than {MAX_OUTPUT:,} characters")
    return "".join(texts)


class BoundedCodeGenerator(CodeGenerator):
    """Compiles ``~`` to :func:`bounded_join` (reached through the template's ``environment``)."""

    def visit_Concat(self, node: Concat, frame: Frame) -> None:
        # No constant folding here: a constant join is small, and folding would bypass the limit.
        self.write("environment.bounded_join((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")
