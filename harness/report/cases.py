"""Per-case drill-down: the inputs each prompt version sent, and every variant's outputs and grades.

A report keeps every case's counts (from compact records) but the inputs, outputs and grades only of the
cases a page shows, read in a second pass over results.jsonl (``load_case_details``).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from harness.stats.cases import trial_order
from harness.store import RESULTS_FILE, TrialRecord, TrialResult, read_results


@dataclass(frozen=True)
class Message:
    role: str
    content: str
    images: tuple[str, ...] = ()  # data: URLs of the message's image parts, shown as thumbnails


def _image_url(part: Any) -> str | None:
    if isinstance(part, dict) and part.get("type") == "image_url":
        url = (part.get("image_url") or {}).get("url")
        return url if isinstance(url, str) else None
    return None


def message_view(message: Mapping[str, Any]) -> Message:
    """One sent or received message for reading: its text, images apart (as thumbnails, never as base64
    text), and any tool calls or the call a tool result answers."""
    role = str(message.get("role", "?"))
    content = message.get("content")
    images: list[str] = []
    if isinstance(content, list):
        texts = []
        for part in content:
            url = _image_url(part)
            if url is None:
                texts.append(part["text"] if isinstance(part, dict) and isinstance(part.get("text"), str)
                             else _text(part))
            elif url.startswith("data:"):
                images.append(url)
            else:
                texts.append(f"[image {url}]")
        text = "\n".join(texts)
    else:
        text = "" if content is None else _text(content)
    calls = [c.get("function") or {} for c in message.get("tool_calls") or () if isinstance(c, dict)]
    if isinstance(message.get("function_call"), dict):
        calls.append(message["function_call"])
    lines = [f"call {c.get('name', '?')}({c.get('arguments', '')})" for c in calls]
    if role in ("tool", "function"):
        role = f"{role} result" + (f" · {message['name']}" if message.get("name") else "")
    return Message(role, "\n".join(filter(None, [text, *lines])), tuple(images))


# slots: a report of a large run holds one CaseDetail and CaseVariant per case.
@dataclass(frozen=True, slots=True)
class CaseVariant:
    """One variant's trials of one case, in repeat order (full records only for the cases a page shows)."""

    variant: str
    trials: tuple[TrialRecord, ...]

    @property
    def passed(self) -> int:
        return sum(1 for t in self.trials if t.error is None and t.passed is True)

    @property
    def failed(self) -> int:
        return sum(1 for t in self.trials if t.error is None and t.passed is False)

    @property
    def errors(self) -> int:
        return sum(1 for t in self.trials if t.error is not None)

    @property
    def undecided(self) -> int:
        return sum(1 for t in self.trials if t.error is None and t.passed is None)

    @property
    def state(self) -> str:
        """pass / fail / mixed / error / undecided: for colouring and filtering."""
        if self.passed == len(self.trials):
            return "pass"
        if self.failed + self.errors == len(self.trials) and self.failed:
            return "fail"
        if self.errors == len(self.trials):
            return "error"
        if self.passed == 0 and self.failed == 0:
            return "undecided"
        return "mixed"

    @property
    def mean_score(self) -> float | None:
        scores = [0.0 if t.error is not None else t.score for t in self.trials]
        known = [s for s in scores if s is not None]
        return sum(known) / len(known) if known else None

    def to_dict(self) -> dict[str, Any]:
        score = self.mean_score
        return {
            "trials": len(self.trials),
            "passed": self.passed,
            "failed": self.failed,
            "errors": self.errors,
            "undecided": self.undecided,
            "mean_score": None if score is None else float(score),
        }


@dataclass(frozen=True, slots=True)
class CaseDetail:
    case_id: str
    inputs: Mapping[str, list[Message]]  # prompt version -> messages sent (none when built from compact records)
    variants: tuple[CaseVariant, ...]

    @property
    def disagrees(self) -> bool:
        """Variants (or repeats) did not all reach the same verdict: the cases worth reading first."""
        return len({v.state for v in self.variants}) > 1 or any(v.state == "mixed" for v in self.variants)

    @property
    def failing(self) -> bool:
        return any(v.failed or v.errors for v in self.variants)

    def to_dict(self) -> dict[str, Any]:
        return {"case_id": self.case_id, "variants": {v.variant: v.to_dict() for v in self.variants}}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return json.dumps(content, ensure_ascii=False, indent=1, sort_keys=True)


def request_messages(request: dict[str, Any]) -> list[Message]:
    """What was sent: chat messages, or the prompt of the legacy completions endpoint."""
    if isinstance(request.get("messages"), list):
        messages = [message_view(m) for m in request["messages"] if isinstance(m, dict)]
    elif "prompt" in request:
        messages = [Message("prompt", _text(request["prompt"]))]
    else:
        messages = []
    if request.get("tools"):
        names = [str((t.get("function") or {}).get("name", "?")) for t in request["tools"] if isinstance(t, dict)]
        messages.append(Message("tools", ", ".join(names)))
    if request.get("functions"):
        names = [str(f.get("name", "?")) for f in request["functions"] if isinstance(f, dict)]
        messages.append(Message("functions (legacy)", ", ".join(names)))
    return messages


# Shared by every case built from compact records: a large run's report holds one CaseDetail per case.
_NO_INPUTS: Mapping[str, list[Message]] = MappingProxyType({})


def case_details(results: Sequence[TrialRecord], variant_labels: Sequence[str]) -> list[CaseDetail]:
    """One entry per case id (sorted), its variants in report order."""
    by_case: dict[str, list[TrialRecord]] = {}
    for trial in results:
        by_case.setdefault(trial.case_id, []).append(trial)
    details = []
    for case_id in sorted(by_case):
        per_variant: dict[str, list[TrialRecord]] = {}
        for trial in by_case.pop(case_id):  # a large run's grouping is let go case by case
            per_variant.setdefault(trial.variant, []).append(trial)
        inputs: dict[str, list[Message]] = {}
        variants = []
        for label in variant_labels:
            trials = tuple(sorted(per_variant.get(label, ()), key=trial_order))
            if not trials:
                continue
            variants.append(CaseVariant(label, trials))
            first = trials[0]
            if first.prompt not in inputs and isinstance(first, TrialResult) and first.request:
                inputs[first.prompt] = request_messages(first.request)
        details.append(CaseDetail(case_id, inputs or _NO_INPUTS, tuple(variants)))
    return details


def load_case_details(directory: Path, case_ids: Collection[str], variant_labels: Sequence[str]) -> list[CaseDetail]:
    """``case_details`` from full records, for the given cases only: one more pass over the run's results."""
    wanted = set(case_ids)
    if not wanted:
        return []
    return case_details([r for r in read_results(directory / RESULTS_FILE) if r.case_id in wanted], variant_labels)
