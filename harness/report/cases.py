"""Per-case drill-down: the inputs each prompt version sent, and every variant's outputs and grades."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.stats.cases import trial_order
from harness.store import TrialResult


@dataclass(frozen=True)
class Message:
    role: str
    content: str


@dataclass(frozen=True)
class CaseVariant:
    """One variant's trials of one case, in repeat order."""

    variant: str
    trials: list[TrialResult]

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


@dataclass(frozen=True)
class CaseDetail:
    case_id: str
    inputs: dict[str, list[Message]]  # prompt version -> messages sent
    variants: list[CaseVariant]

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
        messages = [
            Message(str(m.get("role", "?")), _text(m.get("content")) if m.get("content") is not None else "")
            for m in request["messages"]
            if isinstance(m, dict)
        ]
    elif "prompt" in request:
        messages = [Message("prompt", _text(request["prompt"]))]
    else:
        messages = []
    if request.get("tools"):
        names = [str((t.get("function") or {}).get("name", "?")) for t in request["tools"] if isinstance(t, dict)]
        messages.append(Message("tools", ", ".join(names)))
    return messages


def case_details(results: Sequence[TrialResult], variant_labels: Sequence[str]) -> list[CaseDetail]:
    """One entry per case id (sorted), its variants in report order."""
    by_case: dict[str, dict[str, list[TrialResult]]] = {}
    for trial in results:
        by_case.setdefault(trial.case_id, {}).setdefault(trial.variant, []).append(trial)
    details = []
    for case_id in sorted(by_case):
        per_variant = by_case[case_id]
        inputs: dict[str, list[Message]] = {}
        variants = []
        for label in variant_labels:
            trials = sorted(per_variant.get(label, []), key=trial_order)
            if not trials:
                continue
            variants.append(CaseVariant(label, trials))
            prompt = trials[0].prompt
            if prompt not in inputs and trials[0].request:
                inputs[prompt] = request_messages(trials[0].request)
        details.append(CaseDetail(case_id, inputs, variants))
    return details
