"""Finding a run folder from what a user types: a folder, a file in it, a suite folder, or a bare run id."""

from __future__ import annotations

import json
from pathlib import Path

from harness.errors import HarnessError
from harness.store import MANIFEST_FILE, RESULTS_FILE

# Which format a file name asks for, for ``--output``.
SUFFIX_FORMATS = {".md": "markdown", ".markdown": "markdown", ".json": "json", ".html": "html", ".htm": "html",
                  ".txt": "table"}  # fmt: skip


def _is_run(path: Path) -> bool:
    return (path / MANIFEST_FILE).is_file()


def _latest_run(suite_dir: Path) -> Path | None:
    """The most recently started run in a suite's folder (by its manifest, not the folder's mtime)."""
    runs = []
    for child in suite_dir.iterdir():
        if child.is_dir() and _is_run(child):
            try:
                started = float(json.loads((child / MANIFEST_FILE).read_text(encoding="utf-8"))["started_at"])
            except (ValueError, KeyError, TypeError, OSError):
                continue
            runs.append((started, child.name, child))
    return max(runs)[2] if runs else None


def locate_run(spec: str | Path, reports_root: Path = Path("reports")) -> Path:
    """A run folder: ``spec`` itself, the folder of a results.jsonl/manifest.json, the latest run of a suite
    folder, ``SUITE/RUN_ID`` or ``RUN_ID`` under ``reports_root``."""
    path = Path(spec)
    if path.is_file() and path.name in (RESULTS_FILE, MANIFEST_FILE):
        path = path.parent
    if path.is_dir():
        if _is_run(path):
            return path
        latest = _latest_run(path)
        if latest is not None:
            return latest
        raise HarnessError(f"{path}: not a run folder (no {MANIFEST_FILE}) and holds no runs")
    candidate = reports_root / path
    if candidate.is_dir() and _is_run(candidate):
        return candidate
    if reports_root.is_dir() and len(path.parts) == 1:
        matches = sorted(p for p in reports_root.glob(f"*/{path.name}") if p.is_dir() and _is_run(p))
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise HarnessError(f"run id {path.name!r} exists for several suites: "
                               + ", ".join(str(m) for m in matches) + "; give the folder")  # fmt: skip
    raise HarnessError(f"no run {str(spec)!r}: give a run folder (reports/<suite>/<run-id>), a suite folder, or "
                       f"a run id under {reports_root}")  # fmt: skip


def output_format(path: Path, formats: tuple[str, ...]) -> str:
    """The one format to write to ``path``: the --format given, else the file's suffix."""
    if len(formats) > 1:
        raise HarnessError("--output writes one format; give at most one --format")
    if formats:
        return formats[0]
    fmt = SUFFIX_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise HarnessError(f"--output {path}: cannot tell the format from {path.suffix or 'no suffix'!r}; "
                           f"add --format or use one of {', '.join(SUFFIX_FORMATS)}")  # fmt: skip
    return fmt
