"""The typed suite: what the loader builds from YAML once. Nothing after the suite stage sees raw dicts."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from harness.errors import Location
from harness.grade.base import Grader

Api = Literal["chat", "completions"]


def fingerprint(value: Any) -> str:
    """A stable short hash of JSON-like data: ids and resumes line up when, and only when, inputs match."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# OpenAI's and Azure's Batch API bill half the live rate; used when a price names no batch rates of its own.
BATCH_DISCOUNT = 0.5


@dataclass(frozen=True)
class Price:
    """USD per 1M tokens.

    ``cached_input`` prices the prompt tokens the provider served from its prompt cache
    (``usage.prompt_tokens_details.cached_tokens``); without it they cost ``input``. ``batch``: the rates of
    calls made through a batch job, if not the usual discount.
    """

    input: float
    output: float
    cached_input: float | None = None
    batch: Price | None = None

    def for_batch(self) -> Price:
        """The rates a batch call is billed at: ``batch`` if given, else ``BATCH_DISCOUNT`` of these."""
        if self.batch is not None:
            return self.batch
        cached = None if self.cached_input is None else self.cached_input * BATCH_DISCOUNT
        return Price(self.input * BATCH_DISCOUNT, self.output * BATCH_DISCOUNT, cached)

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> float:
        cached = min(max(cached_tokens, 0), prompt_tokens)
        cached_rate = self.input if self.cached_input is None else self.cached_input
        return ((prompt_tokens - cached) * self.input + cached * cached_rate
                + completion_tokens * self.output) / 1_000_000

    def usage_cost(self, usage: Mapping[str, int] | None) -> float | None:
        """The cost of one call's ``usage`` (as ``harness.execute.provider`` reduces it); None when the call
        reported no token counts, so an unknown cost is never shown as zero."""
        if not usage or "prompt_tokens" not in usage or "completion_tokens" not in usage:
            return None
        return self.cost(int(usage["prompt_tokens"]), int(usage["completion_tokens"]),
                         int(usage.get("cached_tokens", 0)))


DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class ModelSpec:
    """One endpoint-model the suite runs against (or judges with).

    ``id`` labels it in reports and cassettes and defaults to ``name``, which is sent as ``model``.
    """

    id: str
    name: str
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"  # "" when the endpoint needs no key
    provider: Literal["openai", "azure"] = "openai"
    api_version: str | None = None
    api: Api = "chat"
    price: Price | None = None
    max_concurrency: int = 8
    timeout: float = 60.0
    # The largest answer accepted, in bytes: a bigger one is that trial's error, never stored or recorded.
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    send_seed: bool = True
    params: Mapping[str, Any] = field(default_factory=dict)
    batch: bool = False  # send calls that need the API through the provider's Batch API (see docs/batch.md)
    location: Location | None = field(default=None, compare=False)

    @cached_property
    def fingerprint(self) -> str:
        # Cached: every trial id needs it (frozen dataclasses without __slots__ allow cached_property).
        # base_url is left out on purpose: a replay may point the same model at another address.
        return fingerprint([self.name, self.provider, self.api, dict(self.params)])


@dataclass(frozen=True)
class MessageTemplate:
    """One message of a prompt version. ``content`` is a Jinja template (or None for tool-call turns)."""

    role: str
    content: Any  # str template, list of content parts, or None
    name: str | None = None
    tool_calls: tuple[Mapping[str, Any], ...] = ()
    tool_call_id: str | None = None
    function_call: Mapping[str, Any] | None = None  # a legacy assistant turn's call
    history: bool = False  # a placeholder where a case's message history goes


@dataclass(frozen=True)
class PromptVersion:
    """A named prompt: chat messages (with tools) or, for base models, one completion prompt."""

    name: str
    messages: tuple[MessageTemplate, ...] = ()
    prompt: str | None = None  # legacy completions endpoint
    tools: tuple[Mapping[str, Any], ...] = ()
    tool_choice: Any = None
    functions: tuple[Mapping[str, Any], ...] = ()  # the legacy form of tools
    function_call: Any = None  # the legacy form of tool_choice
    # How a chat prompt becomes the one text the completions endpoint takes (None: the documented default).
    completion_template: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""  # file the version came from, for --changed-since
    variables: frozenset[str] = frozenset()  # template variables the version needs
    location: Location | None = field(default=None, compare=False)
    raw: Any = field(default=None, compare=False)
    # Each template text with where it was written, so validation can render it for every case.
    templates: tuple[tuple[str, Location], ...] = field(default=(), compare=False)

    @cached_property
    def fingerprint(self) -> str:
        # Cached for the same reason as ModelSpec.fingerprint: every trial id needs it.
        return fingerprint(self.raw)


