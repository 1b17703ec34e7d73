"""``ends_with``: the output ends with an expected string."""

from __future__ import annotations

from harness.grade.base import register
from harness.grade.starts_with import AffixGrader


@register
class EndsWith(AffixGrader):
    """The output ends with an expected string (or one of several).

    Args:
        value: the expected ending, or a list of accepted endings. Each may be a template,
            rendered against the case's variables at grade time.
        values: a list of accepted endings; an alternative to giving ``value`` a list.
        strip: ignore leading and trailing whitespace of the output (default true).
        case_sensitive: match letter case exactly (default true).
    """

    name = "ends_with"
    at_start = False
