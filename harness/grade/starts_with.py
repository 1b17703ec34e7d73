"""``starts_with``: the output begins with an expected string (``ends_with`` reuses the machinery)."""

from __future__ import annotations

from typing import ClassVar

from harness.grade._common import RenderFailed, clip, expected_strings, opt_bool, quoted_list, render_needles
from harness.grade.base import Grade, GradeContext, Grader, Output, register


class AffixGrader(Grader):
    """Shared by ``starts_with`` and ``ends_with``; not registered itself."""

    at_start: ClassVar[bool]

    def __init__(
        self,
        *,
        value: str | list[str] | None = None,
        values: list[str] | None = None,
        strip: bool = True,
        case_sensitive: bool = True,
    ) -> None:
        self.affixes = expected_strings(value, values)
        self.strip = opt_bool("strip", strip)
        self.case_sensitive = opt_bool("case_sensitive", case_sensitive)

    def grade(self, output: Output, ctx: GradeContext) -> Grade:
        try:
            affixes = render_needles(ctx, self.affixes, self.case_sensitive)
        except RenderFailed as exc:
            return Grade.undecided(str(exc))
        text = output.text.strip() if self.strip else output.text
        if not self.case_sensitive:
            text = text.casefold()
        where = "start" if self.at_start else "end"
        for affix in affixes:
            if text.startswith(affix) if self.at_start else text.endswith(affix):
                return Grade.ok(f"{where}s with {clip(affix, 40)}")
        wanted = clip(affixes[0], 40) if len(affixes) == 1 else f"one of {quoted_list(affixes)}"
        # Show as much of the output's edge as the longest expectation, plus a little context.
        width = max(len(affix) for affix in affixes) + 20
        edge = text[:width] if self.at_start else text[-width:]
        return Grade.fail(f"expected to {where} with {wanted}; output {where}s with {clip(edge, width)}")

    def describe(self) -> str:
        return f"{self.name} {quoted_list(self.affixes)}"


@register
class StartsWith(AffixGrader):
    """The output begins with an expected string (or one of several).

    Args:
        value: the expected beginning, or a list of accepted beginnings. Each may be a template,
            rendered against the case's variables at grade time.
        values: a list of accepted beginnings; an alternative to giving ``value`` a list.
        strip: ignore leading and trailing whitespace of the output (default true).
        case_sensitive: match letter case exactly (default true).
    """

    name = "starts_with"
    at_start = True
