"""The cost–quality chart as inline SVG, built with ElementTree (which escapes every label and tooltip).

x: mean cost per 1,000 cases (tokens per case when no model has a price), y: quality with its 95% interval; the
nominal front is joined by a dashed step line, significantly dominated variants are hollow, variants off the
front but not significantly dominated are grey: shown, never hidden (docs/statistics.md).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass

from harness.report.build import RunReport
from harness.report.format import COST_UNIT, cost_money, pct_interval
from harness.report.table import front_words

WIDTH, HEIGHT = 720, 420
LEFT, RIGHT, TOP, BOTTOM = 70, 24, 20, 56
FRONT_COLOUR, GREY = "#1f6fb4", "#8a8a8a"


@dataclass(frozen=True)
class ChartPoint:
    number: int
    variant: str
    quality: float
    quality_low: float | None
    quality_high: float | None
    x: float
    x_low: float | None
    x_high: float | None
    status: str  # front | dominated | indistinguishable: how the point is drawn
    tip: str
    words: str = ""  # the table's words for where it stands (``front_words``)


def chart_points(report: RunReport) -> tuple[list[ChartPoint], str]:
    """The plotted points and the x axis' title."""
    priced = any(p.cost_per_case is not None and p.cost_per_case.estimate is not None for p in report.pareto)
    tokens = {
        s.variant: (s.tokens_in_per_case or 0.0) + (s.tokens_out_per_case or 0.0)
        for s in report.variants
        if s.tokens_in_per_case is not None or s.tokens_out_per_case is not None
    }
    points = []
    for number, p in enumerate(report.pareto, start=1):
        if p.quality.estimate is None:
            continue
        if priced:
            cost = p.cost_per_case
            if cost is None or cost.estimate is None:
                continue
            x, x_low, x_high = cost.estimate, cost.low, cost.high
            x_text = f"{cost_money(cost.estimate)} {COST_UNIT}"
        elif p.variant in tokens:
            x, x_low, x_high = tokens[p.variant], None, None
            x_text = f"{x:.0f} tokens per case"
        else:
            continue
        status = "front" if p.on_front else ("dominated" if p.significantly_dominated else "indistinguishable")
        if not priced:
            status = "indistinguishable"
        words = front_words(p) if priced else "no prices set: not placed on a cost front"
        tip = f"{number}. {p.variant}: {pct_interval(p.quality)} · {x_text} · {words}"
        points.append(ChartPoint(number, p.variant, p.quality.estimate, p.quality.low, p.quality.high, x, x_low,
                                 x_high, status, tip, words))  # fmt: skip
    title = f"mean cost {COST_UNIT} (USD, 95% CI)" if priced else "tokens per case (no prices set)"
    return points, title


