"""``not_contains``: the output contains none of the forbidden substrings."""

from __future__ import annotations

from harness.grade._common import RenderFailed, clip, expected_strings, opt_bool, quoted_list, render_needles
from harness.grade.base import Grade, GradeContext, Grader, Output, register


@register
class NotContains(Grader):
    """The output contains none of the given substrings.

    Args:
        value: a forbidden substring, or a list of them. Each may be a template, rendered against the
            case's variables at grade time.
        values: a list of forbidden substrings; an alternative to giving ``value`` a list.
        case_sensitive: match letter case exactly (default true).
    """

    name = "not_contains"

    def __init__(
        self,
        *,
        value: str | list[str] | None = None,
        values: list[str] | None = None,
        case_sensitive: bool = True,
    ) -> None:
        self.needles = expected_strings(value, values)
        self.case_sensitive = opt_bool("case_sensitive", case_sensitive)

    def grade(self, output: Output, ctx: GradeContext) -> Grade:
        try:
            needles = render_needles(ctx, self.needles, self.case_sensitive)
        except RenderFailed as exc:
            return Grade.undecided(str(exc))
        haystack = output.text if self.case_sensitive else output.text.casefold()
        hits = [(haystack.find(needle), needle) for needle in needles if needle in haystack]
        if not hits:
            return Grade.ok(f"none of {quoted_list(needles)} found")
        at, needle = min(hits)
        more = f" (+{len(hits) - 1} more forbidden)" if len(hits) > 1 else ""
        return Grade.fail(
            f"found forbidden {clip(needle, 40)} at char {at}: {clip(haystack, 60, around=at)}{more}"
        )

    def describe(self) -> str:
        return f"not_contains {quoted_list(self.needles)}"
