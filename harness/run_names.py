"""Naming runs on the command line: what a user may type for a run, resolved to run folders.

Used by ``harness gate`` (and anything else that acts on several suites' runs at once), so CI can say
``harness gate pr-42`` after ``harness run suites/ --run-id pr-42``.
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import HarnessError
from harness.store import MANIFEST_FILE, RESULTS_FILE, Manifest

LATEST = "latest"


def _is_run(path: Path) -> bool:
    return (path / MANIFEST_FILE).is_file()


def _read_manifest(directory: Path) -> Manifest | None:
    try:
        return Manifest.read(directory)
    except (OSError, ValueError, TypeError):
        return None


def latest_run(suite_dir: Path) -> Path | None:
    """The newest run folder (by start time) under ``reports/<suite>/``."""
    found = [(m.started_at, p.name, p) for p in suite_dir.iterdir() if p.is_dir() and _is_run(p)
             if (m := _read_manifest(p)) is not None] if suite_dir.is_dir() else []  # fmt: skip
    return max(found)[2] if found else None


def resolve_runs(spec: str, reports_root: Path = Path("reports")) -> list[Path]:
    """Run folders named by ``spec``.

    Accepted: a run folder (or its results.jsonl / manifest.json); ``SUITE@RUN_ID``, ``SUITE@latest`` or
    ``SUITE@BRANCH`` (the newest run made on that git branch, from the history index);
    ``SUITE/RUN_ID`` under ``reports_root``; a suite name (its latest run); a run id (that run of every suite
    that has one, e.g. ``harness run suites/ --run-id pr-42`` then ``harness gate pr-42``); a suite's report
    folder (its latest run); a reports root such as ``reports/`` (the latest run of each suite in it; none is
    fine: nothing ran); a suite file or a folder of suite files (the latest run of each of those suites).
    """
    suite, at, run_id = spec.partition("@")
    if at:
        if not suite or not run_id:
            raise HarnessError(f"{spec!r}: expected SUITE@RUN_ID (or SUITE@latest)")
        folder = reports_root / suite
        path = latest_run(folder) if run_id == LATEST else folder / run_id
        if path is not None and not _is_run(path) and run_id != LATEST:
            path = _latest_on_branch(reports_root, suite, run_id)
        if path is None or not _is_run(path):
            raise HarnessError(f"{spec}: no such run under {folder}/ and no run of branch {run_id!r} in the "
                               "history index" + _available(folder))
        return [path]
    path = Path(spec)
    if path.is_file() and path.name in (RESULTS_FILE, MANIFEST_FILE):
        path = path.parent
    if path.is_dir():
        if _is_run(path):
            return [path]
        newest = latest_run(path)
        if newest is not None:
            return [newest]
        from harness.suite.discover import expand_paths

        suite_files = expand_paths([path])
        if suite_files:
            return [run for f in suite_files for run in _runs_of_suite_file(f, reports_root)]
        # A reports root: the newest run of every suite folder in it.
        return [run for child in sorted(path.iterdir()) if (run := latest_run(child)) is not None]
    if path.is_file():
        return _runs_of_suite_file(path, reports_root)
    under_root = reports_root / spec
    if _is_run(under_root):
        return [under_root]
    if len(path.parts) == 1 and reports_root.is_dir():
        newest = latest_run(under_root) if under_root.is_dir() else None
        if newest is not None:
            return [newest]
        named = sorted(p for p in reports_root.glob(f"*/{spec}") if p.is_dir() and _is_run(p))
        if named:
            return named
    raise HarnessError(f"{spec}: not a run folder, SUITE@RUN_ID, suite name, run id or suite file "
                       f"(run ids and suite names are looked up under {reports_root}/)")


def resolve_one(spec: str, reports_root: Path = Path("reports")) -> Path:
    """Exactly one run folder named by ``spec`` (as ``resolve_runs``): for commands that take one run."""
    found = resolve_runs(spec, reports_root)
    if len(found) != 1:
        raise HarnessError(f"{spec}: names {len(found)} runs ({', '.join(str(p) for p in found[:5])}); "
                           "give one, e.g. SUITE@RUN_ID")  # fmt: skip
    return found[0]


def _latest_on_branch(reports_root: Path, suite: str, branch: str) -> Path | None:
    """``SUITE@main``: the newest run of the suite made on that git branch (from the history index)."""
    from harness.history.index import HistoryIndex

    return HistoryIndex(reports_root).latest_on_branch(suite, branch)


def _available(folder: Path) -> str:
    if not folder.is_dir():
        return " (no runs of this suite)"
    names = sorted(p.name for p in folder.iterdir() if _is_run(p))
    return f" (runs: {', '.join(names[-5:])})" if names else " (no runs of this suite)"


def _runs_of_suite_file(path: Path, reports_root: Path) -> list[Path]:
    from harness.suite.discover import is_suite_file
    from harness.suite.loader import load_suite

    if not is_suite_file(path):
        raise HarnessError(f"{path}: not a suite file (no top-level `suite:`) and not a run folder")
    name = load_suite(path, check_cases=False).name
    newest = latest_run(reports_root / name)
    if newest is None:
        raise HarnessError(f"{path}: suite {name!r} has no run under {reports_root}/{name}/; "
                           f"run it first: harness run {path}")
    return [newest]