def nice_ticks(high: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``high``."""
    if high <= 0:
        return [0.0, 1.0]
    raw = high / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [i * step for i in range(int(math.ceil(high / step - 1e-9)) + 1)]


def _num(value: float) -> str:
    return f"{value:.1f}"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k.rstrip("_").replace("_", "-"): v for k, v in attrs.items()})
    if text is not None:
        element.text = text
    return element


def _axes(svg: ET.Element, x_ticks: list[float], x_of: Callable[[float], float], y_of: Callable[[float], float],
          x_label: Callable[[float], str], x_title: str, y_title: str) -> None:  # fmt: skip
    grid = _sub(svg, "g", class_="axes")
    for q in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = _num(y_of(q))
        _sub(grid, "line", x1=str(LEFT), x2=str(WIDTH - RIGHT), y1=y, y2=y, stroke="#e3e3e3")
        _sub(grid, "text", f"{q * 100:.0f}%", x=str(LEFT - 8), y=y, text_anchor="end", dominant_baseline="middle")
    for t in x_ticks:
        x = _num(x_of(t))
        _sub(grid, "line", x1=x, x2=x, y1=str(TOP), y2=str(HEIGHT - BOTTOM), stroke="#eeeeee")
        _sub(grid, "text", x_label(t), x=x, y=str(HEIGHT - BOTTOM + 18), text_anchor="middle")
    _sub(grid, "line", x1=str(LEFT), x2=str(WIDTH - RIGHT), y1=str(HEIGHT - BOTTOM), y2=str(HEIGHT - BOTTOM),
         stroke="#444")  # fmt: skip
    _sub(grid, "line", x1=str(LEFT), x2=str(LEFT), y1=str(TOP), y2=str(HEIGHT - BOTTOM), stroke="#444")
    _sub(grid, "text", x_title, x=_num((LEFT + WIDTH - RIGHT) / 2), y=str(HEIGHT - 12), text_anchor="middle")
    _sub(grid, "text", y_title, x="16", y=_num((TOP + HEIGHT - BOTTOM) / 2), text_anchor="middle",
         transform=f"rotate(-90 16 {_num((TOP + HEIGHT - BOTTOM) / 2)})")  # fmt: skip


def _labels(
    points: list[ChartPoint], x_of: Callable[[float], float], y_of: Callable[[float], float]
) -> dict[int, str]:
    """Point number -> label; points drawn on top of each other share one label (``3,4``)."""
    labels: dict[int, str] = {}
    anchors: list[tuple[float, float, int]] = []
    for p in points:
        cx, cy = x_of(p.x), y_of(p.quality)
        near = next((n for ax, ay, n in anchors if abs(ax - cx) < 6 and abs(ay - cy) < 6), None)
        if near is None:
            anchors.append((cx, cy, p.number))
            labels[p.number] = str(p.number)
        else:
            labels[near] += f",{p.number}"
    return labels


def cost_quality_svg(report: RunReport) -> str | None:
    """The chart's SVG markup, or None when no variant has both a quality and a cost (or token) value."""
    points, x_title = chart_points(report)
    if not points:
        return None
    top = max(max(p.x_high if p.x_high is not None else p.x for p in points), 1e-12)
    x_ticks = nice_ticks(top * 1.05)
    x_max = x_ticks[-1]

    def x_of(value: float) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * value / x_max

    def y_of(q: float) -> float:
        return HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * q

    priced = x_title.startswith("mean cost")
    quality_name = "score" if report.pareto_metric == "score" else "pass rate"
    svg = ET.Element("svg", {"xmlns": "http://www.w3.org/2000/svg", "viewBox": f"0 0 {WIDTH} {HEIGHT}",
                             "role": "img", "class": "chart",
                             "aria-label": f"{quality_name} against {x_title} per variant"})  # fmt: skip
    _axes(svg, x_ticks, x_of, y_of, (lambda v: cost_money(v)) if priced else (lambda v: f"{v:g}"), x_title,
          f"{quality_name} (95% CI)")  # fmt: skip
    front = sorted((p for p in points if p.status == "front"), key=lambda p: p.x)
    if len(front) > 1:
        steps = [f"{_num(x_of(front[0].x))},{_num(y_of(front[0].quality))}"]
        for before, after in zip(front, front[1:], strict=False):
            steps.append(f"{_num(x_of(after.x))},{_num(y_of(before.quality))}")
            steps.append(f"{_num(x_of(after.x))},{_num(y_of(after.quality))}")
        _sub(svg, "polyline", points=" ".join(steps), fill="none", stroke=FRONT_COLOUR, stroke_dasharray="5 4",
             class_="front-line")  # fmt: skip
    labels = _labels(points, x_of, y_of)
    for p in points:
        colour = FRONT_COLOUR if p.status == "front" else GREY
        group = _sub(svg, "g", class_=f"point point-{p.status}")
        _sub(group, "title", p.tip)
        cx, cy = x_of(p.x), y_of(p.quality)
        if p.quality_low is not None and p.quality_high is not None:
            _sub(group, "line", x1=_num(cx), x2=_num(cx), y1=_num(y_of(p.quality_low)),
                 y2=_num(y_of(p.quality_high)), stroke=colour)  # fmt: skip
        if p.x_low is not None and p.x_high is not None:
            _sub(group, "line", x1=_num(x_of(p.x_low)), x2=_num(x_of(p.x_high)), y1=_num(cy), y2=_num(cy),
                 stroke=colour)  # fmt: skip
        fill = "#ffffff" if p.status == "dominated" else colour
        _sub(group, "circle", cx=_num(cx), cy=_num(cy), r="6", fill=fill, stroke=colour, stroke_width="2")
        if p.number in labels:
            _sub(group, "text", labels[p.number], x=_num(cx + 9), y=_num(cy - 8), class_="label")
    return ET.tostring(svg, encoding="unicode")
