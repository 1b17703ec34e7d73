"""The resume rule: a run is only ever continued with the suite it was started with.

A run's manifest records the suite's hash and a fingerprint of each of its parts (prompts, models, graders,
cases, settings, and every file the suite read). ``--resume`` with a suite whose hash differs refuses (exit 2)
and names what changed, so old grades are never kept under new graders and trials of an edited case are
never mixed into the old run. The ways forward it offers: a new run, or ``harness regrade`` (the stored
outputs graded again with the current graders, into a new run folder; no API calls).
"""

from __future__ import annotations

import hashlib
import shlex
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.suite.model import Suite, fingerprint


class SuiteChangedError(HarnessError):
    """``--resume`` of a run whose suite has changed since (exit 2)."""


def suite_inputs(suite: Suite) -> dict[str, Any]:
    """Fingerprints of the suite's parts, stored in the manifest so a later resume can say what changed."""
    cases = hashlib.sha256()
    for case in suite.iter_cases():
        cases.update(case.fingerprint.encode())
        cases.update(fingerprint([dict(g.raw) for g in case.graders]).encode())
    files = {}
    # The suite file itself is covered part by part above: an edit that changes no part (a comment, the
    # base_url of a model that moved) must not block a resume.
    for path in (p for p in suite.files if p.resolve() != suite.path.resolve()):
        try:
            files[_relative(path, suite.root)] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        except OSError:
            files[_relative(path, suite.root)] = "unreadable"
    return {
        "prompts": {name: p.fingerprint for name, p in suite.prompts.items()},
        "models": {m.id: m.fingerprint for m in (*suite.models, *suite.judges.values())},
        "graders": fingerprint([dict(g.raw) for g in suite.graders]),
        "cases": cases.hexdigest()[:16],
        "settings": fingerprint([list(suite.temperatures), suite.repeats, dict(suite.params), dict(suite.vars),
                                 suite.threshold, suite.seed]),
        "files": files,
    }


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def what_changed(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """Human words for each part that differs between two ``suite_inputs`` (empty: nothing that matters)."""
    changes = []
    for part in ("prompts", "models"):
        old, new = before.get(part) or {}, now.get(part) or {}
        singular = part[:-1]
        changes += [f"{singular} {name} changed" for name in sorted(set(old) & set(new)) if old[name] != new[name]]
        changes += [f"{singular} {name} added" for name in sorted(set(new) - set(old))]
        changes += [f"{singular} {name} removed" for name in sorted(set(old) - set(new))]
    for part, words in (("graders", "graders"), ("cases", "cases (their text, variables or graders)"),
                        ("settings", "settings (temperatures, repeats, params, vars, threshold or seed)")):
        if before.get(part) != now.get(part):
            changes.append(f"{words} changed")
    old_files, new_files = before.get("files") or {}, now.get("files") or {}
    edited = sorted(name for name in set(old_files) | set(new_files) if old_files.get(name) != new_files.get(name))
    if edited:
        changes.append("files changed: " + ", ".join(edited))
    return changes


def check_resume(suite: Suite, old_hash: str, old_inputs: dict[str, Any], run_dir: Path, run_command: str) -> None:
    """Refuse a resume when the suite differs from the run's; ``run_command`` is a fresh run of the suite.

    Compared part by part when the run recorded its parts (so moving a model's ``base_url``, which is not part
    of any trial's identity, is fine); by the whole suite's hash for runs from before that.
    """
    if old_hash == suite.hash:
        return
    if old_inputs:
        found = what_changed(old_inputs, suite_inputs(suite))
        if not found:
            return
    else:
        found = ["the suite (this run predates per-part fingerprints, so which part is unknown)"]
    changes = "\n".join(f"  - {c}" for c in found)
    raise SuiteChangedError(
        f"cannot resume {run_dir}: the suite changed since this run started, and a resume would mix results of "
        f"two versions of it:\n{changes}\n"
        f"Start a new run:\n  {run_command}\n"
        f"or grade the stored outputs again with the current graders (no API calls, into a new run folder):\n"
        f"  harness regrade {shlex.quote(str(run_dir))} --suite {shlex.quote(str(suite.path))}"
    )


def resume_done_ids(suite: Suite, results: Path, planned: set[str], modes: dict[str, str],
                    cassettes_root: Path) -> tuple[set[str], list[str]]:
    """The trials a resume keeps, and notes for the user.

    A finished trial of a model that records in this resume (``record``, ``record-missing``) is kept only if
    its recording is in the cassette: otherwise it is dropped from the results and run (and recorded)
    again, so a resumed run can always be replayed offline. A replaying resume keeps what it finds.
    """
    from harness.store import prepare_resume

    done = prepare_resume(results, planned) & planned
    recording = {m for m, mode in modes.items() if mode in ("record", "record-missing")}
    if not done or not recording:
        return done, []
    from harness.execute.inventory import unrecorded

    gaps = unrecorded(suite, cassettes_root, done, recording)
    if not gaps:
        return done, []
    done = prepare_resume(results, planned, redo=gaps) & planned
    return done, [f"{len(gaps)} finished trial(s) had no recording in the cassette; recording them again"]
