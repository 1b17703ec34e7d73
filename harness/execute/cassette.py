"""Cassettes: recorded HTTP exchanges in vcrpy's JSON format, found through an index of request hashes.

One cassette is one JSON file, ``cassettes/<suite>/<model-slug>.json``, in the layout vcrpy itself writes
(``{"version": 1, "interactions": [{"request": {...}, "response": {...}}]}``), built with vcrpy's own
``Request``, body conversion and JSON serializer so a vcrpy user recognises it (and ``vcr.serialize``
can load it). What this module adds:

- a **match key** per request and an **allow-list** of stored headers (see ``harness.execute.interaction``);
  vcrpy scans every interaction per request (quadratic), a dict lookup keeps replay flat as cassettes grow;
- **deterministic files**: interactions sorted by match key, JSON request bodies stored canonically, the
  request URI stored as path (+ query) only (the host and a test server's random port are not part of a
  request's identity, would churn diffs, and may name private hosts), written atomically, so re-recording
  identical answers leaves the file byte-identical;
- **recordings on disk before results**: each recording is appended to ``<model>.json.journal`` and fsync'd
  before the answer goes back to the caller (see ``harness.execute.journal``); the sorted file is rebuilt
  from file plus journal when the run ends, or on the next open after a crash. The file is written once
  per run, not periodically, and each interaction's part of it is serialised once and cached;
- **several processes, one cassette**: journal appends and saves hold an OS lock (``flock``) on the
  cassette's folder, and a save merges what is on disk instead of overwriting it, so parallel shards
  recording into one cassette keep the union of their recordings;
- **no silent conflicts**: two entries of a file with one match key and different answers are refused,
  naming both.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path

from vcr.serialize import CASSETTE_FORMAT_VERSION, deserialize
from vcr.serializers import jsonserializer

from harness.errors import HarnessError, StorageError
from harness.execute import journal
from harness.execute.interaction import (
    BATCH_HEADER,
    INTERACTION_PREFIX,
    JSON_INDENT,
    LATENCY_HEADER,
    MATCH_KEY_HEADER,
    REQUEST_HEADERS_KEPT,
    RESPONSE_HEADERS_KEPT,
    SAMPLE_HEADER,
    TIMING_HEADERS,
    TTFT_HEADER,
    Interaction,
    canonical_json,
    key_of,
    make_interaction,
    match_key,
    normalised,
)
from harness.store.files import file_mode, locked

__all__ = [
    "BATCH_HEADER",
    "LATENCY_HEADER",
    "MATCH_KEY_HEADER",
    "REQUEST_HEADERS_KEPT",
    "RESPONSE_HEADERS_KEPT",
    "SAMPLE_HEADER",
    "TIMING_HEADERS",
    "TTFT_HEADER",
    "Cassette",
    "CassetteError",
    "Interaction",
    "canonical_json",
    "cassette_path",
    "close_cassette",
    "make_interaction",
    "match_key",
    "open_cassette",
    "save_all",
    "slugify",
]


class CassetteError(HarnessError):
    """A cassette file exists but cannot be read as a vcrpy JSON cassette."""


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


class Cassette:
    """One cassette file held in memory with an index from match key to interaction, plus its journal.

    Safe to share between coroutines and threads (state changes are under a lock and never await), and
    between processes: every change on disk (a journal append, a save) holds an OS lock on the cassette's
    folder, and a save merges what is on disk (file plus journal, whoever wrote them) instead of
    overwriting it. ``record`` puts an interaction in the journal, fsync'd, before it returns; ``save``
    rewrites the sorted file from file plus journal and removes the journal.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.journal = journal.journal_path(self.path)
        self._lock = threading.RLock()
        self._index: dict[str, Interaction] = {}
        self._used: set[str] = set()
        self._dropped: set[str] = set()  # pruned here since the last save: the merge leaves them out
        self._generation = 0
        self._saved_generation = 0
        # What of the disk this index reflects: the file's (inode, size, mtime) and the journal's size.
        self._file_state: tuple[int, int, int] | None = None
        self._journal_seen = 0
        if self.path.exists() or self.journal.exists():
            with self._lock, locked(self.path.parent):
                self._index, pending = self._disk_view()
            if pending:
                # A run was killed before saving: fold its journal into the file now. A read-only checkout
                # (a CI replay) cannot, and needs not: the index already holds the journal's recordings.
                with contextlib.suppress(StorageError):
                    self.save()

    def _read_file(self) -> dict[str, Interaction]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise CassetteError(f"{self.path}: not a readable vcrpy JSON cassette ({exc})") from exc
        index: dict[str, Interaction] = {}
        position: dict[str, int] = {}
        try:
            loaded = deserialize(text, jsonserializer)
            for at, (vcr_request, response) in enumerate(zip(loaded[0], loaded[1], strict=True)):
                key = key_of(vcr_request)
                item = normalised(key, vcr_request, response)
                first = index.get(key)
                if first is None:
                    index[key], position[key] = item, at
                elif not first.same_exchange(item):
                    raise CassetteError(
                        f"{self.path}: interactions[{position[key]}] and interactions[{at}] are recordings of "
                        f"the same request (match key {key[:16]}) with different answers; delete the wrong one "
                        "(or both, and record again with --record record-missing)")
        except CassetteError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CassetteError(f"{self.path}: not a readable vcrpy JSON cassette ({exc})") from exc
        except RecursionError:
            raise CassetteError(f"{self.path}: not a readable vcrpy JSON cassette (nested too deeply)") from None
        return index

    def _disk_view(self) -> tuple[dict[str, Interaction], bool]:
        """File plus journal as on disk now (the caller holds both locks); and whether the journal had any.

        The file is parsed again only if it changed since this index last saw it; otherwise the index
        itself is the base (it holds the file plus this process's recordings, which are in the journal too).
        """
        state = _file_state(self.path)
        merged = self._read_file() if state != self._file_state else dict(self._index)
        entries = journal.read(self.journal)
        for item in entries:  # in the order they were made: a later recording of a key replaces an earlier
            merged[item.key] = item
        for key in self._dropped:
            merged.pop(key, None)
        self._file_state = state
        self._journal_seen = journal.size(self.journal)
        return merged, bool(entries)

    def _changed_on_disk(self) -> bool:
        return _file_state(self.path) != self._file_state or journal.size(self.journal) != self._journal_seen

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
        """Recorded or pruned since the last save: the file is behind the journal."""
        return self._generation != self._saved_generation

    def lookup(self, key: str) -> Interaction | None:
        """The interaction recorded for ``key`` (marking the key used), or None.

        On a miss the disk is checked for recordings another process made meanwhile (two cheap ``stat``
        calls), so parallel shards and a replay started while they run see each other's work.
        """
        with self._lock:
            found = self._index.get(key)
            if found is None and self._changed_on_disk():
                with locked(self.path.parent):
                    self._index, _ = self._disk_view()
                found = self._index.get(key)
            if found is not None:
                self._used.add(key)
            return found

    def record(self, interaction: Interaction, *, sync: bool = True) -> bool:
        """Store ``interaction``, replacing any for its key; False when the same exchange was already there.

        The interaction is in the journal on disk (fsync'd) when this returns: callers store the trial's
        result only afterwards. An answer identical but for its latency keeps the first recording, so
        re-recording unchanged answers leaves the file byte-identical. Raises ``OSError`` (a full disk)
        with nothing recorded. With ``sync=False`` the line is written but the flush to disk is left to the
        caller (``flush``, shared by many recordings: see ``harness.execute.group_commit``), who must not store
        the trial's result before it.
        """
        return self.record_many([interaction], sync=sync) == 1

    def record_many(self, interactions: Iterable[Interaction], *, sync: bool = True) -> int:
        """``record`` for many interactions with one journal write and one flush; returns how many were new."""
        with self._lock:
            new: dict[str, Interaction] = {}
            for item in interactions:
                self._used.add(item.key)
                existing = new.get(item.key) or self._index.get(item.key)
                if existing is None or not existing.same_exchange(item):
                    new[item.key] = item
            if not new:
                return 0
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with locked(self.path.parent):
                    before, after = journal.append(self.journal, list(new.values()))
            except OSError as exc:
                raise StorageError(f"cannot record into {self.journal}: {exc.strerror or exc}; the trial is not "
                                   "stored either. Free some space and resume the run") from None
            # Another process's lines in between: unknown to this index until the next look at the disk.
            self._journal_seen = after if before == self._journal_seen else -1
            self._index.update(new)
            self._dropped.difference_update(new)
            self._generation += 1
        if sync:
            self.flush()
        return len(new)

    def flush(self) -> None:
        """Flush the journal to disk (what ``record(..., sync=False)`` leaves to its caller)."""
        try:
            journal.sync(self.journal)
        except OSError as exc:
            raise StorageError(f"cannot flush {self.journal} to disk: {exc.strerror or exc}") from None

    def prune(self, keep: Iterable[str]) -> int:
        """Drop every interaction whose key is not in ``keep``; return how many were dropped."""
        keep = set(keep)
        with self._lock:
            dropped = [key for key in self._index if key not in keep]
            for key in dropped:
                del self._index[key]
            if dropped:
                self._dropped.update(dropped)
                self._generation += 1
            return len(dropped)

    def dumps(self) -> str:
        """The file's text: vcrpy's JSON serializer over the interactions sorted by match key."""
        with self._lock:
            items = sorted(self._index.items())
        return _dumps([interaction for _, interaction in items])

    def save(self) -> bool:
        """Merge file, journal and prunes into the file (atomically) and remove the journal.

        Returns whether the file was written. The merge runs under the folder's OS lock, so two processes
        saving one cassette keep the union of their recordings. If the write fails (a full disk) the old
        file and the journal are left as they were: nothing recorded is lost.
        """
        with self._lock:
            generation = self._generation
            if not (self._index or self._dropped or self.path.exists() or self.journal.exists()):
                self._saved_generation = generation
                return False
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with locked(self.path.parent):
                    return self._merge_and_write(generation)
            except OSError as exc:
                raise StorageError(f"cannot save {self.path}: {exc.strerror or exc}. Its recordings are kept in "
                                   f"{self.journal.name} and merged on the next run") from None

    def _merge_and_write(self, generation: int) -> bool:
        """``save`` under both locks."""
        merged, journaled = self._disk_view()
        if journaled or self._dropped or not self.path.exists():
            _atomic_write(self.path, _dumps([item for _, item in sorted(merged.items())]))
            journal.remove(self.journal)
            self._file_state = _file_state(self.path)
            self._journal_seen = 0
            written = True
        else:
            written = False
        self._index = merged
        self._dropped.clear()
        self._saved_generation = generation
        return written


def _file_state(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _dumps(interactions: list[Interaction]) -> str:
    """The file's text, byte for byte what vcrpy's ``jsonserializer.serialize`` writes for these
    interactions, assembled from each interaction's cached ``file_text``."""
    if not interactions:
        return str(jsonserializer.serialize({"version": CASSETTE_FORMAT_VERSION, "interactions": []}))
    head = json.dumps({"version": CASSETTE_FORMAT_VERSION, "interactions": [None]}, indent=JSON_INDENT)
    # ``head`` ends with the placeholder's line, "        null\n    ]\n}": split around it.
    before, _, after = head.rpartition(INTERACTION_PREFIX + "null")
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
