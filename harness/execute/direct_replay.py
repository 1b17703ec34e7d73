"""Replayed answers read straight from the cassette, without the SDK.

Why: in a replay nothing goes over the network, yet each trial went through the whole SDK (building an HTTP
request, sending it to the recording transport, parsing the answer into pydantic models): half of a replay's
time per trial, and importing the SDK (a second of CPU, 40 MB) was a third of a 1,000-trial replay.

What is taken on here is only what can be answered exactly as the SDK path answers it; everything else
returns None and goes the usual way (which also gives every error its usual words):

- the request: not streamed, to a plain OpenAI-compatible endpoint (not Azure, whose paths the SDK builds);
  its match key is computed from the body the SDK would send (in canonical form directly), with the path the
  SDK would use. A key
  computed differently would only miss here and be looked up again by the transport, never hit wrongly:
  the key hashes the method, path, sample and canonical body, so equal keys are equal requests.
- the recording: a 200 whose body is JSON of exactly the expected shape, every field the harness reads of
  the type the API documents (``parse_chat``/``parse_text``); for those the SDK's models hold the same
  values, so the completion is the same. ``tests/test_direct_replay.py`` compares the two on every recording
  under ``suites/`` and on bodies built to differ.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import urlsplit

from harness.execute.cassette import Cassette
from harness.execute.interaction import json_match_key
from harness.execute.provider import Completion, checked_choices, completion_of
from harness.grade.base import Output, ToolCall
from harness.render import Request
from harness.suite.model import ModelSpec

# Where the SDK sends a request when neither the suite nor the environment names a base URL.
DEFAULT_BASE_URL = "https://api.openai.com/v1"


class DirectReplay:
    """Answers for one model's replayed requests, from its cassette.

    Args:
        cassette: the model's open cassette (lookups mark recordings used, as the transport's do).
        model: the model: its base URL gives the path every request key includes.
    """

    def __init__(self, cassette: Cassette, model: ModelSpec) -> None:
        self.cassette = cassette
        base = model.base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        parts = urlsplit(base)
        # The SDK joins paths to the base URL's path; a base URL with a query string is left to it.
        self.prefix = None if model.provider == "azure" or parts.query else parts.path.rstrip("/")
        self.hits = 0

    def answer(self, request: Request) -> Completion | None:
        """The recorded completion for ``request``, or None when the SDK path must answer it."""
        if self.prefix is None or request.body.get("stream") is True:
            return None
        key = json_match_key("POST", self.prefix + request.path, request.sample, request.body)
        found = self.cassette.lookup(key) if key is not None else None
        # A 200 only (a recording that is no answer at all is the SDK path's to report, with its words).
        if found is None or found.status != 200:
            return None
        # The SDK parses JSON only under a JSON content type (anything else comes back as text: an error).
        content_type = next((v for n, v in found.headers if n.lower() == "content-type"), "*")
        if not content_type.split(";")[0].strip().endswith("json"):
            return None
        try:
            document = json.loads(found.content)
        except (ValueError, RecursionError):
            return None
        parsed = parse_chat(document) if request.api == "chat" else parse_text(document)
        if parsed is None:
            return None
        outputs, usage = parsed
        completion = completion_of(outputs, usage, ttft_ms=found.ttft_ms, recorded_latency_ms=found.latency_ms,
                                   batch=found.from_batch)
        self.hits += 1
        return checked_choices(completion, request)


def _str(value: Any) -> bool:
    return type(value) is str


def _optional_str(value: Any) -> bool:
    return value is None or type(value) is str


def _count(value: Any) -> bool:
    return type(value) is int and value >= 0


def parse_usage(usage: Any) -> dict[str, int] | None:
    """Token counts as the provider reports them (None: a shape to leave to the SDK)."""
    if usage is None:
        return {}
    if type(usage) is not dict:
        return None
    prompt, completion = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
    if not (_count(prompt) and _count(completion)):
        return None
    out = {"prompt_tokens": prompt, "completion_tokens": completion}
    for details, field, name in (("prompt_tokens_details", "cached_tokens", "cached_tokens"),
                                 ("completion_tokens_details", "reasoning_tokens", "reasoning_tokens")):
        detail = usage.get(details)
        if detail is None:
            continue
        if type(detail) is not dict:
            return None
        value = detail.get(field)
        if value is None:
            continue
        if not _count(value):
            return None
        if value:
            out[name] = value
    return out


def _choices(document: Any) -> list[dict[str, Any]] | None:
    if type(document) is not dict:
        return None
    choices = document.get("choices")
    if type(choices) is not list or not choices or not all(type(c) is dict for c in choices):
        return None
    if not all(type(c.get("index", 0)) is int and _optional_str(c.get("finish_reason")) for c in choices):
        return None
    return sorted(choices, key=lambda c: c.get("index", 0))


def _tool_calls(message: dict[str, Any]) -> tuple[ToolCall, ...] | None:
    calls = message.get("tool_calls")
    if calls is None:
        calls = []
    if type(calls) is not list:
        return None
    out = []
    for call in calls:
        if type(call) is not dict or not _optional_str(call.get("id")):
            return None
        function = call.get("function")
        if function is None:
            continue  # the SDK path skips a call without a function too
        if type(function) is not dict or not _str(function.get("name")):
            return None
        if not _optional_str(function.get("arguments")):
            return None
        out.append(ToolCall(name=function["name"], arguments=function.get("arguments") or "", id=call.get("id") or ""))
    legacy = message.get("function_call")
    if legacy is not None and not out:  # the older `functions` API: one call, no id
        if type(legacy) is not dict or not _optional_str(legacy.get("name")):
            return None
        if not _optional_str(legacy.get("arguments")):
            return None
        out.append(ToolCall(name=legacy.get("name") or "", arguments=legacy.get("arguments") or ""))
    return tuple(out)


def parse_chat(document: Any) -> tuple[list[Output], dict[str, int]] | None:
    """A chat completion's choices and usage, or None when its shape is not the documented one."""
    choices = _choices(document)
    usage = parse_usage(document.get("usage")) if choices is not None else None
    if choices is None or usage is None:
        return None
    outputs = []
    for choice in choices:
        message = choice.get("message")
        if type(message) is not dict or not _optional_str(message.get("content")):
            return None
        calls = _tool_calls(message)
        if calls is None:
            return None
        outputs.append(Output(message.get("content") or "", calls, choice.get("finish_reason")))
    return outputs, usage


def parse_text(document: Any) -> tuple[list[Output], dict[str, int]] | None:
    """A legacy text completion's choices and usage, or None when its shape is not the documented one."""
    choices = _choices(document)
    usage = parse_usage(document.get("usage")) if choices is not None else None
    if choices is None or usage is None or not all(_optional_str(c.get("text")) for c in choices):
        return None
    return [Output(c.get("text") or "", (), c.get("finish_reason")) for c in choices], usage
