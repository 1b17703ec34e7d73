"""Batch request lines: each trial's exact rendered body as one line of the OpenAI batch format, spooled into
files no larger than the provider's limits.

A line is ``{"custom_id": <trial id>, "method": "POST", "url": <endpoint path>, "body": <request body>}``; the
body is the very dict the live path sends (``render_request``), so a batch answer is the answer to the same
request. Files are written as trials are deferred, a line at a time: a 50,000-request batch never sits in memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from harness.render import Request
from harness.suite.model import ModelSpec

OPENAI_BASE_URL = "https://api.openai.com/v1"


@dataclass(frozen=True)
class BatchLimits:
    """How big one batch may be (OpenAI's limits by default: 50,000 requests and 200 MB per input file)."""

    max_requests: int = 50_000
    max_bytes: int = 200 * 1024 * 1024
    window: str = "24h"

    def __post_init__(self) -> None:
        if self.max_requests < 1 or self.max_bytes < 1:
            raise ValueError("batch limits must be positive")


def endpoint_url(model: ModelSpec, request: Request) -> str:
    """The line's ``url``: the endpoint path the provider's batch engine routes by.

    OpenAI-style servers (and vLLM's ``run-batch``) expect the path under the host, ``/v1/chat/completions``;
    Azure's Batch API expects it without the deployment prefix, ``/chat/completions``.
    """
    if model.provider == "azure":
        return request.path
    base = urlsplit(model.base_url or OPENAI_BASE_URL).path.rstrip("/")
    return base + request.path


def request_line(custom_id: str, url: str, request: Request) -> bytes:
    """One line of a batch input file (with its newline)."""
    line = {"custom_id": custom_id, "method": "POST", "url": url, "body": request.body}
    return json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def custom_ids(path: Path) -> Iterator[str]:
    """The custom ids of a request file, streamed."""
    with path.open("rb") as fh:
        for line in fh:
            if line.strip():
                yield str(json.loads(line)["custom_id"])


class Spool:
    """Writes one model's request lines into numbered chunk files, starting a new one at a limit.

    ``on_full(path, count, size)`` is called for every finished chunk (full, or closed at the end).
    """

    def __init__(self, folder: Path, prefix: str, limits: BatchLimits, first_number: int = 1) -> None:
        self.folder = folder
        self.prefix = prefix
        self.limits = limits
        self.number = first_number
        self.finished: list[tuple[Path, int, int]] = []
        self._fh: IO[bytes] | None = None
        self._path: Path | None = None
        self._count = 0
        self._size = 0

    def add(self, line: bytes) -> None:
        if len(line) > self.limits.max_bytes:  # callers send such a request some other way
            raise ValueError(f"one request is {len(line)} bytes, over the batch limit of {self.limits.max_bytes}")
        if self._fh is not None and (self._count >= self.limits.max_requests
                                     or self._size + len(line) > self.limits.max_bytes):
            self._close()
        if self._fh is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._path = self.folder / f"{self.prefix}-{self.number:04d}.requests.jsonl"
            self.number += 1
            self._fh = self._path.open("wb")
        self._fh.write(line)
        self._count += 1
        self._size += len(line)

    def _close(self) -> None:
        assert self._fh is not None and self._path is not None
        self._fh.close()
        self.finished.append((self._path, self._count, self._size))
        self._fh, self._path, self._count, self._size = None, None, 0, 0

    def close(self) -> list[tuple[Path, int, int]]:
        if self._fh is not None:
            self._close()
        return self.finished
