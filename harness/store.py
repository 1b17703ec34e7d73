"""The store stage: one JSON line per finished trial, flushed at once, plus the run's manifest.

Layout: ``reports/<suite>/<run-id>/results.jsonl`` and ``manifest.json``. The results file is only ever
appended to, so a crash or Ctrl-C loses no finished trial; a torn last line (a kill mid-write) is detected
on reading and dropped, so its trial is redone on resume. Every other file is written to a temporary file
and renamed, so a good report is never half-overwritten.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import stat
import sys
import tempfile
from collections.abc import Container, Iterator, Mapping
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import IO, Any

from harness.errors import HarnessError, RunIncompleteError

RESULTS_FILE = "results.jsonl"
MANIFEST_FILE = "manifest.json"
# Errors a rerun would only repeat: the provider rejected the request itself (HTTP 400 and the like).
# Everything else (rate limits, 5xx, timeouts, refused connections, a bad key or URL fixed since) is redone.
FINAL_ERROR_KINDS = frozenset({"client"})
# Where a provider reports its token counts: OpenAI's names first, then those of the Responses-style APIs.
INPUT_TOKEN_KEYS = ("prompt_tokens", "input_tokens")
OUTPUT_TOKEN_KEYS = ("completion_tokens", "output_tokens")
SNIPPET_CHARS = 100


@dataclass(frozen=True)
class GradeRecord:
    grader: str
    passed: bool | None
    score: float
    reason: str
    error: str | None = None
    weight: float = 1.0
    usage: dict[str, int] | None = None
    cost: float | None = None
    details: dict[str, Any] | None = None


@dataclass(frozen=True)
class TrialError:
    """Why a trial produced no output. ``kind``: rate_limit, server, timeout, connection, client, auth,
    not_found, bad_response, replay_miss, template, grading, cancelled, other."""

    kind: str
    message: str
    status: int | None = None


@dataclass(frozen=True)
class TrialResult:
    """Everything recorded about one trial. Identity fields first, then outcome."""

    trial_id: str
    case_id: str
    prompt: str
    model: str
    temperature: float
    repeat: int
    request: dict[str, Any] = field(default_factory=dict)
    output: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None
    grades: list[GradeRecord] = field(default_factory=list)
    # None when the trial errored or a grader could not decide: neither a pass nor a fail.
    passed: bool | None = None
    score: float | None = None
    usage: dict[str, int] = field(default_factory=dict)
    cost: float | None = None
    judge_usage: dict[str, int] = field(default_factory=dict)
    judge_cost: float | None = None
    latency_ms: float | None = None
    attempts: int = 0
    error: TrialError | None = None
    label: Any = None  # a human label carried over from the case, for judge calibration
    group: str | None = None
    finished_at: float | None = None

    @property
    def variant(self) -> str:
        return variant_label(self.model, self.prompt, self.temperature)

    @property
    def decided(self) -> bool:
        return self.error is None and self.passed is not None

    @property
    def finished(self) -> bool:
        """Whether a resume keeps this record (True) or runs the trial again (False)."""
        return self.error is None or self.error.kind in FINAL_ERROR_KINDS

    @property
    def tokens_in(self) -> float | None:
        return _token_count(self.usage, INPUT_TOKEN_KEYS)

    @property
    def tokens_out(self) -> float | None:
        return _token_count(self.usage, OUTPUT_TOKEN_KEYS)

    @property
    def output_snippet(self) -> str:
        return snippet(self.output or "")

    def to_json(self) -> str:
        # ``default`` turns this record and its nested ones into dicts as json meets them: the same text as
        # ``json.dumps(asdict(self))`` at a third of the cost (asdict deep-copies the request body).
        return json.dumps(self, default=_record_fields, ensure_ascii=False, sort_keys=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialResult:
        values = dict(data)
        values["grades"] = [GradeRecord(**g) for g in values.get("grades") or []]
        err = values.get("error")
        values["error"] = TrialError(**err) if err else None
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in values.items() if k in known})


def _record_fields(obj: Any) -> dict[str, Any]:
    if is_dataclass(obj) and not isinstance(obj, type):
        return {name: getattr(obj, name) for name in obj.__dataclass_fields__}
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _token_count(usage: Mapping[str, int], names: tuple[str, ...]) -> float | None:
    for name in names:
        if name in usage and usage[name] is not None:
            return float(usage[name])
    return None


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """Text on one line, cut to ``limit`` characters: a preview of a model's output."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(slots=True)
class CompactResult:
    """What the statistics read of one trial, for runs too large to hold as ``TrialResult`` (about 3 KB
    each, most of it the rendered request, the output and the grades' reasons).

    Attribute names match ``TrialResult`` so the statistics take either. Left out: the request, output,
    tool calls, finish reason, attempts and usage dicts (``tokens_in``/``tokens_out`` stand for the usage).
    Judge calibration needs more, but only of labelled trials: for those, ``grades`` holds the judge grades
    and ``output_snippet`` a preview of the output; for every other trial they are empty.
    """

    trial_id: str
    case_id: str
    prompt: str
    model: str
    temperature: float
    repeat: int
    passed: bool | None
    score: float | None
    error: TrialError | None
    cost: float | None
    latency_ms: float | None
    judge_cost: float | None
    tokens_in: float | None
    tokens_out: float | None
    group: str | None
    label: Any
    grades: tuple[GradeRecord, ...]
    output_snippet: str

    @property
    def variant(self) -> str:
        return variant_label(self.model, self.prompt, self.temperature)

    @property
    def decided(self) -> bool:
        return self.error is None and self.passed is not None

    @property
    def finished(self) -> bool:
        return self.error is None or self.error.kind in FINAL_ERROR_KINDS


