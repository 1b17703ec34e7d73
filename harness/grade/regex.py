"""``regex``: the output matches (or must not match) a regular expression."""

from __future__ import annotations

import re

from harness.grade._common import (
    RenderFailed,
    clip,
    clip_plain,
    is_template,
    opt_bool,
    opt_choice,
    opt_str,
    render,
)
from harness.grade.base import Grade, GradeContext, Grader, GraderConfigError, Output, register

FLAGS = {
    "IGNORECASE": re.IGNORECASE,
    "MULTILINE": re.MULTILINE,
    "DOTALL": re.DOTALL,
    "VERBOSE": re.VERBOSE,
    "ASCII": re.ASCII,
}
# Python's own one-letter names (re.I, re.M, re.S, re.X, re.A), as in (?ims) and most regex tools.
SHORT_FLAGS = {"I": re.IGNORECASE, "M": re.MULTILINE, "S": re.DOTALL, "X": re.VERBOSE, "A": re.ASCII}
MODES = ("search", "match", "fullmatch")
_FAILED_MODE = {
    "search": "contains no match for",
    "match": "does not start with a match for",
    "fullmatch": "does not fully match",
}


def _flags(value: str | list[str] | None) -> re.RegexFlag:
    names = [] if value is None else [value] if isinstance(value, str) else value
    if not isinstance(names, list):
        raise GraderConfigError("flags", f"flags must be a list of flag names, got {type(value).__name__}")
    combined = re.RegexFlag(0)
    for name in names:
        flag = FLAGS.get(name.upper()) if isinstance(name, str) else None
        if flag is None and isinstance(name, str) and name and all(c in SHORT_FLAGS for c in name.upper()):
            for letter in name.upper():  # "i", or several at once: "im"
                combined |= SHORT_FLAGS[letter]
            continue
        if flag is None:
            raise GraderConfigError("flags", f"unknown regex flag {name!r}; known flags: {', '.join(FLAGS)} "
                                             f"or their letters {', '.join(k.lower() for k in SHORT_FLAGS)}")
        combined |= flag
    return combined


def _compile(pattern: str, flags: re.RegexFlag) -> re.Pattern[str]:
    try:
        return re.compile(pattern, flags)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {clip_plain(pattern, 60)!r}: {exc}") from exc


@register
class Regex(Grader):
    """The output matches a regular expression (Python ``re`` syntax), or must not match it.

    Args:
        pattern: the regular expression. A pattern without template markers is compiled when the suite
            loads, so a bad one fails early. A templated pattern (``"{{ order_id }}-\\d+"``) is rendered
            per case and compiled then; variable values are inserted as regex text, not escaped.
        mode: ``search`` (default) finds the pattern anywhere; ``match`` anchors it at the start;
            ``fullmatch`` requires the whole output to match (the output is not stripped).
        flags: a list of flag names: ``IGNORECASE``, ``MULTILINE``, ``DOTALL``, ``VERBOSE``, ``ASCII``, or
            their letters ``i``, ``m``, ``s``, ``x``, ``a`` (``"im"`` for two at once); case does not matter.
        must_match: true (default) passes on a match; false passes only when there is no match.
    """

    name = "regex"

    def __init__(
        self,
        *,
        pattern: str | None = None,
        mode: str = "search",
        flags: str | list[str] | None = None,
        must_match: bool = True,
    ) -> None:
        self.pattern = opt_str("pattern", pattern)
        self.mode = opt_choice("mode", mode, MODES)
        self.flags = _flags(flags)
        self.must_match = opt_bool("must_match", must_match)
        self.compiled: re.Pattern[str] | None = None
        if not is_template(self.pattern):
            try:
                self.compiled = _compile(self.pattern, self.flags)
            except ValueError as exc:
                raise GraderConfigError("pattern", str(exc)) from exc

    def grade(self, output: Output, ctx: GradeContext) -> Grade:
        compiled = self.compiled
        if compiled is None:
            try:
                compiled = _compile(render(ctx, self.pattern, "pattern"), self.flags)
            except (RenderFailed, ValueError) as exc:
                return Grade.undecided(str(exc))
        found = getattr(compiled, self.mode)(output.text)
        shown = f"/{clip_plain(compiled.pattern, 60)}/"
        if found is None:
            if self.must_match:
                return Grade.fail(f"output {clip(output.text)} {_FAILED_MODE[self.mode]} {shown}")
            return Grade.ok(f"no match for {shown}, as required")
        what = f"{clip(found.group(0), 40)} at char {found.start()}"
        if self.must_match:
            return Grade.ok(f"matched {what}")
        return Grade.fail(f"matched {shown}, which must not match: {what}")

    def describe(self) -> str:
        negated = "" if self.must_match else "not "
        return f"regex {negated}{self.mode} /{clip_plain(self.pattern, 40)}/"
