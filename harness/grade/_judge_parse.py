"""The judge's scales and how a judge's reply becomes a verdict.

A reply is read in this order, and the first rule that applies decides:

1. the whole reply (optionally in a ```json fence) is a JSON object: its ``verdict`` decides, valid or not;
2. otherwise the *last* of these in the reply decides: a JSON object with a ``verdict`` key, or a line
   ``VERDICT: <value>``. Last, because a judge that quotes the candidate ("the response says VERDICT: PASS")
   states its own verdict after the quote;
3. otherwise a reply that is nothing but a value (``PASS``, ``4``, ``(B)``).

Anything else, and any value outside the scale, is a ``VerdictError``: the grader reports an error, never a
pass or a fail.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from harness.grade.base import GraderConfigError

Verdict = str | int
REASON_LIMIT = 400
# Scanning every "{" of a long reply for JSON is quadratic; judges answer briefly, so a cap costs nothing.
_MAX_JSON_STARTS = 200
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_RANGE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")
_VERDICT_LINE = re.compile(r"(?im)^[ \t>*_#`-]*verdict[ \t*_`]*[:=][ \t*_`]*(?P<value>[^\n]*)$")
_TRIM = " \t\r\n\"'`*_.,;:!()[]{}<>"


class VerdictError(ValueError):
    """The judge's reply holds no usable verdict."""


@dataclass(frozen=True)
class Scale:
    """What a judge answers with.

    ``pass_fail``: PASS or FAIL. ``range``: an integer from ``low`` to ``high`` (``"1-5"``). ``choices``:
    one of several labels, each worth a score in [0, 1].
    """

    kind: Literal["pass_fail", "range", "choices"]
    low: int = 0
    high: int = 1
    choices: tuple[tuple[str, float], ...] = ()

    @classmethod
    def parse(cls, value: object) -> Scale:
        if value is None or value == "pass_fail":
            return cls("pass_fail")
        if isinstance(value, str) and (match := _RANGE.match(value)):
            low, high = int(match.group(1)), int(match.group(2))
            if not 0 <= low < high <= 100:
                raise GraderConfigError("scale", f"scale {value!r}: need 0 <= low < high <= 100")
            return cls("range", low, high)
        if isinstance(value, dict) and set(value) == {"choices"}:
            return cls._choices(value["choices"])
        raise GraderConfigError(
            "scale", f"scale must be pass_fail, a range like \"1-5\", or {{choices: {{label: score}}}}; got {value!r}"
        )

    @classmethod
    def _choices(cls, raw: object) -> Scale:
        if not isinstance(raw, dict) or len(raw) < 2:
            raise GraderConfigError("scale", "scale choices must map at least two labels to scores")
        if len(raw) > len(_LETTERS):
            raise GraderConfigError("scale", f"scale choices: at most {len(_LETTERS)} labels")
        items = []
        for label, score in raw.items():
            if not isinstance(label, str) or not label.strip() or "\n" in label:
                raise GraderConfigError("scale", f"choice label {label!r} must be a non-empty one-line string")
            if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
                raise GraderConfigError("scale", f"choice {label!r}: score must be a number in [0, 1], got {score!r}")
            items.append((label.strip(), float(score)))
        folded = [label.casefold() for label, _ in items]
        if len(set(folded)) != len(folded):
            raise GraderConfigError("scale", "choice labels must differ (ignoring case)")
        return cls("choices", choices=tuple(items))

    # --- what the scale means ----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return {"pass_fail": "pass_fail", "range": f"{self.low}-{self.high}", "choices": "choices"}[self.kind]

    def labels(self) -> list[Verdict]:
        if self.kind == "pass_fail":
            return ["PASS", "FAIL"]
        if self.kind == "range":
            return list(range(self.low, self.high + 1))
        return [label for label, _ in self.choices]

    def score(self, verdict: Verdict) -> float:
        """The verdict on [0, 1]."""
        if self.kind == "pass_fail":
            return 1.0 if verdict == "PASS" else 0.0
        if self.kind == "range":
            return (int(verdict) - self.low) / (self.high - self.low)
        return dict(self.choices)[str(verdict)]

    def default_threshold(self) -> float:
        """Pass when at least this (scale units for ranges, score for the others)."""
        return (self.low + self.high) / 2 if self.kind == "range" else 0.5

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "range":
            return {"kind": "range", "low": self.low, "high": self.high}
        if self.kind == "choices":
            return {"kind": "choices", "choices": dict(self.choices)}
        return {"kind": "pass_fail"}

    def verdict_schema(self) -> dict[str, Any]:
        """JSON Schema of the ``verdict`` field, for grammar-constrained structured output."""
        if self.kind == "range":
            return {"type": "integer", "enum": self.labels()}
        return {"type": "string", "enum": self.labels()}

    def instructions(self) -> str:
        if self.kind == "pass_fail":
            return "The verdict is PASS if the candidate response meets the rubric, and FAIL if it does not."
        if self.kind == "range":
            return (f"The verdict is an integer score from {self.low} (does not meet the rubric at all) to "
                    f"{self.high} (fully meets the rubric).")
        lines = "\n".join(f"({_LETTERS[i]}) {label}" for i, (label, _) in enumerate(self.choices))
        return f"The verdict is exactly one of these labels (or its letter):\n{lines}"

    def example(self) -> str:
        return {"pass_fail": "PASS or FAIL", "range": f"a number from {self.low} to {self.high}",
                "choices": "one of the labels"}[self.kind]

    # --- reading values ----------------------------------------------------------------------------------

    def value(self, raw: object) -> Verdict | None:
        """A verdict from a JSON value or a line's text; None when it is not a value of this scale."""
        if isinstance(raw, bool):
            return ("PASS" if raw else "FAIL") if self.kind == "pass_fail" else None
        if isinstance(raw, int | float):
            return self._number(float(raw))
        if not isinstance(raw, str):
            return None
        text = raw.strip(_TRIM)
        if self.kind == "pass_fail":
            return self._pass_fail(text)
        if self.kind == "range":
            return self._range_text(text)
        return self._choice(text)

    def _number(self, number: float) -> Verdict | None:
        if self.kind != "range" or not math.isfinite(number) or number != int(number):
            return None
        return int(number) if self.low <= number <= self.high else None

    def _pass_fail(self, text: str) -> Verdict | None:
        words = re.findall(r"[A-Za-z]+", text)
        if not words or words[0].upper() not in ("PASS", "FAIL"):
            return None
        first = words[0].upper()
        other = "FAIL" if first == "PASS" else "PASS"
        # "PASS/FAIL" or "PASS or FAIL" restates the options rather than choosing one.
        return None if any(w.upper() == other for w in words[1:]) else first

    def _range_text(self, text: str) -> Verdict | None:
        match = re.match(r"^(\d+(?:\.\d+)?)\s*(?:(?:/|out of)\s*(\d+))?(?:\W.*)?$", text, re.IGNORECASE | re.DOTALL)
        if not match:
            return None
        if match.group(2) is not None and int(match.group(2)) != self.high:
            return None  # "4/10" on a 1-5 scale is a different scale, not a 4
        return self._number(float(match.group(1)))

    def _choice(self, text: str) -> Verdict | None:
        by_label = {label.casefold(): label for label, _ in self.choices}
        if text.casefold() in by_label:
            return by_label[text.casefold()]
        match = re.match(r"^([A-Z])(?:[\s).:-]+(.*))?$", text)
        if not match:
            return None
        index = _LETTERS.index(match.group(1))
        if index >= len(self.choices):
            return None
        label = self.choices[index][0]
        rest = (match.group(2) or "").strip(_TRIM)
        # "(B) partly correct" must name B's label; a letter with a different label is a contradiction.
        return label if not rest or rest.casefold() == label.casefold() else None


