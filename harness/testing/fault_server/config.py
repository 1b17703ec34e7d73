"""How the fault server answers (``FaultConfig``, ``Fault``) and its process-mode command line, both ways."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .batch_faults import BatchFaults

HOST = "127.0.0.1"
SAMPLE_HEADER = "x-harness-sample"
DEFAULT_FAULT_PATHS = ("/v1/chat/completions", "/v1/completions")
DEFAULT_MODELS = ("fault-server",)
DEFAULT_MODERATION_WORDS = {"kill": "violence", "idiot": "harassment", "hate": "hate"}


class Fault(str, Enum):
    """What can go wrong with a request. The values are the names used in config, CLI flags and stats."""

    RATE_LIMIT = "429"
    SERVER_ERROR = "500"
    UNAVAILABLE = "503"
    BAD_REQUEST = "400"
    UNAUTHORIZED = "401"
    NOT_FOUND = "404"
    SLOW = "slow"
    DROP = "drop"
    MALFORMED = "malformed"
    NO_CHOICES = "no_choices"
    STREAM_BREAK = "stream_break"  # a streamed reply stops half-way (a plain reply: dropped, as ``drop``)
    SLOW_LORIS = "slow_loris"  # headers at once, then the body one byte every ``trickle_s``
    HUGE = "huge"  # a valid completion whose text is ``huge_bytes`` long
    QUOTA = "quota"  # 429 with code insufficient_quota: a billing stop, not a rate limit
    ERROR_200 = "error_200"  # status 200, but the body is an error object


@dataclass
class FaultConfig:
    """How the server answers. Read afresh for every request, so it may be replaced or mutated while running.

    Args:
        seed: Mixed into every fault draw, jitter draw and id; the same seed and requests give the same run.
        latency_ms: Delay added before every ``/v1`` response (including injected errors), via asyncio.sleep
            so concurrent requests overlap.
        jitter_ms: Extra delay in ``[0, jitter_ms)``, drawn from a hash of the request and attempt.
        fault_rates: Probability of each ``Fault`` (keys may be the plain names, e.g. ``"429"``) for a
            request to one of ``fault_paths``. They must sum to at most 1; one draw per attempt picks at
            most one fault, from a hash of (seed, method, path, body, sample header, attempt number).
        fault_paths: The paths that ``fault_rates`` and ``fail_first_n`` apply to.
        fail_first_n: The first N attempts of each distinct request (same method, path, body and sample
            header) to ``fault_paths`` fail with ``fail_first_with``; attempt N+1 goes through. Checked
            before ``fault_rates``.
        fail_first_with: The fault used by ``fail_first_n``.
        always_fail: Path -> fault injected on every request to that path (``"*"``: every ``/v1`` path).
            Checked before everything else.
        retry_after_s: ``Retry-After`` header value on 429 replies, in seconds; None leaves it out.
        retry_after_ms: ``retry-after-ms`` header value on 429 replies; None leaves it out.
        slow_s: How long the ``slow`` fault sleeps before answering normally; meant to exceed the client's
            timeout.
        trickle_s: The pause between two bytes of a ``slow_loris`` answer: each read is quick, the whole
            answer takes ages (defeats per-read timeouts).
        huge_bytes: The length of the text of a ``huge`` answer.
        rules: Substring of the last user message (or prompt) -> fixed reply text; the first match in
            insertion order wins, otherwise the text is echoed.
        tool_call: Answer chat requests with one ``tool_calls`` entry and finish_reason ``"tool_calls"``.
        tool_name: The function name in that call; default: the first tool in the request, else ``"tool"``.
        tool_arguments: The call's arguments (sent as JSON); default ``{"text": <the reply text>}``.
        tool_turns: With ``tool_call``, how many tool (or function) result messages a conversation needs
            before the reply is a final text answer quoting the last result (see ``features``).
        moderation_words: ``/v1/moderations`` flags an input containing one of these words (any case) for
            the word's category.
        vary_by_sample: With temperature > 0 (absent counts as 1, as in the API), append a short suffix
            derived from the ``X-Harness-Sample`` header and the choice index, so repeats of one prompt
            get different (but reproducible) text.
        models: The ids listed by ``GET /v1/models``.
        batch: How the Files and Batches endpoints behave (see ``BatchFaults``).
        stream_first_token_ms: For ``stream: true``: the pause between the first event (the role) and the
            first event that carries a token.
        stream_chunk_ms: For ``stream: true``: the pause between later events.
        cached_tokens: Report this many prompt tokens (at most all of them) as served from the cache
            (``usage.prompt_tokens_details.cached_tokens``).
        reasoning_tokens: Report this many extra completion tokens per choice as reasoning
            (``usage.completion_tokens_details.reasoning_tokens``, included in ``completion_tokens``).
    """

    seed: int = 0
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    fault_rates: dict[Fault, float] = field(default_factory=dict)
    fault_paths: tuple[str, ...] = DEFAULT_FAULT_PATHS
    fail_first_n: int = 0
    fail_first_with: Fault = Fault.SERVER_ERROR
    always_fail: dict[str, Fault] = field(default_factory=dict)
    retry_after_s: float | None = 1.0
    retry_after_ms: float | None = None
    slow_s: float = 30.0
    trickle_s: float = 0.3
    huge_bytes: int = 16 * 1024 * 1024
    rules: dict[str, str] = field(default_factory=dict)
    tool_call: bool = False
    tool_name: str | None = None
    tool_arguments: dict[str, Any] | None = None
    tool_turns: int = 1
    moderation_words: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_MODERATION_WORDS))
    vary_by_sample: bool = False
    models: tuple[str, ...] = DEFAULT_MODELS
    batch: BatchFaults = field(default_factory=BatchFaults)
    stream_first_token_ms: float = 0.0
    stream_chunk_ms: float = 0.0
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    def __post_init__(self) -> None:
        # Normalise plain strings to Fault up front, so a typo fails at construction and not mid-test.
        self.fault_rates = {Fault(name): float(p) for name, p in self.fault_rates.items()}
        self.fail_first_with = Fault(self.fail_first_with)
        self.always_fail = {path: Fault(name) for path, name in self.always_fail.items()}
        self.fault_paths = tuple(self.fault_paths)
        self.models = tuple(self.models)
        for name, p in self.fault_rates.items():
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"fault_rates[{name!s}] must be within [0, 1], got {p}")
        if sum(self.fault_rates.values()) > 1.0 + 1e-9:
            raise ValueError("fault_rates must sum to at most 1")
        if self.fail_first_n < 0:
            raise ValueError("fail_first_n must be >= 0")
        if min(self.latency_ms, self.jitter_ms, self.slow_s, self.stream_first_token_ms, self.stream_chunk_ms) < 0:
            raise ValueError("latency_ms, jitter_ms, slow_s and the stream pauses must be >= 0")
        if self.cached_tokens < 0 or self.reasoning_tokens < 0:
            raise ValueError("cached_tokens and reasoning_tokens must be >= 0")

    def to_cli_args(self) -> list[str]:
        """The command-line flags that rebuild this config in process mode (see ``parse_args``)."""
        args = ["--seed", str(self.seed), "--latency-ms", repr(self.latency_ms),
                "--jitter-ms", repr(self.jitter_ms), "--slow-s", repr(self.slow_s),
                "--trickle-s", repr(self.trickle_s), "--huge-bytes", str(self.huge_bytes)]
        for fault, p in self.fault_rates.items():
            args += ["--fault", fault.value, repr(p)]
        for path in self.fault_paths:
            args += ["--fault-path", path]
        if self.fail_first_n:
            args += ["--fail-first-n", str(self.fail_first_n)]
        args += ["--fail-first-with", self.fail_first_with.value]
        for path, fault in self.always_fail.items():
            args += ["--always-fail", path, fault.value]
        if self.retry_after_s is None:
            args.append("--no-retry-after")
        else:
            args += ["--retry-after", repr(self.retry_after_s)]
        if self.retry_after_ms is not None:
            args += ["--retry-after-ms", repr(self.retry_after_ms)]
        for substring, reply in self.rules.items():
            args += ["--rule", substring, reply]
        if self.tool_call:
            args.append("--tool-call")
        if self.tool_name is not None:
            args += ["--tool-name", self.tool_name]
        if self.tool_arguments is not None:
            args += ["--tool-arguments", json.dumps(self.tool_arguments)]
        args += ["--tool-turns", str(self.tool_turns), "--moderation-words", json.dumps(self.moderation_words)]
        if self.vary_by_sample:
            args.append("--vary-by-sample")
        for model in self.models:
            args += ["--model", model]
        args += ["--batch-polls", str(self.batch.polls_to_complete)]
        args += ["--stream-first-token-ms", repr(self.stream_first_token_ms),
                 "--stream-chunk-ms", repr(self.stream_chunk_ms),
                 "--cached-tokens", str(self.cached_tokens), "--reasoning-tokens", str(self.reasoning_tokens)]
        return args


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m harness.testing.fault_server",
        description="Fault-injecting OpenAI-compatible server on 127.0.0.1; prints its base URL when ready.",
    )
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--jitter-ms", type=float, default=0.0)
    p.add_argument("--fault", nargs=2, action="append", default=[], metavar=("FAULT", "P"),
                   help=f"probability of a fault; FAULT is one of {', '.join(f.value for f in Fault)}")
    p.add_argument("--fault-path", action="append", default=None, metavar="PATH",
                   help="path subject to --fault/--fail-first-n (repeatable; default: the completion paths)")
    p.add_argument("--fail-first-n", type=int, default=0)
    p.add_argument("--fail-first-with", default=Fault.SERVER_ERROR.value)
    p.add_argument("--always-fail", nargs=2, action="append", default=[], metavar=("PATH", "FAULT"),
                   help="fail every request to PATH ('*' for all /v1 paths)")
    p.add_argument("--retry-after", type=float, default=1.0, dest="retry_after_s")
    p.add_argument("--no-retry-after", action="store_const", const=None, dest="retry_after_s")
    p.add_argument("--retry-after-ms", type=float, default=None)
    p.add_argument("--slow-s", type=float, default=30.0)
    p.add_argument("--trickle-s", type=float, default=0.3)
    p.add_argument("--huge-bytes", type=int, default=16 * 1024 * 1024)
    p.add_argument("--rule", nargs=2, action="append", default=[], metavar=("SUBSTRING", "REPLY"))
    p.add_argument("--tool-call", action="store_true")
    p.add_argument("--tool-name", default=None)
    p.add_argument("--tool-arguments", type=json.loads, default=None, metavar="JSON")
    p.add_argument("--tool-turns", type=int, default=1)
    p.add_argument("--moderation-words", type=json.loads, default=DEFAULT_MODERATION_WORDS, metavar="JSON",
                   help="word -> category that /v1/moderations flags")
    p.add_argument("--vary-by-sample", action="store_true")
    p.add_argument("--model", action="append", default=None, dest="models")
    p.add_argument("--batch-polls", type=int, default=2, help="status requests a batch answers before it is done")
    p.add_argument("--stream-first-token-ms", type=float, default=0.0)
    p.add_argument("--stream-chunk-ms", type=float, default=0.0)
    p.add_argument("--cached-tokens", type=int, default=0)
    p.add_argument("--reasoning-tokens", type=int, default=0)
    return p


def parse_args(argv: Sequence[str] | None = None) -> tuple[FaultConfig, int]:
    """Parse process-mode flags into (config, port)."""
    ns = _parser().parse_args(argv)
    config = FaultConfig(
        seed=ns.seed,
        latency_ms=ns.latency_ms,
        jitter_ms=ns.jitter_ms,
        fault_rates={Fault(name): float(p) for name, p in ns.fault},
        fault_paths=tuple(ns.fault_path) if ns.fault_path else DEFAULT_FAULT_PATHS,
        fail_first_n=ns.fail_first_n,
        fail_first_with=Fault(ns.fail_first_with),
        always_fail={path: Fault(name) for path, name in ns.always_fail},
        retry_after_s=ns.retry_after_s,
        retry_after_ms=ns.retry_after_ms,
        slow_s=ns.slow_s,
        trickle_s=ns.trickle_s,
        huge_bytes=ns.huge_bytes,
        rules=dict(ns.rule),
        tool_call=ns.tool_call,
        tool_name=ns.tool_name,
        tool_arguments=ns.tool_arguments,
        tool_turns=ns.tool_turns,
        moderation_words=dict(ns.moderation_words),
        vary_by_sample=ns.vary_by_sample,
        models=tuple(ns.models) if ns.models else DEFAULT_MODELS,
        batch=BatchFaults(polls_to_complete=ns.batch_polls),
        stream_first_token_ms=ns.stream_first_token_ms,
        stream_chunk_ms=ns.stream_chunk_ms,
        cached_tokens=ns.cached_tokens,
        reasoning_tokens=ns.reasoning_tokens,
    )
    return config, ns.port