@dataclass(frozen=True)
class GraderSpec:
    """A configured grader with its weight; the instance already validated its options."""

    type: str
    grader: Grader
    weight: float = 1.0
    location: Location | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)
    variables: frozenset[str] = frozenset()  # case variables its templated options need


@dataclass(frozen=True)
class Case:
    """One input to evaluate. ``vars`` are the case's own (suite vars are overlaid at render time)."""

    id: str
    vars: Mapping[str, Any]
    messages: tuple[Mapping[str, Any], ...] = ()  # multi-turn history, may include assistant turns
    graders: tuple[GraderSpec, ...] = ()
    label: Any = None
    group: str | None = None
    location: Location | None = None
    tool_results: Mapping[str, Any] = field(default_factory=dict)  # static tool results by function name

    @property
    def fingerprint(self) -> str:
        parts: list[Any] = [self.id, dict(self.vars), list(self.messages)]
        if self.tool_results:  # only when given, so ids of suites without round trips stay as they were
            parts.append(dict(self.tool_results))
        return fingerprint(parts)


@dataclass(frozen=True)
class ToolFunction:
    """A Python function from the suite's folder that answers a tool call (``tool_functions:``)."""

    name: str
    reference: str  # "tools.py:get_weather"
    function: Callable[..., Any] = field(compare=False)
    location: Location | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Baseline:
    prompt: str | None = None
    model: str | None = None
    temperature: float | None = None


@dataclass(frozen=True)
class GateSettings:
    """How ``harness gate`` judges this suite. See docs/gating.md."""

    metrics: tuple[str, ...] = ("pass_rate",)
    margin: float = 0.05
    tolerance: float = 0.0
    mode: Literal["default", "non-inferiority"] = "default"


@dataclass(frozen=True)
class RetrySettings:
    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    # An endpoint whose calls all fail to connect this many times in a row is given up on, so an outage
    # ends the run promptly instead of retrying every trial for minutes.
    outage_after: int = 8
    # The longest Retry-After honoured per wait (a longer one is cut to this), and the most seconds one trial,
    # and the whole run, may spend waiting between attempts: a server asking for ten minutes cannot stall a run.
    max_retry_after: float = 60.0
    trial_budget: float = 300.0
    run_budget: float = 1800.0


@dataclass(frozen=True)
class Suite:
    name: str
    path: Path
    root: Path  # project root: file references may not escape it
    models: tuple[ModelSpec, ...]
    prompts: Mapping[str, PromptVersion]
    temperatures: tuple[float, ...] = (0.0,)
    repeats: int = 1
    params: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    vars: Mapping[str, Any] = field(default_factory=dict)
    graders: tuple[GraderSpec, ...] = ()
    threshold: float | None = None
    baseline: Baseline = field(default_factory=Baseline)
    gate: GateSettings = field(default_factory=GateSettings)
    retry: RetrySettings = field(default_factory=RetrySettings)
    judges: Mapping[str, ModelSpec] = field(default_factory=dict)
    description: str = ""
    # Tool round trips: results by function name (static values, or Python functions), and how many
    # times the model may call tools before it must answer.
    tool_results: Mapping[str, Any] = field(default_factory=dict)
    tool_functions: Mapping[str, ToolFunction] = field(default_factory=dict)
    max_tool_turns: int = 5
    # Cases are produced on demand so a 50 MB dataset streams instead of sitting in memory.
    case_source: Callable[[], Iterator[Case]] = field(default=lambda: iter(()), compare=False)
    files: tuple[Path, ...] = ()  # every file the suite read, for --changed-since
    hash: str = ""
    cases_location: Location | None = field(default=None, compare=False)  # where `cases:` is
    warnings: tuple[str, ...] = ()  # shown by validate and run, e.g. a model whose cost would be unknown

    @property
    def dir(self) -> Path:
        return self.path.parent

    @cached_property
    def params_fingerprint(self) -> str:
        return fingerprint(dict(self.params))

    @cached_property
    def vars_fingerprint(self) -> str:
        return fingerprint(dict(self.vars))

    def iter_cases(self) -> Iterator[Case]:
        return self.case_source()

    def model(self, model_id: str) -> ModelSpec:
        for m in self.models:
            if m.id == model_id:
                return m
        raise KeyError(model_id)


def case_vars(suite: Suite, case: Case) -> dict[str, Any]:
    """The variables a case's templates see: the suite's, then the case's, then ``case_id``."""
    return {**suite.vars, **case.vars, "case_id": case.id}