TrialRecord = TrialResult | CompactResult


def compact(result: TrialResult, shared: dict[Any, Any] | None = None) -> CompactResult:
    """The compact form of a result. Strings repeated across trials (model, prompt, case id, group) are
    interned, and with ``shared`` (one dict per reading) so are errors and numbers that recur (temperatures,
    scores, token counts, costs): a run's records then cost little beyond what differs from trial to trial."""
    share = functools.partial(_share, shared) if shared is not None else _same
    labelled = result.label is not None
    judged = tuple(g for g in result.grades if g.grader == "judge") if labelled else ()
    return CompactResult(
        trial_id=result.trial_id, case_id=_intern(result.case_id), prompt=_intern(result.prompt),
        model=_intern(result.model), temperature=share(result.temperature), repeat=result.repeat,
        passed=result.passed, score=share(result.score), error=share(result.error), cost=share(result.cost),
        latency_ms=result.latency_ms, judge_cost=share(result.judge_cost), tokens_in=share(result.tokens_in),
        tokens_out=share(result.tokens_out), group=_intern(result.group), label=result.label, grades=judged,
        output_snippet=result.output_snippet if judged else "",
    )  # fmt: skip


def _intern(value: Any) -> Any:
    return sys.intern(value) if type(value) is str else value


def _same(value: Any) -> Any:
    return value


def _share(shared: dict[Any, Any], value: Any) -> Any:
    """The first equal value seen, for floats and errors. -0.0 equals 0.0 but prints differently, and NaN
    equals nothing: both are kept as they are."""
    if type(value) is float:
        if value != value or (value == 0.0 and math.copysign(1.0, value) < 0):
            return value
    elif type(value) is not TrialError:
        return value
    try:
        return shared.setdefault(value, value)
    except TypeError:  # an error whose message is not a string (a hand-edited file) is not hashable
        return value


def variant_label(model: str, prompt: str, temperature: float) -> str:
    return f"{model} · {prompt} · T={temperature:g}"


def run_dir(reports_root: Path, suite: str, run_id: str) -> Path:
    return reports_root / suite / run_id


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


def read_compact_results(path: Path) -> Iterator[CompactResult]:
    """``read_results`` in compact form: what a report or a gate over a large run keeps in memory."""
    shared: dict[Any, Any] = {}
    for record in read_results(path):
        yield compact(record, shared)


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


