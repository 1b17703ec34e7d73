"""Cassettes: recorded HTTP exchanges in vcrpy's JSON format, found through an index of request hashes.

One cassette is one JSON file, ``cassettes/<suite>/<model-slug>.json``, in the layout vcrpy itself writes
(``{"version": 1, "interactions": [{"request": {...}, "response": {...}}]}``), built with vcrpy's own
``Request``, body conversion and JSON serializer so a vcrpy user recognises it (and ``vcr.serialize``
can load it). What this module adds:

- a **match key** per request (sha256 of method, path, sample key and canonical JSON body), stored in each
  request as the ``x-harness-match-key`` header so loading builds the index without re-hashing. vcrpy scans
  every interaction per request (quadratic); a dict lookup keeps replay flat as cassettes grow. A header,
  not an extra request field, because ``vcr.request.Request(**dct)`` rejects unknown fields;
- an **allow-list** of stored headers (content-type, plus the sample and match-key headers on requests):
  keys, cookies, organisation/project names, SDK fingerprints and request ids are never written;
- **deterministic files**: interactions sorted by match key, JSON request bodies stored canonically, the
  request URI stored as path (+ query) only (the host and a test server's random port are not part of a
  request's identity, would churn diffs, and may name private hosts), written atomically and only when
  something changed, so re-recording identical answers leaves the file byte-identical;
- **saves that stay linear**: each interaction's part of the file is serialised once and cached, and a long
  recording autosaves after a number of new recordings that grows with the cassette, so recording N
  interactions costs O(N) in saving instead of O(N²) (10,000 recordings: seconds, not minutes);
- bodies that are not UTF-8 are stored as ``{"base64_string": ...}``: vcrpy's JSON serializer refuses
  them outright, and LLM APIs answer in UTF-8 JSON, so this only matters for exotic endpoints.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import json
import os
import re
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from vcr.request import Request as VcrRequest
from vcr.serialize import CASSETTE_FORMAT_VERSION, deserialize
from vcr.serializers import compat, jsonserializer

from harness.errors import HarnessError
from harness.store.files import file_mode

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
DEFAULT_AUTOSAVE_EVERY = 100
# An autosave rewrites the whole file, so it waits for at least this fraction of the cassette's size in new
# recordings: the total written over a recording run stays within a constant factor of the final file.
AUTOSAVE_GROWTH = 0.1
# vcrpy's JSON serializer indents by 4; an interaction sits two levels deep in the file.
_JSON_INDENT = 4
_INTERACTION_PREFIX = " " * (2 * _JSON_INDENT)


class CassetteError(HarnessError):
    """A cassette file exists but cannot be read as a vcrpy JSON cassette."""


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
    digest = hashlib.sha256()
    for part in (_KEY_SCHEME, method.upper().encode(), path.encode("utf-8"), (sample or "").encode("utf-8"),
                 kind, payload):
        # Length-prefixed, so no choice of field contents can shift bytes from one field into the next.
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


_UNSAFE = re.compile(r"[^a-z0-9._-]+")
_WINDOWS_RESERVED = frozenset(
    {"con", "prn", "aux", "nul"} | {f"com{i}" for i in range(1, 10)} | {f"lpt{i}" for i in range(1, 10)}
)


def slugify(name: str, max_length: int = 80) -> str:
    """A file-name-safe slug: ``name`` itself when it already is one, else a cleaned name plus a short hash.

    The hash keeps distinct names distinct (``org/model`` vs ``org-model``, ``GPT-4o`` vs ``gpt-4o`` on a
    case-insensitive file system), so two models can never share a cassette by accident.
    """
    slug = _UNSAFE.sub("-", name.lower()).strip(".-")[:max_length].rstrip(".-")
    if not slug or slug != name or slug.split(".")[0] in _WINDOWS_RESERVED:
        digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
        slug = f"{slug}-{digest}" if slug else digest
    return slug


def cassette_path(root: str | os.PathLike[str], suite: str, model: str) -> Path:
    """``<root>/<suite-slug>/<model-slug>.json``."""
    return Path(root) / slugify(suite) / f"{slugify(model)}.json"


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
        text = json.dumps({"request": self.request, "response": self.response}, indent=_JSON_INDENT)
        return _INTERACTION_PREFIX + text.replace("\n", "\n" + _INTERACTION_PREFIX)


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
    return _normalised(key, vcr_request, response)


def _normalised(key: str, vcr_request: VcrRequest, response: dict[str, Any]) -> Interaction:
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


def _key_of(vcr_request: VcrRequest) -> str:
    stored = vcr_request.headers.get(MATCH_KEY_HEADER)
    if stored:
        return str(stored)
    # A cassette written by vcrpy itself (or edited by hand without the key): derive the key from its parts.
    target = urlsplit(vcr_request.uri)
    path = target.path + (f"?{target.query}" if target.query else "")
    return match_key(vcr_request.method, path, vcr_request.headers.get(SAMPLE_HEADER, ""),
                     _body_bytes(vcr_request.body))


class Cassette:
    """One cassette file held in memory with an index from match key to interaction.

    Safe to share between coroutines and threads (state changes are under a lock and never await).
    ``save()`` writes only when something changed since the last save or load.
    """

    def __init__(self, path: str | os.PathLike[str], *, autosave_every: int | None = DEFAULT_AUTOSAVE_EVERY):
        self.path = Path(path)
        self.autosave_every = autosave_every
        self._lock = threading.Lock()
        self._save_lock = threading.Lock()  # saves in order, so an older snapshot never overwrites a newer
        self._index: dict[str, Interaction] = {}
        self._used: set[str] = set()
        self._generation = 0
        self._saved_generation = 0
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        try:
            loaded = deserialize(self.path.read_text(encoding="utf-8"), jsonserializer)
            for vcr_request, response in zip(loaded[0], loaded[1], strict=True):
                key = _key_of(vcr_request)
                self._index[key] = _normalised(key, vcr_request, response)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CassetteError(f"{self.path}: not a readable vcrpy JSON cassette ({exc})") from exc
        except RecursionError:
            raise CassetteError(f"{self.path}: not a readable vcrpy JSON cassette (nested too deeply)") from None

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def keys(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._index)

    @property
    def used_keys(self) -> frozenset[str]:
        """Keys replayed or recorded since this cassette was opened."""
        with self._lock:
            return frozenset(self._used)

    @property
    def dirty(self) -> bool:
        return self._generation != self._saved_generation

    @property
    def autosave_due(self) -> bool:
        """Enough new recordings to be worth rewriting the file, and no save already under way.

        The threshold is ``autosave_every`` or a tenth of the cassette's size, whichever is larger.
        """
        every = self.autosave_every
        if every is None or self._save_lock.locked():
            return False
        return self._generation - self._saved_generation >= max(every, int(len(self._index) * AUTOSAVE_GROWTH))

    def lookup(self, key: str) -> Interaction | None:
        """The interaction recorded for ``key`` (marking the key used), or None."""
        with self._lock:
            found = self._index.get(key)
            if found is not None:
                self._used.add(key)
            return found

    def record(self, interaction: Interaction) -> bool:
        """Store ``interaction``, replacing any for its key; False when the same exchange was already there.

        An answer identical but for its latency keeps the first recording, so re-recording unchanged answers
        leaves the file byte-identical.
        """
        with self._lock:
            self._used.add(interaction.key)
            existing = self._index.get(interaction.key)
            if existing is not None and existing.same_exchange(interaction):
                return False
            self._index[interaction.key] = interaction
            self._generation += 1
            return True

    def prune(self, keep: Iterable[str]) -> int:
        """Drop every interaction whose key is not in ``keep``; return how many were dropped."""
        keep = set(keep)
        with self._lock:
            dropped = [key for key in self._index if key not in keep]
            for key in dropped:
                del self._index[key]
            if dropped:
                self._generation += 1
            return len(dropped)

    def dumps(self) -> str:
        """The file's text: vcrpy's JSON serializer over the interactions sorted by match key."""
        with self._lock:
            items = sorted(self._index.items())
        return _dumps([interaction for _, interaction in items])

    def save(self) -> bool:
        """Write the file atomically if anything changed; return whether it was written."""
        with self._save_lock:
            with self._lock:
                generation = self._generation
                if generation == self._saved_generation:
                    return False
                items = sorted(self._index.items())
            _atomic_write(self.path, _dumps([interaction for _, interaction in items]))
            with self._lock:
                self._saved_generation = generation
            return True


def _dumps(interactions: list[Interaction]) -> str:
    """The file's text, byte for byte what vcrpy's ``jsonserializer.serialize`` writes for these
    interactions, assembled from each interaction's cached ``file_text``."""
    if not interactions:
        return str(jsonserializer.serialize({"version": CASSETTE_FORMAT_VERSION, "interactions": []}))
    head = json.dumps({"version": CASSETTE_FORMAT_VERSION, "interactions": [None]}, indent=_JSON_INDENT)
    # ``head`` ends with the placeholder's line, "        null\n    ]\n}": split around it.
    before, _, after = head.rpartition(_INTERACTION_PREFIX + "null")
    return before + ",\n".join(i.file_text for i in interactions) + after + "\n"


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = file_mode(path)  # the harness's one permission rule (mkstemp alone would make it 0600)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


_registry: dict[Path, Cassette] = {}
_registry_lock = threading.Lock()


def open_cassette(path: str | os.PathLike[str]) -> Cassette:
    """The process-wide Cassette for ``path``: every client recording into one file shares one object,
    so their recordings and saves cannot overwrite each other."""
    resolved = Path(path).resolve()
    with _registry_lock:
        cassette = _registry.get(resolved)
        if cassette is None:
            cassette = _registry[resolved] = Cassette(resolved)
        return cassette


def close_cassette(path: str | os.PathLike[str]) -> None:
    """Save the registered cassette for ``path`` (if changed) and forget it, so a later open reloads it."""
    with _registry_lock:
        cassette = _registry.pop(Path(path).resolve(), None)
    if cassette is not None:
        cassette.save()


def save_all() -> list[Path]:
    """Save every registered cassette that changed; return the paths written."""
    with _registry_lock:
        cassettes = list(_registry.values())
    return [cassette.path for cassette in cassettes if cassette.save()]
