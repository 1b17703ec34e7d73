"""results.jsonl: one JSON line per finished trial, appended and flushed at once.

The file is only ever appended to, so a crash or Ctrl-C loses no finished trial; a torn last line (a kill
mid-write) is detected on reading and dropped, so its trial is redone on resume.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Container, Iterator
from pathlib import Path

from harness.errors import HarnessError, RunIncompleteError, StorageError
from harness.store.files import atomic_file, remove_stale_temporaries
from harness.store.manifest import MANIFEST_FILE
from harness.store.records import TrialResult, request_id

RESULTS_FILE = "results.jsonl"


# A run id or suite name is one folder name: no separators, no leading dot (so never "." or ".."), which
# keeps every run folder inside its reports root whatever a user or a CI variable passes as --run-id.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def plain_name(name: str, what: str) -> str:
    """``name`` when it is a plain folder name; else a ``HarnessError`` (exit 2) saying what is allowed."""
    if not _PLAIN_NAME.fullmatch(name):
        raise HarnessError(f"{what} {name!r} must be a plain name (letters, digits, '.', '_', '-'; starting with "
                           "a letter or digit), not a path: run folders stay inside the reports folder")
    return name


def run_dir(reports_root: Path, suite: str, run_id: str) -> Path:
    return reports_root / plain_name(suite, "suite name") / plain_name(run_id, "run id")


def read_results(path: Path) -> Iterator[TrialResult]:
    """Yield the results of a results.jsonl, skipping a torn or corrupt line.

    When a trial id occurs twice (two processes wrote to one run), the first complete record wins.
    """
    seen: set[str] = set()
    for line in _complete_lines(path):
        record = _parse(line)
        if record is None or record.trial_id in seen:
            continue
        seen.add(record.trial_id)
        yield record


def _complete_lines(path: Path) -> Iterator[bytes]:
    # Bytes, not text: a kill can cut a multi-byte character in two, and that must not stop the reading.
    if not path.exists():
        return
    with path.open("rb") as fh:
        for line in fh:
            # A line without its newline was cut by a kill mid-write: not a finished trial.
            if line.endswith(b"\n") and line.strip():
                yield line


def finished_ids(path: Path) -> set[str]:
    """Ids of trials a resume skips. Trials that ended in an error worth retrying are redone."""
    return {r.trial_id for r in read_results(path) if r.finished}


def prepare_resume(path: Path, planned: Container[str], redo: Container[str] = ()) -> set[str]:
    """Make a results file ready for a resume; return the ids of the trials it need not run again.

    Records of planned trials that will be redone (an error worth retrying) are dropped, as are a torn last
    line, corrupt lines and repeated ids, so after the resume every trial id occurs exactly once. Records
    of trials outside ``planned`` (another ``--model`` filter, say) are kept as they are. The file is
    rewritten atomically, and only when something has to go; leftover temporary files of a killed run are
    removed. Trials in ``redo`` (finished, but their recording is lost) are dropped too, to be run again.
    """
    remove_stale_temporaries(path.parent, (RESULTS_FILE, MANIFEST_FILE))
    if not path.exists():
        return set()
    keep: list[bool] = []
    kept: set[str] = set()
    choices: list[tuple[int, str]] = []
    clean = True
    with path.open("rb") as fh:
        for line in fh:
            record = _parse(line) if line.endswith(b"\n") else None
            wanted = (
                record is not None and record.trial_id not in kept
                and (record.finished or record.trial_id not in planned)
                and request_id(record.trial_id) not in redo
            )
            if wanted:
                kept.add(record.trial_id)  # type: ignore[union-attr]
            keep.append(wanted)
            clean = clean and wanted
            if record is not None and request_id(record.trial_id) != record.trial_id:
                choices.append((len(keep) - 1, record.trial_id))
    # The other choices of a request are kept only with its choice 0 (written last): a request cut short by a
    # kill, or redone, is stored again whole.
    for index, trial_id in choices:
        if keep[index] and request_id(trial_id) in planned and request_id(trial_id) not in kept:
            keep[index] = clean = False
            kept.discard(trial_id)
    if not clean:
        _rewrite_keeping(path, keep)
    return kept


def _parse(line: bytes) -> TrialResult | None:
    if not line.strip():
        return None
    try:
        # UnicodeDecodeError is a ValueError: a line with broken UTF-8 counts as corrupt.
        return TrialResult.from_dict(json.loads(line))
    except (ValueError, TypeError, AttributeError):
        return None


def _rewrite_keeping(path: Path, keep: list[bool]) -> None:
    # The rewritten results keep the permissions the run gave them.
    with atomic_file(path, binary=True) as out, path.open("rb") as src:
        for wanted, line in zip(keep, src, strict=False):
            if wanted:
                out.write(line)


class ResultsWriter:
    """Appends one line per trial and hands it to the OS at once (one ``write`` call, no buffer).

    On open, a torn last line left by a kill is cut off so the file stays valid JSON Lines. A write that
    fails (a full disk) is taken back whole, so the file never ends in half a line, and stops the run with
    a message (exit 4); a resume redoes that trial once there is space again.
    """

    def __init__(self, path: Path, fsync: bool = False) -> None:
        self.path = path
        self.fsync = fsync
        path.parent.mkdir(parents=True, exist_ok=True)
        _truncate_torn_tail(path)
        # 0666 minus the umask: the harness's one permission rule for new files (store.files.file_mode).
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)

    def write(self, result: TrialResult) -> None:
        self.write_request([result])

    def write_request(self, results: list[TrialResult]) -> None:
        """The records of one request's choices in one write, choice 0 last (see ``records.choice_id``)."""
        if self._fd is None:
            raise RunIncompleteError(f"cannot write {self.path}: the writer is closed")
        ordered = sorted(results, key=lambda r: -r.choice)
        data = memoryview("".join(r.to_json() + "\n" for r in ordered).encode("utf-8"))
        size = os.fstat(self._fd).st_size
        try:
            while data:
                data = data[os.write(self._fd, data):]
            if self.fsync:
                os.fsync(self._fd)
        except OSError as exc:  # a full disk or a vanished folder: stop the run with a message, not a trace
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, size)
            raise StorageError(f"cannot write {self.path}: {exc.strerror or exc}. Finished trials are kept; "
                               "free some space and resume the run") from None

    def close(self) -> None:
        # A failing disk was already reported by ``write``; closing must not raise over that report.
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.fsync(self._fd)
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._fd = None

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _truncate_torn_tail(path: Path) -> None:
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        # Walk back to the last newline; everything after it is a torn write.
        pos = size
        chunk = 4096
        while pos > 0:
            start = max(0, pos - chunk)
            fh.seek(start)
            data = fh.read(pos - start)
            idx = data.rfind(b"\n")
            if idx >= 0:
                cut = start + idx + 1
                if cut < size:
                    fh.truncate(cut)
                return
            pos = start
        fh.truncate(0)


def folder_stamp(directory: Path) -> str:
    """Sizes and modification times of a run's two files: cheap to read for every run on each rebuild."""
    parts = []
    for name in (MANIFEST_FILE, RESULTS_FILE):
        try:
            st = (directory / name).stat()
            parts.append(f"{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            parts.append("-")
    return "|".join(parts)
