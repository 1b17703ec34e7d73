"""A cassette's journal: recordings appended one JSON line each, on disk before their trial's result.

``<model>.json.journal`` sits next to ``<model>.json``. Every recording is appended as one line (match key,
request, response) and flushed to disk (``fsync``) before the transport hands the answer back, so a trial's
result can never be stored without its recording, whatever happens to the process afterwards. The pretty,
sorted cassette file is rebuilt from the file plus the journal on save (and on the next open after a
crash); the journal is then removed.

Writers in several processes share one journal: every append holds the cassette folder's lock (see
``Cassette``), opens the file afresh (so a journal removed by another process's save is recreated, never
written through a stale handle), and first cuts off a torn last line a killed writer may have left, so a
torn line can only ever be the very last one, and readers simply ignore it. The flush to disk (``sync``)
happens after the lock is released, so recordings made in parallel share one flush.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from harness.execute.interaction import Interaction

SUFFIX = ".journal"


def journal_path(cassette: Path) -> Path:
    return cassette.with_name(cassette.name + SUFFIX)


def encode(interaction: Interaction) -> bytes:
    record = {"key": interaction.key, "request": interaction.request, "response": interaction.response}
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def append(path: Path, interactions: list[Interaction]) -> tuple[int, int]:
    """Append recordings (written, not yet fsync'd: see ``sync``); return the journal's size before and after.

    The caller holds the cassette folder's lock. On ``OSError`` (a full disk) the journal is as it was.
    """
    data = b"".join(encode(item) for item in interactions)
    # 0666 minus the umask: the harness's one permission rule for new files (see store.files.file_mode).
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
    try:
        _cut_torn_tail(fd)
        size = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            return size, size + len(data)
        except OSError:
            # A full disk: take back the partial line, so the journal stays whole lines only.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


def sync(path: Path) -> None:
    """Flush the journal to the disk itself. Needs no lock: concurrent callers share one flush (the kernel
    coalesces them), which is what keeps many recordings in flight from paying one disk flush each. A journal
    already gone was merged by a save, which flushed the file it merged into."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _cut_torn_tail(fd: int) -> None:
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    # Rare (a writer was killed mid-line): walk back to the last newline.
    pos = size
    while pos > 0:
        start = max(0, pos - 65536)
        chunk = os.pread(fd, pos - start, start)
        idx = chunk.rfind(b"\n")
        if idx >= 0:
            os.ftruncate(fd, start + idx + 1)
            return
        pos = start
    os.ftruncate(fd, 0)


def read(path: Path) -> list[Interaction]:
    """The journal's recordings in the order they were made; a torn or unreadable line is skipped."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    found = []
    for line in data.split(b"\n")[:-1]:  # the part after the last newline is torn (or empty)
        item = _decode(line)
        if item is not None:
            found.append(item)
    return found


def _decode(line: bytes) -> Interaction | None:
    try:
        record: Any = json.loads(line)
        key, request, response = record["key"], record["request"], record["response"]
    except (ValueError, TypeError, KeyError, RecursionError):
        return None
    if not (isinstance(key, str) and isinstance(request, dict) and isinstance(response, dict)
            and isinstance(response.get("status"), dict) and isinstance(response.get("headers"), dict)):
        return None
    return Interaction(key, request, response)


def size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
