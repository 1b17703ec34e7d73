"""Case files under ``evals/``: JSONL, CSV or YAML, read as a stream of raw rows with their line numbers.

JSONL and CSV are streamed row by row, so a 50 MB dataset is never held in memory at once; a YAML case
file is a list and is parsed whole (YAML cannot be streamed usefully), so large datasets belong in JSONL.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.errors import Location, SuiteError
from harness.suite.checks import check_plain_data
from harness.suite.yamlread import MAX_DEPTH, LineDict, LineList, line_of, load_yaml_text, read_text

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
            Location(display, None, ROW), f"unsupported case file type {suffix!r}; use one of {', '.join(SUPPORTED)}"
        )


ROW = "row"  # the field named by errors about a whole row of a case file


def _lines(path: Path, display: str) -> Iterator[tuple[int, str]]:
    """The file's lines with their numbers, decoded one at a time.

    Reading bytes and decoding each line (rather than through a text wrapper, which decodes 8 KB chunks
    ahead) both streams the file and puts an undecodable byte on its own line.
    """
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below; a generator cannot use `with` around yields
    except FileNotFoundError:
        raise SuiteError(Location(display, None, ROW), f"file not found: {display}") from None
    except OSError as exc:
        raise SuiteError(Location(display, None, ROW), f"cannot read {display}: {exc.strerror}") from None
    with fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise SuiteError(
                    Location(display, lineno, ROW),
                    f"not UTF-8 text (byte {exc.start} of the line); save the file as UTF-8",
                ) from None
            yield lineno, text


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a usable number")


def _jsonl_rows(path: Path, display: str) -> Iterator[tuple[dict[str, Any], Location]]:
    for lineno, line in _lines(path, display):
        if not line.strip():
            continue
        try:
            row = json.loads(line, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            raise SuiteError(Location(display, lineno, ROW), f"invalid JSON: {exc.msg}") from None
        except ValueError as exc:  # NaN, Infinity
            raise SuiteError(Location(display, lineno, ROW), f"invalid JSON: {exc}") from None
        except RecursionError:
            raise SuiteError(Location(display, lineno, ROW), "invalid JSON: nested too deeply") from None
        if not isinstance(row, dict):
            raise SuiteError(Location(display, lineno, ROW), "each line must be a JSON object (a case)")
        _check_depth(row, Location(display, lineno, ROW))
        yield row, Location(display, lineno)


def _check_depth(row: dict[str, Any], location: Location) -> None:
    """Refuse a row nested deeper than a suite may be: later stages walk values recursively."""
    level: list[Any] = [row]
    depth = 1
    while level:
        if depth > MAX_DEPTH:
            raise SuiteError(location, f"nested more than {MAX_DEPTH} levels deep")
        level = [child for value in level if isinstance(value, dict | list)
                 for child in (value.values() if isinstance(value, dict) else value)
                 if isinstance(child, dict | list)]
        depth += 1


def _csv_rows(path: Path, display: str) -> Iterator[tuple[dict[str, Any], Location]]:
    reader = csv.DictReader(line for _, line in _lines(path, display))
    try:
        header = reader.fieldnames or []
        seen: set[str] = set()
        for name in header:
            if name and name in seen:
                raise SuiteError(Location(display, reader.line_num, name),
                                 f"duplicate column {name!r} in the header")
            seen.add(name)
        for row in reader:
            line = reader.line_num
            if None in row:
                raise SuiteError(Location(display, line, ROW), "row has more cells than the header")
            missing = [k for k, v in row.items() if v is None]
            if missing:
                raise SuiteError(Location(display, line, ROW),
                                 f"row has {len(header) - len(missing)} cells but the header has {len(header)} "
                                 f"(no value for {', '.join(map(repr, missing))})")
            yield {k: v for k, v in row.items() if k}, Location(display, line)
    except csv.Error as exc:
        raise SuiteError(Location(display, reader.line_num, ROW), f"invalid CSV: {exc}") from None


def _yaml_rows(path: Path, display: str) -> Iterator[tuple[dict[str, Any], Location]]:
    data = load_yaml_text(read_text(path, display), display)
    check_plain_data(data, display)
    if isinstance(data, LineDict) and "cases" in data:
        data = data["cases"]
    if not isinstance(data, LineList):
        raise SuiteError(Location(display, getattr(data, "line", None) or 1, "(top level)"),
                         "a YAML case file must be a list of cases (or have `cases:`)")
    for index, row in enumerate(data):
        line = line_of(data, index)
        if not isinstance(row, dict):
            raise SuiteError(Location(display, line, ROW), "each case must be a mapping")
        yield row, Location(display, line)
