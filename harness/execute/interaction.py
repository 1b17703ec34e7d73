"""One recorded exchange (``Interaction``) in vcrpy's on-disk form, and the match key that finds it.

A **match key** per request is the sha256 of method, path, sample key and canonical JSON body, stored in each
request as the ``x-harness-match-key`` header so loading builds the index without re-hashing (a header, not an
extra request field, because ``vcr.request.Request(**dct)`` rejects unknown fields). Only allow-listed headers
are kept (content-type, plus the sample and match-key headers on requests): keys, cookies, organisation names,
SDK fingerprints and request ids are never stored. Bodies that are not UTF-8 are stored as
``{"base64_string": ...}``: vcrpy's JSON serializer refuses them outright.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from vcr.request import Request as VcrRequest
from vcr.serializers import compat

SAMPLE_HEADER = "x-harness-sample"
MATCH_KEY_HEADER = "x-harness-match-key"
# The upstream call's duration when it was recorded: a replay reports the recorded latency, so latency
# statistics of a replayed run are reproduced exactly instead of measuring a local file read.
LATENCY_HEADER = "x-harness-latency-ms"
# Marks an answer that came from a batch job: it has no latency of its own and is billed at the batch rate.
BATCH_HEADER = "x-harness-batch"
# Likewise the time to the first token of a streamed (SSE) answer, so a replay reproduces TTFT statistics.
TTFT_HEADER = "x-harness-ttft-ms"
TIMING_HEADERS = frozenset({LATENCY_HEADER, TTFT_HEADER})
# Part of every key: if the key recipe ever changes, old keys can never silently match new requests.
_KEY_SCHEME = b"prompt-harness/replay/v1"
REQUEST_HEADERS_KEPT = frozenset({"content-type"})
RESPONSE_HEADERS_KEPT = frozenset({"content-type", BATCH_HEADER, *TIMING_HEADERS})
# vcrpy's JSON serializer indents by 4; an interaction sits two levels deep in the file.
JSON_INDENT = 4
INTERACTION_PREFIX = " " * (2 * JSON_INDENT)


def canonical_json(body: bytes | None) -> bytes | None:
    """The body as canonical JSON (sorted keys, no spaces, UTF-8), or None when it is not JSON."""
    if not body:
        return None
    try:
        obj = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def match_key(method: str, path: str, sample: str | None, body_bytes: bytes | None) -> str:
    """The hex sha256 that identifies a request in a cassette.

    ``path`` is the request target without scheme, host or port (``/v1/chat/completions``, plus
    ``?query`` if the URL has one), so a replay may point at any address. JSON bodies are hashed in
    canonical form, so key order and whitespace do not matter; other bodies as raw bytes.
    """
    canon = canonical_json(body_bytes)
    kind, payload = (b"json", canon) if canon is not None else (b"raw", body_bytes or b"")
    return _key(method, path, sample, kind, payload)


def json_match_key(method: str, path: str, sample: str | None, body: Any) -> str | None:
    """``match_key`` of a request whose body is ``body`` sent as JSON, without writing and reading it back;
    None when the shortcut cannot be sure of the canonical form (a key that is not text)."""
    try:
        canon = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):
        return None
    if not _text_keys(body):
        return None
    return _key(method, path, sample, b"json", canon.encode("utf-8"))


def _text_keys(value: Any) -> bool:
    """Whether every mapping key in ``value`` is text (JSON would turn others into text, reordering them)."""
    if type(value) is dict:
        return all(type(k) is str and _text_keys(v) for k, v in value.items())
    if type(value) in (list, tuple):
        return all(_text_keys(v) for v in value)
    return True


def _key(method: str, path: str, sample: str | None, kind: bytes, payload: bytes) -> str:
    digest = hashlib.sha256()
    for part in (_KEY_SCHEME, method.upper().encode(), path.encode("utf-8"), (sample or "").encode("utf-8"),
                 kind, payload):
        # Length-prefixed, so no choice of field contents can shift bytes from one field into the next.
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _stored_body(body: bytes) -> str | dict[str, str]:
    # vcrpy's own conversion first (UTF-8 text stays readable in a PR); what it leaves as bytes is binary.
    text = compat.convert_body_to_unicode({"body": {"string": body}})["body"]["string"]
    if isinstance(text, str):
        return text
    return {"base64_string": base64.b64encode(body).decode("ascii")}


def _body_bytes(stored: Any) -> bytes:
    if isinstance(stored, dict):
        if "base64_string" in stored:
            return base64.b64decode(stored["base64_string"])
        stored = stored.get("string")
    if stored is None:
        return b""
    return stored.encode("utf-8") if isinstance(stored, str) else bytes(stored)


@dataclass(frozen=True)
class Interaction:
    """One recorded exchange: its match key and vcrpy's on-disk request and response dicts (JSON-ready)."""

    key: str
    request: dict[str, Any]
    response: dict[str, Any]

    @property
    def status(self) -> int:
        return int(self.response["status"]["code"])

    @property
    def reason(self) -> str:
        return str(self.response["status"].get("message") or "")

    @property
    def headers(self) -> list[tuple[str, str]]:
        return [(name, value) for name, values in self.response["headers"].items() for value in values]

    @property
    def content(self) -> bytes:
        return _body_bytes(self.response["body"])

    @property
    def latency_ms(self) -> float | None:
        return self._timing(LATENCY_HEADER)

    @property
    def ttft_ms(self) -> float | None:
        return self._timing(TTFT_HEADER)

    def _timing(self, header: str) -> float | None:
        values = self.response["headers"].get(header)
        try:
            return float(values[0]) if values else None
        except ValueError:
            return None

    @property
    def from_batch(self) -> bool:
        return BATCH_HEADER in self.response["headers"]

    def same_exchange(self, other: Interaction) -> bool:
        """Equal but for the recorded timings, which vary between recordings of the same answer."""

        def without_latency(i: Interaction) -> dict[str, Any]:
            headers = {k: v for k, v in i.response["headers"].items() if k not in TIMING_HEADERS}
            return {**i.response, "headers": headers}

        return self.request == other.request and without_latency(self) == without_latency(other)

    @functools.cached_property
    def file_text(self) -> str:
        """This interaction as it appears in the cassette file (vcrpy's indented JSON, two levels deep).

        Computed once: an interaction never changes, and re-serialising every interaction on every save is
        what makes saving large cassettes slow (the indented encoder is pure Python).
        """
        text = json.dumps({"request": self.request, "response": self.response}, indent=JSON_INDENT)
        return INTERACTION_PREFIX + text.replace("\n", "\n" + INTERACTION_PREFIX)


