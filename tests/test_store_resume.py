"""The results file across kills and resumes: torn lines, corrupt lines, redone errors, no duplicates."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.errors import EXIT_INCOMPLETE, RunIncompleteError
from harness.store import (
    ResultsWriter,
    RunInUseError,
    RunLock,
    TrialError,
    TrialResult,
    finished_ids,
    prepare_resume,
    read_results,
)


def result(trial_id: str, error: TrialError | None = None, output: str = "ok") -> TrialResult:
    return TrialResult(trial_id=trial_id, case_id=f"case-{trial_id}", prompt="v1", model="m", temperature=0.0,
                       repeat=0, output=None if error else output, passed=None if error else True,
                       error=error, attempts=1)


def write(path: Path, *results: TrialResult) -> None:
    with ResultsWriter(path) as writer:
        for r in results:
            writer.write(r)


def lines(path: Path) -> list[dict]:
    raw = path.read_bytes().split(b"\n")
    assert raw[-1] == b"", "the file must end with a newline"
    return [json.loads(line) for line in raw[:-1]]


RATE = TrialError("rate_limit", "HTTP 429: slow down", 429)
BAD_REQUEST = TrialError("client", "HTTP 400: bad", 400)


@pytest.mark.parametrize(("error", "redone"), [
    (None, False), (BAD_REQUEST, False), (RATE, True), (TrialError("server", "HTTP 500", 500), True),
    (TrialError("timeout", "request timed out"), True), (TrialError("connection", "refused"), True),
    (TrialError("auth", "HTTP 401", 401), True), (TrialError("not_found", "HTTP 404", 404), True),
    (TrialError("bad_response", "malformed"), True), (TrialError("grading", "ValueError"), True),
])
def test_which_trials_a_resume_redoes(tmp_path: Path, error: TrialError | None, redone: bool) -> None:
    path = tmp_path / "results.jsonl"
    write(path, result("a", error))
    assert result("a", error).finished is not redone
    assert finished_ids(path) == (set() if redone else {"a"})


def test_prepare_resume_drops_torn_tail_corrupt_lines_duplicates_and_redone_errors(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    write(path, result("a"), result("b", RATE), result("c", BAD_REQUEST), result("a", output="dup"))
    with path.open("ab") as fh:
        fh.write(b'{"not": "a record"}\n')
        fh.write(b"garbage that is not json\n")
        fh.write(b"\xff\xfe broken utf-8\n")
        fh.write(result("d").to_json().encode()[:40])  # a kill mid-write: no newline
    kept = prepare_resume(path, planned={"a", "b", "c", "d"})
    assert kept == {"a", "c"}
    assert [r["trial_id"] for r in lines(path)] == ["a", "c"]
    assert lines(path)[0]["output"] == "ok"  # the first record of a trial wins
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_prepare_resume_keeps_records_outside_the_plan(tmp_path: Path) -> None:
    # A resume filtered to other models must not throw away another model's errors before redoing them.
    path = tmp_path / "results.jsonl"
    write(path, result("mine", RATE), result("other", RATE), result("done"))
    kept = prepare_resume(path, planned={"mine", "done"})
    assert kept == {"other", "done"}
    assert [r["trial_id"] for r in lines(path)] == ["other", "done"]


def test_prepare_resume_leaves_a_clean_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    write(path, result("a"), result("b", BAD_REQUEST))
    os.chmod(path, 0o640)
    inode = path.stat().st_ino
    assert prepare_resume(path, planned={"a", "b"}) == {"a", "b"}
    assert path.stat().st_ino == inode  # not rewritten


def test_rewritten_results_keep_their_permissions(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    write(path, result("a"), result("b", RATE))
    os.chmod(path, 0o640)
    prepare_resume(path, planned={"a", "b"})
    assert path.stat().st_mode & 0o777 == 0o640


def test_prepare_resume_removes_stale_temporaries_of_a_killed_run(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    write(path, result("a"))
    stale = [tmp_path / ".manifest.json.abc123.tmp", tmp_path / ".results.jsonl.x9.tmp"]
    for s in stale:
        s.write_text("{half", encoding="utf-8")
    other = tmp_path / "notes.tmp"
    other.write_text("mine", encoding="utf-8")
    prepare_resume(path, planned={"a"})
    assert not any(s.exists() for s in stale)
    assert other.exists()


def test_prepare_resume_of_a_missing_file(tmp_path: Path) -> None:
    assert prepare_resume(tmp_path / "results.jsonl", planned={"a"}) == set()


def test_a_torn_multibyte_character_does_not_break_reading(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    write(path, result("a", output="naïve café ✓"))
    torn = result("b", output="✓✓✓").to_json().encode("utf-8")
    cut = torn.index("✓".encode()) + 1  # in the middle of a three-byte character
    with path.open("ab") as fh:
        fh.write(torn[:cut])
    assert [r.trial_id for r in read_results(path)] == ["a"]
    assert prepare_resume(path, planned={"a", "b"}) == {"a"}
    assert lines(path)[0]["output"] == "naïve café ✓"


def test_writer_cuts_a_torn_tail_before_appending(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    write(path, result("a"))
    with path.open("ab") as fh:
        fh.write(b'{"trial_id": "b", "case_')
    write(path, result("c"))
    assert [r["trial_id"] for r in lines(path)] == ["a", "c"]


def test_writer_flushes_every_line_at_once(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    writer = ResultsWriter(path)
    try:
        writer.write(result("a"))
        # Another reader (or a process killed right now) already sees the whole line.
        assert [r.trial_id for r in read_results(path)] == ["a"]
    finally:
        writer.close()


def test_a_failing_disk_stops_the_run_with_a_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    path = tmp_path / "results.jsonl"
    writer = ResultsWriter(path)
    writer.write(result("a"))
    real_write = os.write

    def half_then_full(fd: int, data: bytes) -> int:
        # Half the line reaches the file, then the disk is full: the half must not stay.
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(RunIncompleteError, match="No space left on device") as info:
        writer.write(result("b"))
    monkeypatch.undo()
    assert info.value.exit_code == EXIT_INCOMPLETE
    assert str(path) in str(info.value)
    lines = path.read_bytes().splitlines(keepends=True)
    assert len(lines) == 1 and lines[0].endswith(b"\n")  # only the whole first line
    writer.close()


def test_a_run_folder_is_written_by_one_process_at_a_time(tmp_path: Path) -> None:
    with RunLock(tmp_path), pytest.raises(RunInUseError, match="another harness process"), RunLock(tmp_path):
        pass
    with RunLock(tmp_path):  # released on exit: the next run may go
        pass
