"""``contains``: the output contains one or more expected substrings."""

from __future__ import annotations

from harness.grade._common import NeedleGrader, clip, opt_choice, quoted_list
from harness.grade.base import Grade, Output, register


@register
class Contains(NeedleGrader):
    """The output contains an expected substring, or all (or any) of several.

    Args:
        value: the substring to look for, or a list of substrings. Each may be a template
            (``"{{ city }}"``), rendered against the case's variables at grade time.
        values: a list of substrings; an alternative to giving ``value`` a list.
        match: with several substrings, ``all`` (default) requires every one and scores the fraction
            found; ``any`` requires at least one.
        case_sensitive: match letter case exactly (default true).
    """

    name = "contains"

    def __init__(
        self,
        *,
        value: str | list[str] | None = None,
        values: list[str] | None = None,
        match: str = "all",
        case_sensitive: bool = True,
    ) -> None:
        self._needle_options(value, values, case_sensitive)
        self.match = opt_choice("match", match, ("all", "any"))

    def check(self, needles: list[str], haystack: str, output: Output) -> Grade:
        found = [needle for needle in needles if needle in haystack]
        missing = [needle for needle in needles if needle not in haystack]
        if self.match == "any":
            if found:
                return Grade.ok(f"found {clip(found[0], 40)}")
            return Grade.fail(f"none of {quoted_list(needles)} in output {clip(output.text)}")
        if not missing:
            return Grade.ok(f"found {quoted_list(needles)}")
        return Grade.fail(
            f"missing {quoted_list(missing)} ({len(found)}/{len(needles)} found) "
            f"in output {clip(output.text)}",
            score=len(found) / len(needles),
        )

    def describe(self) -> str:
        mode = f"{self.match} of " if len(self.needles) > 1 else ""
        return f"contains {mode}{quoted_list(self.needles)}"
