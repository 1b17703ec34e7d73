"""The provider: one ``AsyncOpenAI`` (or ``AsyncAzureOpenAI``) client per endpoint-model, and one call.

The SDK's own retries are off (``max_retries=0``): the scheduler retries with its own backoff, so it can
honour ``Retry-After``, bound the total retry budget and tell an outage from a blip. Requests go out with
the exact rendered body through ``client.post`` so OpenAI-compatible servers get extra params untouched.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import httpx2

from harness.errors import HarnessError, ReplayMissError
from harness.execute.failures import CallFailed as CallFailed  # re-exported: callers import them from here
from harness.execute.failures import bad_response, cause_chain, error_in_body
from harness.execute.failures import classify as classify
from harness.execute.failures import retry_after_seconds as retry_after_seconds
from harness.execute.replay import RECORDED_LATENCY
from harness.execute.streaming import assemble_chat, assemble_text
from harness.grade.base import Output, ToolCall
from harness.render import SAMPLE_HEADER, Request
from harness.store import TrialError
from harness.suite.model import ModelSpec

if TYPE_CHECKING:  # the SDK is imported where a client is made: a replay answered from cassettes never needs it
    import openai

NO_KEY_PLACEHOLDER = "no-key"  # sent to servers that need none; never a real credential


@dataclass(frozen=True)
class Completion:
    """What one successful call returned, reduced to what grading and stats need.

    ``text``, ``tool_calls`` and ``finish_reason`` are the first choice's; a request with ``n`` > 1 has every
    choice, in index order, in ``choices`` (see ``outputs``).
    """

    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    # The latency stored with a recording (replays report it instead of their own near-zero time).
    recorded_latency_ms: float | None = None
    batch: bool = False  # answered by a batch job: no latency of its own, billed at the batch rate
    # Time to the first content or tool-call delta of a streamed reply: recorded, or measured when live.
    ttft_ms: float | None = None
    choices: tuple[Output, ...] = ()

    def outputs(self) -> tuple[Output, ...]:
        """Every choice's output (one unless the request asked for ``n`` > 1)."""
        return self.choices or (Output(self.text, self.tool_calls, self.finish_reason),)


class MissingKeyError(HarnessError):
    pass


def resolve_api_key(model: ModelSpec, needed: bool) -> str:
    """The key from the variable the suite names. Replays need none and send a placeholder."""
    if not model.api_key_env:
        return NO_KEY_PLACEHOLDER
    value = os.environ.get(model.api_key_env)
    if value:
        return value
    if needed:
        raise MissingKeyError(
            f"model {model.id!r}: environment variable {model.api_key_env} is not set. Set it to call the "
            f"API, or replay recorded cassettes with --record replay"
        )
    return NO_KEY_PLACEHOLDER


def make_client(model: ModelSpec, api_key: str, transport: httpx2.AsyncBaseTransport | None,
                max_connections: int) -> openai.AsyncOpenAI:
    import openai

    limits = httpx2.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    http_client = httpx2.AsyncClient(
        transport=transport or httpx2.AsyncHTTPTransport(limits=limits),
        timeout=model.timeout, limits=limits,
    )
    if model.provider == "azure":
        return openai.AsyncAzureOpenAI(
            azure_endpoint=model.base_url or "", api_version=model.api_version, api_key=api_key,
            max_retries=0, http_client=http_client, timeout=model.timeout,
        )
    return openai.AsyncOpenAI(
        base_url=model.base_url, api_key=api_key, max_retries=0, http_client=http_client,
        timeout=model.timeout,
    )


async def call(client: openai.AsyncOpenAI, request: Request, timeout: float,
               key_env: str | None = None) -> Completion:
    """Send one request; raise ``CallFailed`` with a classified error on any failure.

    ``timeout`` is a total deadline for the whole attempt (connect, send, every byte of the answer): the
    HTTP client's own timeouts apply per read, so a server trickling a byte at a time would never trip
    them. ``key_env`` names the key's variable in error messages. A ``HarnessError`` raised on the way (a
    cassette that cannot be written: disk full) is not the trial's fault and stops the run.
    """
    options: Any = {"headers": {SAMPLE_HEADER: request.sample}, "timeout": timeout}
    holder: dict[str, float] = {}
    token = RECORDED_LATENCY.set(holder)
    try:
        async with asyncio.timeout(timeout):
            completion = await _send(client, request, options)
    except CallFailed:
        raise
    except TimeoutError as exc:
        raise CallFailed(TrialError("timeout", f"no complete answer within the {timeout:g} s timeout"),
                         retryable=True) from exc
    except Exception as exc:  # noqa: BLE001 - every failure becomes a recorded, classified trial error
        stop = next((n for n in cause_chain(exc) if isinstance(n, HarnessError) and not isinstance(n, ReplayMissError)),
                    None)
        if stop is not None:
            raise stop from None
        raise classify(exc, key_env) from exc
    finally:
        RECORDED_LATENCY.reset(token)
    if "latency_ms" in holder:
        completion = replace(completion, recorded_latency_ms=holder["latency_ms"])
    if holder.get("batch"):
        completion = replace(completion, batch=True)
    if "ttft_ms" in holder:
        completion = replace(completion, ttft_ms=holder["ttft_ms"])
    return checked_choices(completion, request)


async def _send(client: openai.AsyncOpenAI, request: Request, options: Any) -> Completion:
    from openai.types import Completion as TextCompletion
    from openai.types.chat import ChatCompletion

    if request.body.get("stream") is True:
        return await _streamed(client, request, options)
    if request.api == "chat":
        chat = await client.post("/chat/completions", cast_to=ChatCompletion, body=request.body, options=options)
        return _from_chat(chat)
    text = await client.post("/completions", cast_to=TextCompletion, body=request.body, options=options)
    return _from_text(text)


