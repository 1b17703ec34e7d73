"""``not_contains``: the output contains none of the forbidden substrings."""

from __future__ import annotations

from harness.grade._common import NeedleGrader, clip, quoted_list
from harness.grade.base import Grade, Output, register


@register
class NotContains(NeedleGrader):
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
        self._needle_options(value, values, case_sensitive)

    def check(self, needles: list[str], haystack: str, output: Output) -> Grade:
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