def prepare_resume(path: Path, planned: Container[str]) -> set[str]:
    """Make a results file ready for a resume; return the ids of the trials it need not run again.

    Records of planned trials that will be redone (an error worth retrying) are dropped, as are a torn last
    line, corrupt lines and repeated ids, so after the resume every trial id occurs exactly once. Records
    of trials outside ``planned`` (another ``--model`` filter, say) are kept as they are. The file is
    rewritten atomically, and only when something has to go; leftover temporary files of a killed run are
    removed.
    """
    _remove_stale_temporaries(path.parent)
    if not path.exists():
        return set()
    keep: list[bool] = []
    kept: set[str] = set()
    clean = True
    with path.open("rb") as fh:
        for line in fh:
            record = _parse(line) if line.endswith(b"\n") else None
            wanted = (
                record is not None and record.trial_id not in kept
                and (record.finished or record.trial_id not in planned)
            )
            if wanted:
                kept.add(record.trial_id)  # type: ignore[union-attr]
            keep.append(wanted)
            clean = clean and wanted
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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private; the rewritten results keep the permissions the run gave them.
        os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
        with os.fdopen(fd, "wb") as out, path.open("rb") as src:
            for wanted, line in zip(keep, src, strict=False):
                if wanted:
                    out.write(line)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _remove_stale_temporaries(directory: Path) -> None:
    # write_atomic's temporary files: a kill between create and rename leaves one behind.
    if not directory.is_dir():
        return
    for name in (RESULTS_FILE, MANIFEST_FILE):
        for stale in directory.glob(f".{name}.*.tmp"):
            with contextlib.suppress(OSError):
                stale.unlink()


class ResultsWriter:
    """Appends one line per trial and flushes it to the OS at once.

    On open, a torn last line left by a kill is cut off so the file stays valid JSON Lines.
    """

    def __init__(self, path: Path, fsync: bool = False) -> None:
        self.path = path
        self.fsync = fsync
        path.parent.mkdir(parents=True, exist_ok=True)
        _truncate_torn_tail(path)
        self._fh: IO[str] = path.open("a", encoding="utf-8")

    def write(self, result: TrialResult) -> None:
        try:
            self._fh.write(result.to_json() + "\n")
            self._fh.flush()
            if self.fsync:
                os.fsync(self._fh.fileno())
        except OSError as exc:  # a full disk or a vanished folder: stop the run with a message, not a trace
            raise RunIncompleteError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def close(self) -> None:
        # A failing disk was already reported by ``write``; closing must not raise over that report.
        with contextlib.suppress(OSError):
            self._fh.flush()
            os.fsync(self._fh.fileno())
        with contextlib.suppress(OSError):
            self._fh.close()

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


class RunLock:
    """An exclusive lock on a run folder while a process writes to it (``fcntl.flock``, POSIX only).

    A second ``--resume`` of a run that is still going would rewrite its results under it and run its
    in-flight trials twice; it stops with a message instead. The kernel drops the lock when the holder
    dies, even by SIGKILL, so a killed run never leaves a stale lock behind.
    """

    NAME = ".lock"

    def __init__(self, directory: Path) -> None:
        self.path = directory / self.NAME
        self._fh: IO[bytes] | None = None

    def __enter__(self) -> RunLock:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; runs are simply not guarded
            return self
        self._fh = self.path.open("ab")
        try:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._fh.close()
            self._fh = None
            raise RunInUseError(f"{self.path.parent} is being written by another harness process; wait for it "
                                "to finish (or stop it) before resuming") from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            self._fh.close()  # closing releases the lock
            self._fh = None


class RunInUseError(HarnessError):
    pass


def write_atomic(path: Path, text: str) -> None:
    """Write a whole file via a temporary file and a rename: readers see the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@dataclass
class Manifest:
    """What a run was: enough to reproduce it and to check two runs are comparable."""

    suite: str
    run_id: str
    suite_file: str
    suite_hash: str
    harness_version: str
    record_mode: str
    models: list[str]
    prompts: list[str]
    temperatures: list[float]
    repeats: int
    trials_planned: int
    started_at: float
    finished_at: float | None = None
    status: str = "running"  # running | complete | interrupted | incomplete
    trials_done: int = 0
    shard: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def write(self, directory: Path) -> None:
        write_atomic(directory / MANIFEST_FILE, json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        path = directory / MANIFEST_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            known = cls.__dataclass_fields__
            return cls(**{k: v for k, v in data.items() if k in known})
        except (ValueError, TypeError, AttributeError) as exc:
            raise ManifestError(f"{path}: unreadable manifest ({exc})") from None


class ManifestError(HarnessError, ValueError):
    """A manifest.json that is not a manifest. A ValueError too: callers that skip such folders catch that."""
