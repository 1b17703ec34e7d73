"""The report as terminal text and as GitHub Markdown (a PR comment or ``$GITHUB_STEP_SUMMARY``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from harness.report.build import RunReport
from harness.report.format import amount_with_unit
from harness.report.headline import headline_sentences
from harness.report.narrow import WIDTH, narrow_table, wrap
from harness.report.table import (
    METRIC_NAMES,
    SAMPLES_NOTE,
    Cell,
    Table,
    comparison_notes,
    comparisons_table,
    flakiness_table,
    flip_lines,
    money_total,
    pareto_table,
    render,
    samples_table,
    summary_methods,
    summary_table,
)
from harness.stats.comparison import Comparison

# GitHub rejects comments above 65,536 characters; the detail sections are dropped first to fit.
GITHUB_COMMENT_LIMIT = 65_536


def header_line(report: RunReport) -> str:
    parts = [f"status {report.status}", f"{report.trials_done}/{report.trials_planned} trials",
             f"suite hash {report.suite_hash}"]  # fmt: skip
    if report.shard:
        parts.append(f"shard {report.shard}")
    parts.append(f"total cost {money_total(report)}")
    return " · ".join(parts)


def comparison_heading(report: RunReport) -> str:
    family = len(report.comparisons)
    metrics = ", ".join(METRIC_NAMES.get(m, m) for m in report.metrics)
    target = "all pairs" if report.all_pairs else f"against the baseline {report.baseline}"
    strict = ", strict non-inferiority" if report.gate_mode == "non-inferiority" else ""
    return (f"Comparisons {target} ({metrics}; paired on case id; Holm over the {family} comparisons shown; "
            f"margin {amount_with_unit(report.margin, 'pass_rate')}{strict})")


class Writer:
    """Accumulates sections; Markdown and terminal differ only in headings, tables and bullets."""

    def __init__(self, markdown: bool, wide: bool = True) -> None:
        self.markdown = markdown
        self.narrow = not markdown and not wide  # a terminal of 120 columns
        self.parts: list[str] = []

    def _fit(self, text: str) -> str:
        return wrap(text) if self.narrow else text

    def heading(self, text: str, level: int = 3) -> None:
        if self.markdown:
            self.parts.append(f"{'#' * level} {_md_escape(text)}\n")
        else:
            rule = "=" if level <= 2 else "-"
            self.parts.append(f"{self._fit(text)}\n{rule * min(len(text), 100)}")

    def table(self, table: Table) -> None:
        if self.markdown:
            headers, rows = table
            table = ([_md_escape(h, cell=True) for h in headers],
                     [[Cell(_md_escape(c.text, cell=True)) for c in row] for row in rows])  # fmt: skip
        elif self.narrow:
            table = narrow_table(table)
        self.parts.append(render(table, "github" if self.markdown else "simple") + "\n")

    def comparisons(self, comparisons: Sequence[Comparison], show_baseline: bool) -> None:
        """The comparisons table. Too wide for a 120-column terminal, it is split: first one table per metric
        (no metric column, each column in one unit), then, with all pairs, one per baseline (no baseline
        column); each table titled with what its rows share."""
        groups: list[tuple[str, list[Comparison]]] = [("", list(comparisons))]
        splits: list[tuple[Callable[[Comparison], str], bool]] = [
            (lambda c: METRIC_NAMES.get(c.metric, c.metric), show_baseline)]
        if show_baseline:
            splits.append((lambda c: f"against {c.baseline}", False))
        baseline_column = show_baseline
        for key, keeps_baseline in splits:
            if not self.narrow or all(_widest(comparisons_table(g, baseline_column)) <= WIDTH for _, g in groups):
                break
            if len(set(map(key, comparisons))) < 2:
                continue
            groups = [(", ".join(filter(None, (title, value))), [c for c in group if key(c) == value])
                      for title, group in groups for value in dict.fromkeys(map(key, group))]  # fmt: skip
            baseline_column = keeps_baseline
        for title, group in groups:
            table = comparisons_table(group, baseline_column)
            if table is not None:
                if title:
                    self.parts.append(f"{title}:")
                self.table(table)

    def lines(self, lines: list[str], indent: str = "") -> None:
        if lines:
            bullet = "- " if self.markdown else "  "
            shown = [_md_escape(line) for line in lines] if self.markdown else lines
            self.parts.append(self._fit("\n".join(f"{indent}{bullet}{line}" for line in shown)) + "\n")

    def para(self, text: str) -> None:
        self.parts.append((_md_escape(text) if self.markdown else self._fit(text)) + "\n")

    def headline(self, sentences: list[str]) -> None:
        """The report's first lines: one sentence per comparison (``harness.report.headline``)."""
        if self.markdown:
            self.parts.append("\n".join(f"> **{_md_escape(s)}**  " for s in sentences) + "\n")
        else:
            self.parts.append(self._fit("\n".join(sentences)) + "\n")

    def details(self, summary: str, body: Callable[[], None]) -> None:
        if self.markdown:
            self.parts.append(f"<details><summary>{_md_escape(summary)}</summary>\n")
            body()
            self.parts.append("</details>\n")
        else:
            self.heading(summary, 4)
            body()

    def text(self) -> str:
        return "\n".join(self.parts).rstrip("\n") + "\n"


