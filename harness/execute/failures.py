"""Why a call failed, in words a user can act on, and whether retrying it can help.

``classify`` turns whatever the SDK or the transport raised into a ``CallFailed``: a ``TrialError`` (kind and
message) plus the scheduler's steering (retryable, Retry-After, counts towards an outage). The messages name
what to fix: a rejected key names its variable, an exhausted quota says so instead of "rate limit", a bad
recording names its cassette.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import httpx2

from harness.store import TrialError

if TYPE_CHECKING:  # the SDK is imported where a call is made: a replay answered from cassettes never needs it
    import openai


class CallFailed(Exception):
    """A call that produced no completion; ``retryable`` and ``retry_after`` steer the scheduler."""

    def __init__(self, error: TrialError, retryable: bool, retry_after: float | None = None,
                 connection: bool = False, stop_model: bool = False) -> None:
        super().__init__(error.message)
        self.error = error
        self.retryable = retryable
        self.retry_after = retry_after
        self.connection = connection  # nothing reached the server: counts towards outage detection
        self.stop_model = stop_model  # no later call to this endpoint can succeed (an exhausted quota)


class BadRecording(httpx2.RequestError):
    """A cassette answered a request with something no real call returns (a 5xx, a 200 whose JSON body does
    not parse): replaying it again cannot help, so it fails at once, naming the cassette."""


class ResponseTooLarge(httpx2.RequestError):
    """An answer bigger than the model's ``max_response_bytes``: dropped while it arrives, never stored."""


def bad_response(detail: str) -> CallFailed:
    return CallFailed(TrialError("bad_response", f"malformed response: {detail}"), retryable=True)


def cause_chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    seen: set[int] = set()
    node: BaseException | None = exc
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        chain.append(node)
        node = node.__cause__ or node.__context__
    return chain


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds to wait per ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _error_object(body: Any) -> dict[str, Any] | None:
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return inner
    return None


def _status_message(exc: openai.APIStatusError) -> str:
    inner = _error_object(exc.body)
    if inner is not None and inner.get("message"):
        return str(inner["message"])
    return exc.message


def error_in_body(parsed: Any) -> str | None:
    """The provider's message when a 200 answer is an error object (``{"error": {...}}``), else None."""
    extra = getattr(parsed, "model_extra", None) or {}
    error = extra.get("error")
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error) if error else None


def classify(exc: BaseException, key_env: str | None = None) -> CallFailed:
    """The ``CallFailed`` for an exception from a call. ``key_env``: the variable holding the model's key."""
    import openai

    for node in cause_chain(exc):
        if type(node).__name__ == "ReplayMiss":
            return CallFailed(TrialError("replay_miss", str(node)), retryable=False)
        if isinstance(node, BadRecording):
            return CallFailed(TrialError("bad_recording", str(node)), retryable=False)
        if isinstance(node, ResponseTooLarge):
            return CallFailed(TrialError("too_large", str(node)), retryable=False)
        if type(node).__name__ == "StreamBroken":
            return CallFailed(TrialError("stream", str(node)), retryable=True)
    if isinstance(exc, openai.APIStatusError):
        return _from_status(exc, key_env)
    if isinstance(exc, openai.APITimeoutError | TimeoutError):
        return CallFailed(TrialError("timeout", "request timed out"), retryable=True)
    if isinstance(exc, openai.APIConnectionError):
        root = cause_chain(exc)[-1]
        detail = f"{type(root).__name__}: {root}" if root is not exc else "connection error"
        refused = isinstance(root, ConnectionRefusedError | httpx2.ConnectError) or "refused" in detail.lower()
        return CallFailed(TrialError("connection", detail), retryable=True, connection=refused)
    if isinstance(exc, openai.APIResponseValidationError | ValueError | AttributeError):
        return bad_response(f"{type(exc).__name__}: {exc}")
    return CallFailed(TrialError("other", f"{type(exc).__name__}: {exc}"), retryable=False)


def _from_status(exc: openai.APIStatusError, key_env: str | None) -> CallFailed:
    status = exc.status_code
    message = f"HTTP {status}: {_status_message(exc)}"
    key = f"the key in {key_env}" if key_env else "the key"
    if status == 429:
        inner = _error_object(exc.body) or {}
        if inner.get("code") == "insufficient_quota" or inner.get("type") == "insufficient_quota":
            # A billing stop, not a rate limit: waiting does not help, and neither does any other trial.
            return CallFailed(TrialError("quota", f"quota exhausted for {key} ({message})", status),
                              retryable=False, stop_model=True)
        return CallFailed(TrialError("rate_limit", message, status), True, retry_after_seconds(exc.response.headers))
    if status >= 500 or status in (408, 409):
        return CallFailed(TrialError("server", message, status), True, retry_after_seconds(exc.response.headers))
    if status in (401, 403):
        verdict = "was rejected" if status == 401 else "is not allowed to do this"
        return CallFailed(TrialError("auth", f"{key} {verdict} ({message})", status), retryable=False)
    kind = "not_found" if status == 404 else "client"
    return CallFailed(TrialError(kind, message, status), retryable=False)
