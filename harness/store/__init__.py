"""The store stage: one JSON line per finished trial, flushed at once, plus the run's manifest.

Layout: ``reports/<suite>/<run-id>/results.jsonl`` and ``manifest.json``. The results file is only ever
appended to, so a crash or Ctrl-C loses no finished trial; a torn last line (a kill mid-write) is detected
on reading and dropped, so its trial is redone on resume. Every other file is written to a temporary file
and renamed, so a good report is never half-overwritten.

Modules: ``records`` (what one trial recorded), ``compact`` (its compact form, for large runs), ``results``
(results.jsonl), ``manifest`` (manifest.json), ``files`` (atomic writes and the run lock).
"""

from harness.store.compact import CompactResult, TrialRecord, compact, read_compact_results
from harness.store.files import (
    RunInUseError,
    RunLock,
    SpaceReserve,
    atomic_file,
    remove_stale_temporaries,
    write_atomic,
)
from harness.store.manifest import MANIFEST_FILE, Manifest, ManifestError
from harness.store.records import (
    FINAL_ERROR_KINDS,
    INPUT_TOKEN_KEYS,
    OUTPUT_TOKEN_KEYS,
    SNIPPET_CHARS,
    GradeRecord,
    TrialError,
    TrialOutcome,
    TrialResult,
    choice_id,
    request_id,
    snippet,
    variant_label,
)
from harness.store.results import (
    RESULTS_FILE,
    ResultsWriter,
    finished_ids,
    folder_stamp,
    prepare_resume,
    read_results,
    run_dir,
)

__all__ = [
    "FINAL_ERROR_KINDS",
    "INPUT_TOKEN_KEYS",
    "MANIFEST_FILE",
    "OUTPUT_TOKEN_KEYS",
    "RESULTS_FILE",
    "SNIPPET_CHARS",
    "CompactResult",
    "GradeRecord",
    "Manifest",
    "ManifestError",
    "ResultsWriter",
    "RunInUseError",
    "RunLock",
    "SpaceReserve",
    "TrialError",
    "TrialOutcome",
    "TrialRecord",
    "TrialResult",
    "atomic_file",
    "choice_id",
    "request_id",
    "compact",
    "finished_ids",
    "folder_stamp",
    "prepare_resume",
    "read_compact_results",
    "read_results",
    "remove_stale_temporaries",
    "run_dir",
    "snippet",
    "variant_label",
    "write_atomic",
]
