"""Terminal output that fits 120 columns: tables without their intervals (``--wide`` keeps them), cells in
their short form (made by ``harness.report.format`` beside the full text), short headers, and prose wrapped.
Markdown, JSON and HTML are never narrowed."""

from __future__ import annotations

import dataclasses
import re
import textwrap

from harness.report.table import Cell, Table, render

WIDTH = 120
_INTERVAL = re.compile(r" \[[^\]]*\]")  # " [62.6, 95.3]", " [$0.0035, $0.0038]"
_RUN_SUFFIX = re.compile(r" \(run [ab]\)$")  # "smollm2 · v1 · T=0 (run a)" in `harness compare`
_HEADERS = {"baseline → candidate": "base → cand", "p one-sided (test)": "p", "tokens in/out": "tokens",
            "MDE 80% WARN/BLOCK": "MDE W/B", "cost/1k cases": "$/1k cases", "p50 latency": "p50",
            "p95 latency": "p95", "cost per 1k cases": "$/1k cases"}  # fmt: skip
_WIDE_ONLY = {"tokens/s"}  # a derived column: `--wide` shows it
# Headers shorter still, for a table too wide with the short ones (Flakiness or comparisons of long names).
_TIGHT = {"within-case sd": "within sd", "noise share": "noise", "p Holm": "Holm"}
_PROJECTION = re.compile(r"^SE (k=.+)$")  # "SE k=1  k=3  k=5": the projections' columns name SE once


def narrow_header(header: str) -> str:
    short = _INTERVAL.sub("", header)
    return _HEADERS.get(short, short)


def narrow_table(table: Table) -> Table:
    """The table without intervals and details (test names, token details, why an MDE is missing): what a
    person reads first; ``--wide`` shows the rest."""
    headers, rows = table

    # A metric column that says the same in every row is already in the heading above the table.
    drop = {i for i, h in enumerate(headers) if h == "metric" and len({row[i].text for row in rows}) <= 1}
    drop |= {i for i, h in enumerate(headers) if h in _WIDE_ONLY}
    # An error column that reads 0 in every row says nothing a person must see first; the status line counts them.
    drop |= {i for i, h in enumerate(headers) if h.startswith("errors") and rows
             and all(_INTERVAL.sub("", row[i].text) in ("0.0%", "0%") for row in rows)}
    if "baseline" in headers and "candidate" in headers:  # two runs of one variant: name the variant once
        b, c = headers.index("baseline"), headers.index("candidate")
        if all(_RUN_SUFFIX.sub("", row[b].text) == _RUN_SUFFIX.sub("", row[c].text) for row in rows):
            drop.add(b)
            rows = [[dataclasses.replace(x, text=_RUN_SUFFIX.sub("", x.text)) if i == c else x
                     for i, x in enumerate(row)] for row in rows]  # fmt: skip
            headers = [*headers[:c], "variant (run b vs run a)", *headers[c + 1:]]
    narrowed = [[Cell(_INTERVAL.sub("", c.text if c.short is None else c.short), c.tip, c.css)
                 for i, c in enumerate(row) if i not in drop] for row in rows]  # fmt: skip
    kept = [narrow_header(h) for i, h in enumerate(headers) if i not in drop]
    if max(map(len, render((kept, narrowed)).splitlines()), default=0) > WIDTH:
        kept = _tight(kept)
    return (kept, narrowed)


def _tight(headers: list[str]) -> list[str]:
    """Tighter headers: the table's footnote spells them out."""
    tight = [_TIGHT.get(h, h) for h in headers]
    return [_PROJECTION.sub(r"\1", h) if i and _PROJECTION.match(tight[i - 1]) else h for i, h in enumerate(tight)]


def wrap(text: str, indent: str = "") -> str:
    """Prose wrapped to the terminal width, continuation lines indented under the first."""
    lines = []
    for line in text.split("\n"):
        if len(line) <= WIDTH:
            lines.append(line)
            continue
        lead = line[: len(line) - len(line.lstrip())] or indent
        lines.append(textwrap.fill(line, WIDTH, subsequent_indent=lead + "  ", break_on_hyphens=False,
                                   break_long_words=False))  # fmt: skip
    return "\n".join(lines)
