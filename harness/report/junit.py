"""The gate's verdicts as JUnit XML: one ``<testcase>`` per gated comparison, so any CI system shows them.

A BLOCK (or a WARN under ``--strict``) is a ``<failure>``; every other verdict passes, with the verdict and
its numbers in ``<properties>`` and the full text in ``<system-out>``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.gate import GatedComparison, GateOutcome
from harness.report.gate_text import failure_text, verdict_line
from harness.store import write_atomic

# A file, not a screen: list more flipped cases than the terminal does, but keep huge suites bounded.
MAX_FLIPS = 100
# Characters XML 1.0 cannot carry at all (model output can contain them); ElementTree would write them as-is
# and produce a file no parser accepts.
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _ILLEGAL_XML.sub("\ufffd", text)


def _properties(item: GatedComparison) -> dict[str, str]:
    c = item.comparison
    values: dict[str, object] = {
        "verdict": item.verdict.value,
        "metric": c.metric,
        "candidate": c.candidate,
        "baseline": c.baseline,
        "delta": c.delta,
        "ci90_low": c.ci90.low,
        "ci90_high": c.ci90.high,
        "p_value": c.p_value,
        "p_holm": c.p_holm,
        "family_size": c.family_size,
        "n_cases": c.n_cases,
        "margin": c.margin,
        "mde_warn": c.mde_warn,
        "mde_block": c.mde_block,
        "non_inferiority": item.non_inferiority,
        "run": str(item.run),
        "baseline_run": "" if item.baseline_run is None else str(item.baseline_run),
    }
    return {k: "" if v is None else str(v) for k, v in values.items()}


def _testcase(parent: ET.Element, item: GatedComparison, outcome: GateOutcome) -> None:
    case = ET.SubElement(parent, "testcase", name=_clean(f"{item.metric}: {item.short_name}"),
                         classname=_clean(f"harness.gate.{item.suite}"), time="0")  # fmt: skip
    props = ET.SubElement(case, "properties")
    for name, value in _properties(item).items():
        ET.SubElement(props, "property", name=name, value=_clean(value))
    text = _clean(failure_text(item, MAX_FLIPS))
    if outcome.fails(item):
        failure = ET.SubElement(case, "failure", message=_clean(verdict_line(item)), type=item.verdict.value)
        failure.text = text
    else:
        ET.SubElement(case, "system-out").text = text


def render_junit(outcome: GateOutcome) -> str:
    root = ET.Element("testsuites", name="prompt-harness gate", tests=str(len(outcome.items)),
                      failures=str(len(outcome.failed)), errors="0", time="0")  # fmt: skip
    suites: dict[str, list[GatedComparison]] = {}
    for item in outcome.items:
        suites.setdefault(item.suite, []).append(item)
    for name, items in suites.items():
        failures = sum(1 for i in items if outcome.fails(i))
        suite = ET.SubElement(root, "testsuite", name=_clean(name), tests=str(len(items)),
                              failures=str(failures), errors="0", skipped="0", time="0")  # fmt: skip
        for item in items:
            _testcase(suite, item, outcome)
    for why in outcome.unevaluated:
        # A comparison the gate could not judge fails CI as an error, never as a silent pass.
        suite = root.find("testsuite")
        parent = suite if suite is not None else ET.SubElement(root, "testsuite", name="prompt-harness gate",
                                                                 tests="0", failures="0", errors="0", skipped="0",
                                                                 time="0")  # fmt: skip
        case = ET.SubElement(parent, "testcase", name=_clean("not evaluated"), classname="harness.gate", time="0")
        ET.SubElement(case, "error", message=_clean(why), type="NOT_EVALUATED").text = _clean(why)
    if outcome.unevaluated:
        root.set("errors", str(len(outcome.unevaluated)))
    if outcome.notes or outcome.warnings:
        # The schema allows output only inside a testsuite: the first one carries the invocation's notes.
        first = root.find("testsuite")
        if first is None:
            first = ET.SubElement(root, "testsuite", name="prompt-harness gate", tests="0", failures="0",
                                  errors="0", skipped="0", time="0")  # fmt: skip
        ET.SubElement(first, "system-out").text = _clean(
            "\n".join([*(f"warning: {w}" for w in outcome.warnings), *(f"note: {n}" for n in outcome.notes)])
        )
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(outcome: GateOutcome, path: Path) -> Path:
    write_atomic(path, render_junit(outcome))
    return path
