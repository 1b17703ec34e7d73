"""What is recorded about one trial: ``TrialResult`` (one JSON line of results.jsonl) and its parts."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, is_dataclass
from typing import Any

from harness.grade.base import UNANSWERED

# Errors a rerun would only repeat: the provider rejected the request itself (HTTP 400 and the like).
# Everything else (rate limits, 5xx, timeouts, refused connections, a bad key or URL fixed since) is redone.
FINAL_ERROR_KINDS = frozenset({"client", "too_large"})
# Where a provider reports its token counts: OpenAI's names first, then those of the Responses-style APIs.
INPUT_TOKEN_KEYS = ("prompt_tokens", "input_tokens")
OUTPUT_TOKEN_KEYS = ("completion_tokens", "output_tokens")
SNIPPET_CHARS = 100
# A request with ``n`` choices stores one record per choice: choice 0 under the trial's id, choice i under
# ``<trial id>~i``. Choice 0 is written last, so its record means the whole request is stored.
CHOICE_SEPARATOR = "~"


def choice_id(trial_id: str, choice: int) -> str:
    return trial_id if choice == 0 else f"{trial_id}{CHOICE_SEPARATOR}{choice}"


def request_id(trial_id: str) -> str:
    """The trial (request) a record's id belongs to: itself, or the trial of a choice record."""
    return trial_id.split(CHOICE_SEPARATOR, 1)[0]


@dataclass(frozen=True)
class GradeRecord:
    grader: str
    passed: bool | None
    score: float
    reason: str
    error: str | None = None
    weight: float = 1.0
    usage: dict[str, int] | None = None
    cost: float | None = None
    details: dict[str, Any] | None = None


def unanswered(grades: list[GradeRecord]) -> bool:
    """Whether a grader's own call (a judge's) could not answer: the grade is missing, not decided."""
    return any(g.passed is None and (g.details or {}).get(UNANSWERED) for g in grades)


@dataclass(frozen=True)
class TrialError:
    """Why a trial produced no output. ``kind``: rate_limit, server, timeout, connection, client, auth,
    not_found, bad_response, replay_miss, template, grading, cancelled, other."""

    kind: str
    message: str
    status: int | None = None


class TrialOutcome:
    """What the full and the compact record (``harness.store.compact``) derive alike from their fields."""

    __slots__ = ()  # the compact record is slotted; an empty base keeps it so
    model: str
    prompt: str
    temperature: float
    passed: bool | None
    error: TrialError | None

    @property
    def variant(self) -> str:
        return variant_label(self.model, self.prompt, self.temperature)

    @property
    def decided(self) -> bool:
        return self.error is None and self.passed is not None

    @property
    def finished(self) -> bool:
        """Whether a resume keeps this record (True) or runs the trial again (False)."""
        return self.error is None or self.error.kind in FINAL_ERROR_KINDS


@dataclass(frozen=True)
class TrialResult(TrialOutcome):
    """Everything recorded about one trial. Identity fields first, then outcome."""

    trial_id: str
    case_id: str
    prompt: str
    model: str
    temperature: float
    repeat: int
    request: dict[str, Any] = field(default_factory=dict)
    output: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None
    # A tool round trip's messages after the request: assistant turns, tool results, the final answer.
    transcript: list[dict[str, Any]] = field(default_factory=list)
    grades: list[GradeRecord] = field(default_factory=list)
    # None when the trial errored or a grader could not decide: neither a pass nor a fail.
    passed: bool | None = None
    score: float | None = None
    usage: dict[str, int] = field(default_factory=dict)
    cost: float | None = None
    judge_usage: dict[str, int] = field(default_factory=dict)
    judge_cost: float | None = None
    latency_ms: float | None = None
    attempts: int = 0
    error: TrialError | None = None
    label: Any = None  # a human label carried over from the case, for judge calibration
    group: str | None = None
    finished_at: float | None = None
    batch: bool = False  # the call went through a batch job (priced at the batch rate, no latency)
    choice: int = 0  # which of the request's ``n`` choices this record grades
    ttft_ms: float | None = None  # time to first token of a streamed reply (on choice 0: one per request)
    answer: str | None = None  # what a grader compared (e.g. exact's normalised text), for majority votes

    @property
    def finished(self) -> bool:
        """A trial whose judge never answered is redone by a resume, like one whose model never answered."""
        return super().finished and not unanswered(self.grades)

    @property
    def tokens_in(self) -> float | None:
        return _token_count(self.usage, INPUT_TOKEN_KEYS)

    @property
    def tokens_cached(self) -> float | None:
        return _token_count(self.usage, ("cached_tokens",))

    @property
    def tokens_reasoning(self) -> float | None:
        return _token_count(self.usage, ("reasoning_tokens",))

    @property
    def tokens_out(self) -> float | None:
        return _token_count(self.usage, OUTPUT_TOKEN_KEYS)

    @property
    def output_snippet(self) -> str:
        return snippet(self.output or "")

    def to_json(self) -> str:
        # ``default`` turns this record and its nested ones into dicts as json meets them: the same text as
        # ``json.dumps(asdict(self))`` at a third of the cost (asdict deep-copies the request body).
        return json.dumps(self, default=_record_fields, ensure_ascii=False, sort_keys=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialResult:
        values = dict(data)
        values["grades"] = [GradeRecord(**g) for g in values.get("grades") or []]
        err = values.get("error")
        values["error"] = TrialError(**err) if err else None
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in values.items() if k in known})


def _record_fields(obj: Any) -> dict[str, Any]:
    if is_dataclass(obj) and not isinstance(obj, type):
        return {name: getattr(obj, name) for name in obj.__dataclass_fields__}
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _token_count(usage: Mapping[str, int], names: tuple[str, ...]) -> float | None:
    for name in names:
        if name in usage and usage[name] is not None:
            return float(usage[name])
    return None


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """Text on one line, cut to ``limit`` characters: a preview of a model's output."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def variant_label(model: str, prompt: str, temperature: float) -> str:
    return f"{model} · {prompt} · T={temperature:g}"
