"""``starts_with``: the output begins with an expected string (``ends_with`` reuses the machinery)."""

from __future__ import annotations

from typing import ClassVar

from harness.grade._common import NeedleGrader, clip, opt_bool, quoted_list
from harness.grade.base import Grade, Output, register


class AffixGrader(NeedleGrader):
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
        self._needle_options(value, values, case_sensitive)
        self.strip = opt_bool("strip", strip)

    def haystack(self, text: str) -> str:
        return super().haystack(text.strip() if self.strip else text)

    def check(self, needles: list[str], haystack: str, output: Output) -> Grade:
        where = "start" if self.at_start else "end"
        for affix in needles:
            if haystack.startswith(affix) if self.at_start else haystack.endswith(affix):
                return Grade.ok(f"{where}s with {clip(affix, 40)}")
        wanted = clip(needles[0], 40) if len(needles) == 1 else f"one of {quoted_list(needles)}"
        # Show as much of the output's edge as the longest expectation, plus a little context.
        width = max(len(affix) for affix in needles) + 20
        edge = haystack[:width] if self.at_start else haystack[-width:]
        return Grade.fail(f"expected to {where} with {wanted}; output {where}s with {clip(edge, width)}")

    def describe(self) -> str:
        return f"{self.name} {quoted_list(self.needles)}"


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
