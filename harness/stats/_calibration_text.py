"""Judge calibration as text: a terminal table (``simple``) or GitHub Markdown (``github``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tabulate import tabulate

from harness.report.format import decimal, pct
from harness.stats.intervals import Interval

if TYPE_CHECKING:
    from harness.stats.calibration import Agreement, Calibration, JudgeCalibration

MAX_DISAGREEMENTS = 20


def _signed(value: float | None) -> str:
    return decimal(value, 2, sign=True)


def _row(name: str, ci: Interval, percent: bool = True) -> list[str]:
    show = pct if percent else _signed
    bounds = f"[{show(ci.low)}, {show(ci.high)}]" if ci.defined else "–"
    method = ci.method + (f" — {ci.note}" if ci.note else "")
    return [name, show(ci.estimate), bounds, method]


def _agreement(agreement: Agreement, tablefmt: str, heading: str) -> list[str]:
    rows = [_row("accuracy", agreement.accuracy), _row("Cohen's kappa", agreement.kappa, percent=False)]
    if agreement.weighted_kappa is not None:
        rows.append(_row("kappa, quadratic weights", agreement.weighted_kappa, percent=False))
    for category, ci in agreement.per_category.items():
        rows.append(_row(f"judge agrees when human says {category}", ci))
    level = f"{agreement.accuracy.level:.0%}"
    lines = [f"{heading}: {agreement.pairs} labelled trials from {agreement.cases} cases", "",
             tabulate(rows, headers=["", "estimate", f"{level} interval", "method"], tablefmt=tablefmt), ""]
    matrix = [[f"human {h}", *agreement.confusion[i]] for i, h in enumerate(agreement.categories)]
    headers = ["", *(f"judge {c}" for c in agreement.categories)]
    lines += ["confusion matrix (rows: human label, columns: judge verdict)", "",
              tabulate(matrix, headers=headers, tablefmt=tablefmt), ""]
    return lines


def _judge(judge: JudgeCalibration, tablefmt: str) -> list[str]:
    title = f"judge calibration: {judge.judge}"
    lines = [f"### {title}" if tablefmt == "github" else title, ""]
    counts = f"{judge.labelled} labelled trials; judge undecided on {judge.undecided}"
    if judge.unusable_labels:
        shown = ", ".join(judge.unusable_labels[:5]) + (" …" if len(judge.unusable_labels) > 5 else "")
        counts += f"; {len(judge.unusable_labels)} labels not understood ({shown})"
    lines += [counts, ""]
    if judge.pass_fail is not None:
        lines += _agreement(judge.pass_fail, tablefmt, "pass/fail")
    if judge.scale is not None:
        lines += _agreement(judge.scale, tablefmt, "scale values")
    if judge.disagreements:
        rows = [[d.case_id, d.variant, d.human, d.judge, d.reason, d.output]
                for d in judge.disagreements[:MAX_DISAGREEMENTS]]
        lines += [f"disagreements ({len(judge.disagreements)})", "",
                  tabulate(rows, headers=["case", "variant", "human", "judge", "judge's reason", "output"],
                           tablefmt=tablefmt, maxcolwidths=[None, None, None, None, 60, 40]), ""]
        if len(judge.disagreements) > MAX_DISAGREEMENTS:
            lines += [f"… and {len(judge.disagreements) - MAX_DISAGREEMENTS} more", ""]
    elif judge.pass_fail is not None:
        lines += ["no disagreements", ""]
    return lines


def render(calibration: Calibration, tablefmt: str) -> str:
    lines: list[str] = []
    for judge in calibration.judges:
        lines += _judge(judge, tablefmt)
    return "\n".join(lines).rstrip() + "\n"