@dataclass(frozen=True)
class Parsed:
    verdict: Verdict
    reason: str
    method: Literal["json", "json-embedded", "verdict-line", "bare"]


def parse_reply(text: str, scale: Scale) -> Parsed:
    """The verdict in a judge's reply (see the module docstring for the rules). Raises ``VerdictError``."""
    body = _unfence(text)
    whole = _json_object(body)
    if whole is not None:
        return _from_json(whole, scale, "json")
    found = _last_marker(text)
    if found is not None:
        start, kind, payload = found
        if kind == "json":
            return _from_json(payload, scale, "json-embedded")
        verdict = scale.value(payload)
        if verdict is None:
            raise VerdictError(f"the final VERDICT line has {_snippet(str(payload))}, not {scale.example()}")
        return Parsed(verdict, _clip(text[:start]), "verdict-line")
    verdict = scale.value(body) if body and "\n" not in body.strip() else None
    if verdict is not None:
        return Parsed(verdict, "", "bare")
    raise VerdictError(
        f"no verdict found (expected a JSON object with \"verdict\" or a final line \"VERDICT: ...\"); "
        f"the reply was {_snippet(text)}"
    )


def _unfence(text: str) -> str:
    stripped = text.strip()
    match = re.match(r"^```[A-Za-z]*\n(.*)\n```$", stripped, re.DOTALL)
    return match.group(1).strip() if match else stripped


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _last_marker(text: str) -> tuple[int, str, Any] | None:
    """The last JSON object with a ``verdict`` key or ``VERDICT:`` line: (position, kind, payload)."""
    found: list[tuple[int, str, Any]] = []
    decoder = json.JSONDecoder()
    for i, match in enumerate(re.finditer(r"\{", text)):
        if i >= _MAX_JSON_STARTS:
            break
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except (ValueError, RecursionError):
            continue
        if isinstance(value, dict) and "verdict" in value:
            found.append((match.start(), "json", value))
    for match in _VERDICT_LINE.finditer(text):
        found.append((match.start(), "line", match.group("value")))
    return max(found, key=lambda item: item[0]) if found else None


def _from_json(obj: dict[str, Any], scale: Scale, method: Literal["json", "json-embedded"]) -> Parsed:
    if "verdict" not in obj:
        raise VerdictError(f"the JSON reply has no \"verdict\" field: {_snippet(json.dumps(obj))}")
    verdict = scale.value(obj["verdict"])
    if verdict is None:
        raise VerdictError(f"the JSON verdict {_snippet(json.dumps(obj['verdict']))} is not {scale.example()}")
    reason = obj.get("reason")
    return Parsed(verdict, _clip(reason if isinstance(reason, str) else ""), method)


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= REASON_LIMIT else text[: REASON_LIMIT - 1] + "…"


def _snippet(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")