def make_interaction(
    *,
    key: str,
    method: str,
    uri: str,
    sample: str,
    request_body: bytes,
    request_headers: Iterable[tuple[str, str]],
    status: int,
    reason: str,
    response_headers: Iterable[tuple[str, str]],
    content: bytes,
) -> Interaction:
    """Build the stored form of an exchange, keeping only allow-listed headers.

    ``content`` must already be decoded (no content-encoding): it is what a replay returns, byte for byte.
    """
    kept_request = sorted((n.lower(), v) for n, v in request_headers if n.lower() in REQUEST_HEADERS_KEPT)
    kept_request += [(SAMPLE_HEADER, sample), (MATCH_KEY_HEADER, key)]
    canon = canonical_json(request_body)
    body = _stored_body(canon if canon is not None else request_body)
    vcr_request = VcrRequest(method.upper(), uri, body, dict(sorted(kept_request)))
    response_header_lists: dict[str, list[str]] = {}
    for name, value in sorted((n.lower(), v) for n, v in response_headers):
        if name in RESPONSE_HEADERS_KEPT:
            response_header_lists.setdefault(name, []).append(value)
    response = {
        "status": {"code": status, "message": reason},
        "headers": response_header_lists,
        "body": {"string": content},
    }
    return normalised(key, vcr_request, response)


def normalised(key: str, vcr_request: VcrRequest, response: dict[str, Any]) -> Interaction:
    """The interaction with vcrpy's own to-unicode conversion and a fixed key order, as it is written."""
    request = compat.convert_to_unicode(vcr_request._to_dict())
    request["headers"] = dict(sorted(request["headers"].items()))
    stored = _stored_body(_body_bytes(response["body"]))
    status = response["status"]
    normal = {
        "status": {"code": int(status["code"]), "message": status.get("message") or ""},
        "headers": {name: list(values) for name, values in sorted(response["headers"].items())},
        "body": {"string": stored} if isinstance(stored, str) else stored,
    }
    return Interaction(key, request, normal)


def key_of(vcr_request: VcrRequest) -> str:
    stored = vcr_request.headers.get(MATCH_KEY_HEADER)
    if stored:
        return str(stored)
    # A cassette written by vcrpy itself (or edited by hand without the key): derive the key from its parts.
    target = urlsplit(vcr_request.uri)
    path = target.path + (f"?{target.query}" if target.query else "")
    return match_key(vcr_request.method, path, vcr_request.headers.get(SAMPLE_HEADER, ""),
                     _body_bytes(vcr_request.body))
