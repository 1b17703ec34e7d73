"""Finding suite files: a path may be a suite file or a folder of them."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from harness.errors import HarnessError


def is_suite_file(path: Path) -> bool:
    """A YAML file whose top level declares ``suite:`` (prompt and case files do not)."""
    if path.suffix.lower() not in (".yaml", ".yml"):
        return False
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return any(line.startswith("suite:") for line in head.splitlines())


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(p for p in sorted(path.rglob("*.y*ml")) if is_suite_file(p))
        elif path.exists():
            out.append(path)
        else:
            raise HarnessError(f"{raw}: no such file or folder")
    return out