def _widest(table: Table | None) -> int:
    """The widest line of ``table`` on a narrow terminal."""
    return 0 if table is None else max(map(len, render(narrow_table(table)).splitlines()))


def _md_escape(text: str, cell: bool = False) -> str:
    """Run data (case ids, prompt names, reasons) is text: no HTML in a PR comment, no cell-splitting pipes."""
    text = text.replace("&", "&amp;").replace("<", "&lt;")
    return text.replace("|", "\\|").replace("\n", " ") if cell else text


def _render(report: RunReport, markdown: bool, details: bool, compact: bool = False, wide: bool = True) -> str:
    w = Writer(markdown, wide)
    w.heading(f"prompt-harness report: {report.suite}", 2)
    w.headline(headline_sentences(report))
    w.para(header_line(report))
    w.heading("Variants")
    if report.variants:
        w.table(summary_table(report))
        w.lines(summary_methods(report))
    else:
        w.para("No finished trials.")
    if report.comparisons:
        w.heading(comparison_heading(report))
        w.comparisons(report.comparisons, report.all_pairs)
        for c in [] if compact else report.comparisons:
            title = (f"{c.candidate} vs {c.baseline} · {METRIC_NAMES.get(c.metric, c.metric)}")
            body = comparison_notes(c) + flip_lines(c)
            if details:
                w.details(title, lambda body=body: w.lines(body))  # type: ignore[misc]
            else:
                w.lines([f"{title}: {body[0]}"])
    if compact:
        w.lines(["flakiness, cost–quality front, flipped cases and power: harness report RUN"])
        return w.text()
    samples = samples_table(report)
    if samples is not None:
        w.heading("Samples (several choices per request)")
        w.table(samples)
        w.lines([SAMPLES_NOTE])
    flaky = flakiness_table(report)
    if flaky is not None:
        w.heading("Flakiness (within-case disagreement across repeats)")
        w.table(flaky)
        w.lines(["flaky case: its repeats disagree; within-case sd (at most 0.5 for pass/fail) and ICC from one-way "
                 "variance components, with 95% case-bootstrap intervals; SE k=…: projected standard error of the "
                 "pass rate with that many repeats per case; '?': too few cases (< 20) for an interval or a "
                 "projection"])  # fmt: skip
    pareto = pareto_table(report)
    if pareto is not None:
        w.heading("Cost–quality")
        w.table(pareto)
        w.lines([f"front: not beaten on both {METRIC_NAMES[report.pareto_metric]} and cost by point estimates; "
                 f"significantly dominated: another variant is non-inferior in quality (paired 95% lower bound "
                 f"≥ −{amount_with_unit(report.margin, 'pass_rate')}) and significantly cheaper "
                 "(paired bootstrap-t)"])  # fmt: skip
    if report.calibration is not None:
        w.heading("Judge calibration (agreement with human labels)")
        w.parts.append(report.calibration.markdown() if markdown else report.calibration.table())
    if report.notes:
        w.heading("Notes")
        w.lines(report.notes)
    return w.text()


def render_terminal(report: RunReport, wide: bool = False) -> str:
    """The full report for a terminal: 120 columns unless ``wide`` (then with every interval)."""
    return _render(report, markdown=False, details=True, wide=wide)


def render_summary(report: RunReport, wide: bool = False) -> str:
    """What ``harness run`` prints: the headline, the variant table and the comparisons' verdicts."""
    return _render(report, markdown=False, details=False, compact=True, wide=wide)


def render_markdown(report: RunReport) -> str:
    text = _render(report, markdown=True, details=True)
    if len(text) > GITHUB_COMMENT_LIMIT:
        text = _render(report, markdown=True, details=False)
    if len(text) > GITHUB_COMMENT_LIMIT:
        note = "\n… cut to fit a GitHub comment; report.html and report.json have everything.\n"
        text = text[: GITHUB_COMMENT_LIMIT - len(note) - 1].rsplit("\n", 1)[0] + note
    return text