async def _streamed(client: openai.AsyncOpenAI, request: Request, options: Any) -> Completion:
    import openai
    from openai.types import Completion as TextCompletion
    from openai.types.chat import ChatCompletionChunk

    started = time.perf_counter()
    chat = request.api == "chat"
    chunk_type: Any = ChatCompletionChunk if chat else TextCompletion
    stream = await client.post(request.path, cast_to=chunk_type, body=request.body, options=options,
                               stream=True, stream_cls=openai.AsyncStream[chunk_type])
    try:
        result = await (assemble_chat if chat else assemble_text)(stream, started)
    except (openai.APIConnectionError, httpx2.TransportError) as exc:  # the connection broke mid-stream
        root = cause_chain(exc)[-1]
        raise CallFailed(TrialError("stream", f"the stream broke: {type(root).__name__}: {root}"),
                         retryable=True) from exc
    if not result.outputs:
        raise bad_response("the stream carried no choices")
    unfinished = [i for i, out in enumerate(result.outputs) if not out.finish_reason]
    if unfinished:
        # A live stream cut short: never graded as if complete (a recording transport refuses it earlier).
        raise CallFailed(TrialError("stream", f"the stream ended before choice {unfinished[0]} finished"),
                         retryable=True)
    return completion_of(list(result.outputs), _usage(result.usage), ttft_ms=result.ttft_ms)


def completion_of(outputs: list[Output], usage: dict[str, int], *, ttft_ms: float | None = None,
                  recorded_latency_ms: float | None = None, batch: bool = False) -> Completion:
    """The completion holding ``outputs`` (one per choice, in index order) and the call's token counts."""
    first = outputs[0]
    return Completion(text=first.text, tool_calls=first.tool_calls, finish_reason=first.finish_reason, usage=usage,
                      ttft_ms=ttft_ms, choices=tuple(outputs) if len(outputs) > 1 else (),
                      recorded_latency_ms=recorded_latency_ms, batch=batch)


def checked_choices(completion: Completion, request: Request) -> Completion:
    """``completion``, unless it has fewer or more choices than the request's ``n`` asked for."""
    wanted = request.body.get("n", 1)
    got = len(completion.outputs())
    if isinstance(wanted, int) and got != wanted:
        # An endpoint that ignores n (some OpenAI-compatible servers do) would silently shrink the sample.
        raise CallFailed(TrialError("client", f"asked for n={wanted} choices, the endpoint returned {got}: it "
                                              f"does not support n here; use repeats instead"), retryable=False)
    return completion


def recorded_completion(api: str, content: bytes) -> Completion:
    """A recorded response body as the completion a call would have returned (for offline walks)."""
    from openai.types import Completion as TextCompletion
    from openai.types.chat import ChatCompletion

    if api == "chat":
        return _from_chat(ChatCompletion.model_validate_json(content))
    return _from_text(TextCompletion.model_validate_json(content))


def _usage(usage: Any) -> dict[str, int]:
    """Token counts of one call; cached prompt and reasoning tokens when the provider reports them."""
    if usage is None:
        return {}
    out = {
        "prompt_tokens": int(getattr(usage, "prompt_tokens", 0) or 0),
        "completion_tokens": int(getattr(usage, "completion_tokens", 0) or 0),
    }
    cached = getattr(getattr(usage, "prompt_tokens_details", None), "cached_tokens", None)
    reasoning = getattr(getattr(usage, "completion_tokens_details", None), "reasoning_tokens", None)
    if cached:
        out["cached_tokens"] = int(cached)
    if reasoning:
        out["reasoning_tokens"] = int(reasoning)
    return out


def _no_choices(parsed: Any) -> CallFailed:
    message = error_in_body(parsed)
    if message is not None:  # a 200 carrying an error object: the provider's words, not "malformed"
        return CallFailed(TrialError("server", f"the provider answered 200 with an error: {message}"),
                          retryable=True)
    return bad_response("no choices in the completion")


def _from_chat(chat: Any) -> Completion:
    choices = getattr(chat, "choices", None)
    if not isinstance(choices, list) or not choices:
        raise _no_choices(chat)
    outputs = []
    for choice in sorted(choices, key=lambda c: getattr(c, "index", 0) or 0):
        message = getattr(choice, "message", None)
        if message is None:
            raise bad_response(f"no message in choice {getattr(choice, 'index', 0)}")
        calls = tuple(
            ToolCall(name=c.function.name, arguments=c.function.arguments or "", id=c.id or "")
            for c in (message.tool_calls or [])
            if getattr(c, "function", None) is not None
        )
        legacy = getattr(message, "function_call", None)  # the older `functions` API: one call, no id
        if legacy is not None and not calls:
            calls = (ToolCall(name=legacy.name or "", arguments=legacy.arguments or ""),)
        outputs.append(Output(message.content or "", calls, choice.finish_reason))
    return completion_of(outputs, _usage(getattr(chat, "usage", None)))


def _from_text(completion: Any) -> Completion:
    choices = getattr(completion, "choices", None)
    if not isinstance(choices, list) or not choices:
        raise _no_choices(completion)
    outputs = [Output(choice.text or "", (), choice.finish_reason)
               for choice in sorted(choices, key=lambda c: getattr(c, "index", 0) or 0)]
    return completion_of(outputs, _usage(getattr(completion, "usage", None)))
