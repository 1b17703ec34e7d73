"""Case files under ``evals/``: JSONL, CSV or YAML, read as a stream of raw rows with their line numbers.

JSONL and CSV are streamed row by row, so a 50 MB dataset is never held in memory at once; a YAML case
file is a list and is parsed whole (YAML cannot be streamed usefully), so large datasets belong in JSONL.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.errors import Location, SuiteError
from harness.suite.yamlread import LineDict, LineList, line_of, load_yaml_text, read_text

SUPPORTED = (".jsonl", ".csv", ".yaml", ".yml", ".json")


def iter_rows(path: Path, display: str) -> Iterator[tuple[dict[str, Any], Location]]:
    """Yield each row of a case file with the location it came from."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        yield from _jsonl_rows(path, display)
    elif suffix == ".csv":
        yield from _csv_rows(path, display)
    elif suffix in (".yaml", ".yml", ".json"):
        yield from _yaml_rows(path, display)
    else:
        raise SuiteError(
            Location(display), f"unsupported case file type {suffix!r}; use one of {', '.join(SUPPORTED)}"
        )


def _open_text(path: Path, display: str) -> io.TextIOWrapper:
    try:
        return open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed by the callers' with
    except FileNotFoundError:
        raise SuiteError(Location(display), f"file not found: {display}") from None
    except OSError as exc:
        raise SuiteError(Location(display), f"cannot read {display}: {exc.strerror}") from None


def _decode_error(display: str, line: int) -> SuiteError:
    return SuiteError(Location(display, line), "not UTF-8 text; save the file as UTF-8")


def _jsonl_rows(path: Path, display: str) -> Iterator[tuple[dict[str, Any], Location]]:
    with _open_text(path, display) as fh:
        lineno = 0
        while True:
            try:
                line = fh.readline()
            except UnicodeDecodeError:
                raise _decode_error(display, lineno + 1) from None
            if not line:
                return
            lineno += 1
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SuiteError(Location(display, lineno), f"invalid JSON: {exc.msg}") from None
            if not isinstance(row, dict):
                raise SuiteError(Location(display, lineno), "each line must be a JSON object (a case)")
            yield row, Location(display, lineno)


def _csv_rows(path: Path, display: str) -> Iterator[tuple[dict[str, Any], Location]]:
    with _open_text(path, display) as fh:
        reader = csv.DictReader(fh)
        try:
            for row in reader:
                line = reader.line_num
                if None in row:
                    raise SuiteError(Location(display, line), "row has more cells than the header")
                yield {k: v for k, v in row.items() if k}, Location(display, line)
        except UnicodeDecodeError:
            raise _decode_error(display, reader.line_num + 1) from None
        except csv.Error as exc:
            raise SuiteError(Location(display, reader.line_num), f"invalid CSV: {exc}") from None


def _yaml_rows(path: Path, display: str) -> Iterator[tuple[dict[str, Any], Location]]:
    data = load_yaml_text(read_text(path, display), display)
    if isinstance(data, LineDict) and "cases" in data:
        data = data["cases"]
    if not isinstance(data, LineList):
        raise SuiteError(Location(display, 1), "a YAML case file must be a list of cases (or have `cases:`)")
    for index, row in enumerate(data):
        line = line_of(data, index)
        if not isinstance(row, dict):
            raise SuiteError(Location(display, line), "each case must be a mapping")
        yield row, Location(display, line)
