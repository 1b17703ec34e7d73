"""What the fault server answers: OpenAI-shaped completions, model lists and errors, and which fault to inject.

Everything here is a deterministic function of the config, the request and its attempt number: ids, fault
draws and per-sample text variations come from a hash, never from a random generator.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from . import features
from .config import DEFAULT_MODELS, Fault, FaultConfig
from .http1 import Request
from .sse import chat_events, encode, text_events

_MAX_N = 128

# The ``malformed`` fault's body: declared as JSON, but it stops mid-object.
_TRUNCATED_JSON = b'{"id": "broken", "object": "chat.completion", "choices": [{"ind'

# status, error type, error code, message for the faults that answer with an OpenAI-style error body.
_ERROR_FAULTS: dict[Fault, tuple[int, str, str | None, str]] = {
    Fault.RATE_LIMIT: (429, "requests", "rate_limit_exceeded", "Rate limit reached (injected)."),
    Fault.SERVER_ERROR: (500, "server_error", None, "The server had an error (injected)."),
    Fault.UNAVAILABLE: (503, "server_error", "service_unavailable", "The server is overloaded (injected)."),
    Fault.BAD_REQUEST: (400, "invalid_request_error", "invalid_request", "Invalid request (injected)."),
    Fault.UNAUTHORIZED: (401, "invalid_request_error", "invalid_api_key", "Incorrect API key (injected)."),
    Fault.NOT_FOUND: (404, "invalid_request_error", "model_not_found", "No such model (injected)."),
    Fault.QUOTA: (429, "insufficient_quota", "insufficient_quota",
                  "You exceeded your current quota, please check your plan and billing details (injected)."),
    Fault.ERROR_200: (200, "server_error", "upstream_error", "The upstream model is overloaded (injected)."),
}

Reply = tuple[int, bytes, str, list[tuple[str, str]]]  # status, body, content type, extra headers


class ApiError(Exception):
    """A well-formed HTTP request the API rejects (bad JSON, missing fields); the connection stays open."""

    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param


def digest(*parts: bytes) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        # Length-prefix each part so ("ab", "c") and ("a", "bc") hash differently.
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.digest()


def unit(*parts: bytes) -> float:
    """A number in [0, 1) that is a deterministic function of ``parts``."""
    return int.from_bytes(digest(*parts)[:8], "little") / 2.0**64


def sample_suffix(sample: str, index: int) -> str:
    """What ``vary_by_sample`` appends to choice ``index`` of a request with sample header ``sample``."""
    return " ~" + digest(b"sample", sample.encode(), str(index).encode()).hex()[:8]


def error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> bytes:
    return json.dumps({"error": {"message": message, "type": type_, "param": param, "code": code}}).encode()


def choose_fault(config: FaultConfig, path: str, key: bytes, attempt: int) -> Fault | None:
    forced = config.always_fail.get(path) or config.always_fail.get("*")
    if forced is not None:
        return forced
    if path not in config.fault_paths:
        return None
    if attempt <= config.fail_first_n:
        return config.fail_first_with
    if config.fault_rates:
        u = unit(b"fault", str(config.seed).encode(), key, str(attempt).encode())
        # Walk the faults in a fixed order so the outcome does not depend on the dict's insertion order.
        cumulative = 0.0
        for fault in Fault:
            cumulative += config.fault_rates.get(fault, 0.0)
            if u < cumulative:
                return fault
    return None


def respond(config: FaultConfig, request: Request, fault: Fault | None, key: bytes, sample: str) -> Reply:
    """The reply to a ``/v1`` request once any delay is over (``drop`` is the caller's business)."""
    headers: list[tuple[str, str]] = []
    if fault in _ERROR_FAULTS:
        status, type_, code, message = _ERROR_FAULTS[fault]  # type: ignore[index]
        if fault is Fault.RATE_LIMIT:
            if config.retry_after_s is not None:
                headers.append(("retry-after", _format_number(config.retry_after_s)))
            if config.retry_after_ms is not None:
                headers.append(("retry-after-ms", _format_number(config.retry_after_ms)))
        return status, error_body(message, type_, code), "application/json", headers
    if fault is Fault.MALFORMED:
        return 200, _TRUNCATED_JSON, "application/json", headers
    if fault is Fault.HUGE:
        message = {"role": "assistant", "content": "x" * config.huge_bytes}
        body = {"id": "huge-" + key.hex()[:16], "object": "chat.completion", "created": int(time.time()),
                "model": DEFAULT_MODELS[0], "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}
        return 200, json.dumps(body).encode(), "application/json", headers
    if fault is Fault.NO_CHOICES:
        body = {"id": "nochoices-" + key.hex()[:16], "object": "chat.completion", "created": int(time.time())}
        return 200, json.dumps(body).encode(), "application/json", headers
    try:
        if request.path == "/v1/models" and request.method == "GET":
            return 200, json.dumps(_models(config)).encode(), "application/json", headers
        if request.path == "/v1/moderations" and request.method == "POST":
            reply = features.moderation(config, _json_body(request.body), "modr-" + key.hex()[:24])
            return 200, json.dumps(reply).encode(), "application/json", headers
        if request.path in ("/v1/chat/completions", "/v1/completions") and request.method == "POST":
            payload = _json_body(request.body)
            chat = request.path == "/v1/chat/completions"
            reply = _completion(config, payload, key, sample, chat)
            if payload.get("stream"):
                include_usage = bool((payload.get("stream_options") or {}).get("include_usage"))
                events = (chat_events if chat else text_events)(reply, include_usage)
                return 200, b"".join(encode(events)), "text/event-stream", headers
            return 200, json.dumps(reply).encode(), "application/json", headers
        raise ApiError(404, f"no route for {request.method} {request.path}")
    except ApiError as exc:
        return exc.status, error_body(exc.message, "invalid_request_error", None, exc.param), \
            "application/json", headers


def _json_body(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except ValueError:
        raise ApiError(400, "request body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "request body must be a JSON object")
    return payload


def _models(config: FaultConfig) -> dict[str, Any]:
    data = [{"id": m, "object": "model", "created": 0, "owned_by": "fault-server"} for m in config.models]
    return {"object": "list", "data": data}


def _text_of(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = (part.get("text") for part in content if isinstance(part, dict))
        return "".join(text for text in texts if isinstance(text, str))
    return ""


def _count_tokens(text: str) -> int:
    # Whitespace words: a deterministic stand-in that tests can compute for themselves.
    return len(text.split())


def _truncate(text: str, max_tokens: Any) -> tuple[str, str]:
    """Cut ``text`` to ``max_tokens`` words as the API would; return (text, finish_reason)."""
    if isinstance(max_tokens, int) and max_tokens >= 0:
        words = text.split()
        if len(words) > max_tokens:
            return " ".join(words[:max_tokens]), "length"
    return text, "stop"


def _completion(config: FaultConfig, payload: dict[str, Any], key: bytes, sample: str, chat: bool) -> dict[str, Any]:
    n = payload.get("n")
    n = 1 if n is None else n
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= _MAX_N:
        raise ApiError(400, f"n must be an integer in [1, {_MAX_N}]", "n")
    temperature = payload.get("temperature")
    temperature = 1.0 if temperature is None else temperature
    vary = config.vary_by_sample and isinstance(temperature, int | float) and temperature > 0
    max_tokens = payload.get("max_completion_tokens", payload.get("max_tokens"))

    if chat:
        messages = payload.get("messages")
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise ApiError(400, "messages must be a list of objects", "messages")
        users = [m for m in messages if m.get("role") == "user"]
        last_user = users[-1].get("content") if users else ""
        prompts = [features.final_prompt(messages) or _text_of(last_user) + features.image_summary(last_user)]
        prompt_tokens = sum(_count_tokens(_text_of(m.get("content"))) for m in messages)
    else:
        prompt = payload.get("prompt", "")
        if isinstance(prompt, str):
            prompts = [prompt]
        elif isinstance(prompt, list) and all(isinstance(p, str) for p in prompt):
            prompts = list(prompt)
        elif isinstance(prompt, list) and all(isinstance(p, int) for p in prompt):
            prompts = [" ".join(map(str, prompt))]  # a token-id prompt: echo the ids as text
        else:
            raise ApiError(400, "prompt must be a string or a list of strings or token ids", "prompt")
        prompt_tokens = sum(_count_tokens(p) for p in prompts)

    choices: list[dict[str, Any]] = []
    completion_tokens = 0
    for prompt_text in prompts:
        base = next((reply for sub, reply in config.rules.items() if sub in prompt_text), prompt_text)
        for _ in range(n):
            index = len(choices)
            text = base + sample_suffix(sample, index) if vary else base
            text, finish = _truncate(text, max_tokens)
            if chat and features.wants_tool_call(config, messages):
                call_id = f"call_{digest(key, str(index).encode()).hex()[:24]}"
                message, finish = features.tool_call_message(config, payload, call_id, text)
                choices.append({"index": index, "message": message, "finish_reason": finish, "logprobs": None})
                call = message.get("function_call") or message["tool_calls"][0]["function"]
                completion_tokens += _count_tokens(call["arguments"])
            elif chat:
                message = {"role": "assistant", "content": text, "refusal": None}
                choices.append({"index": index, "message": message, "finish_reason": finish, "logprobs": None})
                completion_tokens += _count_tokens(text)
            else:
                choices.append({"index": index, "text": text, "finish_reason": finish, "logprobs": None})
                completion_tokens += _count_tokens(text)

    model = payload.get("model")
    return {
        "id": ("chatcmpl-" if chat else "cmpl-") + key.hex()[:24],
        "object": "chat.completion" if chat else "text_completion",
        "created": int(time.time()),
        "model": model if isinstance(model, str) else DEFAULT_MODELS[0],
        "system_fingerprint": "fault-server",
        "choices": choices,
        "usage": _usage(config, prompt_tokens, completion_tokens, len(choices)),
    }


def _usage(config: FaultConfig, prompt_tokens: int, completion_tokens: int, choices: int) -> dict[str, Any]:
    reasoning = config.reasoning_tokens * choices
    completion_tokens += reasoning
    usage: dict[str, Any] = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                             "total_tokens": prompt_tokens + completion_tokens}
    if config.cached_tokens:
        usage["prompt_tokens_details"] = {"cached_tokens": min(config.cached_tokens, prompt_tokens)}
    if reasoning:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return usage


def _format_number(value: float) -> str:
    # Integral values as integers: the HTTP Retry-After grammar is delay-seconds = 1*DIGIT.
    return str(int(value)) if float(value).is_integer() else repr(float(value))
