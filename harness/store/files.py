"""File safety for a run folder: whole files replaced by a rename, never half-written, and a lock that keeps
a second process out of a run that is still being written."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from harness.errors import HarnessError


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux ``/proc``)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # elsewhere: set and restore at once
    os.umask(mask)
    return mask


def file_mode(path: Path) -> int:
    """The one permission rule for every file the harness writes (results, manifests, cassettes, journals,
    reports): a new file gets ``0666`` minus the umask, exactly as a file the shell creates; a file being
    replaced keeps the mode it has, so a result or cassette made private stays private. A team that wants
    every output private runs the harness under ``umask 077``."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o666 & ~current_umask()


@contextlib.contextmanager
def atomic_file(path: Path, binary: bool = False) -> Iterator[IO[Any]]:
    """A temporary file that replaces ``path`` by a rename when the block ends, flushed to disk first; if the
    block raises it is removed and ``path`` is left as it was. Readers see the old or the new file.

    The new file gets the permissions of :func:`file_mode` (mkstemp alone would make it private).
    """
    mode = file_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")) as fh:
            os.chmod(tmp, mode)
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_atomic(path: Path, text: str) -> None:
    """Write a whole file via a temporary file and a rename: readers see the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as fh:
        fh.write(text)


def remove_stale_temporaries(directory: Path, names: Iterable[str]) -> None:
    """Delete ``atomic_file``'s temporaries of the files ``names``: a kill between create and rename leaves
    one behind."""
    if not directory.is_dir():
        return
    for name in names:
        for stale in directory.glob(f".{name}.*.tmp"):
            with contextlib.suppress(OSError):
                stale.unlink()


@contextlib.contextmanager
def locked(path: Path, *, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive OS lock (``fcntl.flock``) on ``path`` (a file, or a folder) for the block.

    Yields True once held; with ``wait=False`` it yields False at once when another process holds it. The
    kernel drops the lock when its holder dies, even by SIGKILL, so a killed process never leaves a stale
    lock. Where ``fcntl`` does not exist (Windows) the block runs unguarded and yields True.
    """
    try:
        import fcntl
    except ImportError:
        yield True
        return
    fd = os.open(path, os.O_RDONLY if path.is_dir() else os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing releases the lock


class SpaceReserve:
    """A little disk space held back for the end of a run (a hidden file in the run folder).

    When the disk fills up mid-run, the final manifest still has to be written, or it would say "running"
    forever: releasing the reserve makes room for it. Best effort: with no space even at the start there is
    nothing to hold back.
    """

    NAME = ".reserve"

    def __init__(self, directory: Path, size: int = 64 * 1024) -> None:
        self.path = directory / self.NAME
        self.size = size

    def __enter__(self) -> SpaceReserve:
        try:
            with self.path.open("wb") as fh:
                fh.write(bytes(self.size))
                fh.flush()
                os.fsync(fh.fileno())
        except OSError:
            self.release()
        return self

    def release(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()

    def __exit__(self, *exc: object) -> None:
        self.release()


class RunLock:
    """An exclusive lock on a run folder while a process writes to it (``fcntl.flock``, POSIX only).

    A second ``--resume`` of a run that is still going would rewrite its results under it and run its
    in-flight trials twice; it stops with a message instead. The kernel drops the lock when the holder
    dies, even by SIGKILL, so a killed run never leaves a stale lock behind.
    """

    NAME = ".lock"

    def __init__(self, directory: Path) -> None:
        self.path = directory / self.NAME
        self._hold: contextlib.AbstractContextManager[bool] | None = None

    def __enter__(self) -> RunLock:
        self._hold = locked(self.path, wait=False)
        if not self._hold.__enter__():
            self._hold.__exit__(None, None, None)
            self._hold = None
            raise RunInUseError(f"{self.path.parent} is being written by another harness process; wait for it "
                                "to finish (or stop it) before resuming")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._hold is not None:
            self._hold.__exit__(None, None, None)
            self._hold = None


class RunInUseError(HarnessError):
    pass
