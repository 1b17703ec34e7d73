"""``exact``: the output equals an expected string, after optional normalisation."""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import replace

from harness.grade._common import RenderFailed, clip, expected_strings, opt_bool, quoted_list, render
from harness.grade.base import Grade, GradeContext, Grader, Output, register


@register
class Exact(Grader):
    """The output equals an expected string (or one of several) after optional normalisation.

    Normalisation applies to both sides, in this order: ``unicode``, ``strip_punctuation``,
    ``collapse_whitespace``, ``strip``, then ``case_sensitive``.

    Args:
        value: the expected string, or a list of accepted strings. May be a template
            (``"{{ expected }}"``), rendered against the case's variables at grade time.
        values: a list of accepted strings; an alternative to giving ``value`` a list.
        strip: ignore leading and trailing whitespace (default true).
        case_sensitive: compare letter case exactly (default true); false compares casefolded text.
        collapse_whitespace: treat every run of whitespace, newlines included, as one space (default false).
        unicode: apply Unicode NFKC normalisation, so compatibility forms such as full-width letters,
            ligatures and non-breaking spaces equal their plain forms (default false).
        strip_punctuation: ignore punctuation characters (Unicode category P*), e.g. a trailing full stop
            (default false).
    """

    name = "exact"

    def __init__(
        self,
        *,
        value: str | list[str] | None = None,
        values: list[str] | None = None,
        strip: bool = True,
        case_sensitive: bool = True,
        collapse_whitespace: bool = False,
        unicode: bool = False,
        strip_punctuation: bool = False,
    ) -> None:
        # An empty expected output is a legitimate check ("say nothing"), unlike an empty substring.
        self.expected = expected_strings(value, values, allow_empty=True)
        self.strip = opt_bool("strip", strip)
        self.case_sensitive = opt_bool("case_sensitive", case_sensitive)
        self.collapse_whitespace = opt_bool("collapse_whitespace", collapse_whitespace)
        self.unicode = opt_bool("unicode", unicode)
        self.strip_punctuation = opt_bool("strip_punctuation", strip_punctuation)

    def normalise(self, text: str) -> str:
        if self.unicode:
            text = unicodedata.normalize("NFKC", text)
        if self.strip_punctuation:
            text = "".join(ch for ch in text if not unicodedata.category(ch).startswith("P"))
        if self.collapse_whitespace:
            text = re.sub(r"\s+", " ", text)
        if self.strip:
            text = text.strip()
        if not self.case_sensitive:
            text = text.casefold()
        return text

    def _note(self) -> str:
        # The reason shows normalised text; say so when it may not look like the raw output.
        applied = [
            label
            for label, on in (
                ("NFKC", self.unicode),
                ("punctuation removed", self.strip_punctuation),
                ("whitespace collapsed", self.collapse_whitespace),
                ("casefolded", not self.case_sensitive),
            )
            if on
        ]
        return f" (compared {', '.join(applied)})" if applied else ""

    def grade(self, output: Output, ctx: GradeContext) -> Grade:
        try:
            expected = [self.normalise(render(ctx, item, "value")) for item in self.expected]
        except RenderFailed as exc:
            return Grade.undecided(str(exc))
        got = self.normalise(output.text)
        # The normalised output is the answer majority votes over several choices count (docs: n choices).
        answer = {"answer": got}
        if got in expected:
            return replace(Grade.ok(f"equals {clip(got)}"), details=answer)
        if len(expected) == 1:
            at = len(os.path.commonprefix([expected[0], got]))
            return replace(Grade.fail(
                f"expected {clip(expected[0], around=at)}, got {clip(got, around=at)}; "
                f"first difference at char {at}{self._note()}"
            ), details=answer)
        return replace(Grade.fail(f"expected one of {quoted_list(expected)}, got {clip(got)}{self._note()}"),
                       details=answer)

    def describe(self) -> str:
        return f"exact {quoted_list(self.expected)}"
