"""A word-level diff of two outputs, as segments the page renders with ``<del>``/``<ins>`` (as text only)."""

from __future__ import annotations

import difflib
import re

# Words, runs of whitespace and single punctuation marks: whitespace is kept so the text reads as written.
_TOKENS = re.compile(r"\w+|\s+|[^\w\s]", re.UNICODE)
MAX_TOKENS = 1500  # SequenceMatcher is quadratic at worst: longer outputs are diffed on their first tokens


def word_diff(a: str, b: str) -> list[list[str]]:
    """``[[op, text], ...]`` with op ``=`` (both), ``-`` (only in a) or ``+`` (only in b)."""
    ta, tb = _TOKENS.findall(a), _TOKENS.findall(b)
    rest_a, rest_b = "".join(ta[MAX_TOKENS:]), "".join(tb[MAX_TOKENS:])
    ta, tb = ta[:MAX_TOKENS], tb[:MAX_TOKENS]
    segments: list[list[str]] = []

    def add(op: str, text: str) -> None:
        if not text:
            return
        if segments and segments[-1][0] == op:
            segments[-1][1] += text
        else:
            segments.append([op, text])

    matcher = difflib.SequenceMatcher(None, ta, tb, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            add("=", "".join(ta[i1:i2]))
        else:
            add("-", "".join(ta[i1:i2]))
            add("+", "".join(tb[j1:j2]))
    if rest_a == rest_b:
        add("=", rest_a)
    else:
        add("-", rest_a)
        add("+", rest_b)
    return segments
