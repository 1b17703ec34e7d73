"""Building cases and grader specs from raw rows, with errors that point at the file, line and field."""

from __future__ import annotations

import difflib
import inspect
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import Location, SuiteError
from harness.grade.base import GraderConfigError, build_grader, grader_class, grader_names
from harness.suite.datasets import iter_rows
from harness.suite.model import Case, GraderSpec
from harness.suite.yamlread import line_of, load_yaml_text, read_text

RESERVED_CASE_KEYS = {"id", "vars", "messages", "graders", "label", "group", "description"}


@dataclass(frozen=True)
class LoadContext:
    """Where relative paths resolve, and the limit they may not escape."""

    file: str  # display name of the suite file
    suite_dir: Path
    root: Path
    model_ids: frozenset[str] = frozenset()

    def resolve(self, ref: str, location: Location) -> tuple[Path, str]:
        """Resolve a ``file:`` reference against the suite's folder, refusing paths outside the project."""
        path = (self.suite_dir / ref).resolve()
        if not path.is_relative_to(self.root):
            raise SuiteError(location, f"file {ref!r} is outside the project root {self.root}")
        try:
            display = str(path.relative_to(Path.cwd()))
        except ValueError:
            display = str(path)
        return path, display


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def build_grader_spec(raw: Any, field: str, ctx: LoadContext, location: Location) -> GraderSpec:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("type"), str):
        raise SuiteError(location, f"{field}: a grader needs `type` (one of {', '.join(grader_names())})")
    options = {k: v for k, v in raw.items() if k not in ("type", "weight")}
    kind = raw["type"]
    cls = grader_class(kind)
    if cls is None:
        raise SuiteError(
            Location(location.file, line_of(raw, "type") or location.line, f"{field}.type"),
            f"unknown grader {kind!r}{did_you_mean(kind, grader_names())}; known: {', '.join(grader_names())}",
        )
    weight = raw.get("weight", 1.0)
    if not isinstance(weight, int | float) or isinstance(weight, bool) or weight < 0:
        raise SuiteError(Location(location.file, line_of(raw, "weight"), f"{field}.weight"),
                         "weight must be a number ≥ 0")
    for key in list(options):
        if key.endswith("_file") and isinstance(options[key], str):
            options[key[: -len("_file")]] = _load_referenced(options[key], ctx, raw, key, field, location)
    accepted = inspect.signature(cls.__init__).parameters
    if "suite_dir" in accepted:
        options["suite_dir"] = str(ctx.suite_dir)
    if "root" in accepted:
        options["root"] = str(ctx.root)
    if kind == "judge" and isinstance(options.get("model"), str) and ctx.model_ids \
            and options["model"] not in ctx.model_ids:
        raise SuiteError(
            Location(location.file, line_of(raw, "model"), f"{field}.model"),
            f"judge model {options['model']!r} is not declared under models: or judges:"
            f"{did_you_mean(options['model'], sorted(ctx.model_ids))}",
        )
    try:
        grader = build_grader(kind, options)
    except GraderConfigError as exc:
        line = line_of(raw, exc.field) if exc.field else location.line
        sub = f"{field}.{exc.field}" if exc.field else field
        raise SuiteError(Location(location.file, line or location.line, sub), str(exc)) from None
    return GraderSpec(type=kind, grader=grader, weight=float(weight), location=location, raw=dict(raw))


def _load_referenced(ref: str, ctx: LoadContext, raw: Any, key: str, field: str, location: Location) -> Any:
    where = Location(location.file, line_of(raw, key), f"{field}.{key}")
    path, display = ctx.resolve(ref, where)
    if not path.exists():
        raise SuiteError(where, f"file not found: {ref}")
    text = read_text(path, display, where)
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise SuiteError(Location(display, exc.lineno, ""), f"invalid JSON: {exc.msg}") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        return load_yaml_text(text, display)
    return text


def build_graders(raw: Any, field: str, ctx: LoadContext, location: Location) -> tuple[GraderSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise SuiteError(location, f"{field}: must be a list of graders")
    specs = []
    for i, item in enumerate(raw):
        where = Location(location.file, line_of(raw, i) or location.line, f"{field}[{i}]")
        specs.append(build_grader_spec(item, f"{field}[{i}]", ctx, where))
    return tuple(specs)


def build_case(
    row: Mapping[str, Any],
    default_id: str,
    field: str,
    ctx: LoadContext,
    location: Location,
    extra_vars: Mapping[str, Any] | None = None,
    extra_graders: tuple[GraderSpec, ...] = (),
) -> Case:
    def at(key: str) -> Location:
        return Location(location.file, line_of(row, key) or location.line, f"{field}.{key}")

    case_id = row.get("id", default_id)
    if isinstance(case_id, bool) or not isinstance(case_id, str | int) or str(case_id).strip() == "":
        raise SuiteError(at("id"), "case id must be a non-empty string")
    given_vars = row.get("vars")
    if given_vars is not None and not isinstance(given_vars, Mapping):
        raise SuiteError(at("vars"), "vars must be a mapping")
    variables: dict[str, Any] = dict(extra_vars or {})
    variables.update({k: v for k, v in row.items() if k not in RESERVED_CASE_KEYS})
    variables.update(given_vars or {})
    messages = row.get("messages") or []
    if not isinstance(messages, list) or not all(
        isinstance(m, Mapping) and isinstance(m.get("role"), str) for m in messages
    ):
        raise SuiteError(at("messages"), "messages must be a list of {role, content} mappings")
    graders = build_graders(row.get("graders"), f"{field}.graders", ctx, at("graders"))
    group = row.get("group")
    return Case(
        id=str(case_id),
        vars=_plain(variables),
        messages=tuple(_plain(m) for m in messages),
        graders=extra_graders + graders,
        label=row.get("label"),
        group=None if group is None else str(group),
        location=location,
    )


def _plain(value: Any) -> Any:
    """Strip the loader's line-tracking types so cases hold ordinary dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def case_stream(raw_cases: list[Any], ctx: LoadContext) -> Iterator[Case]:
    """Cases in suite order: inline ones built, file ones streamed row by row."""
    for i, entry in enumerate(raw_cases):
        where = Location(ctx.file, line_of(raw_cases, i), f"cases[{i}]")
        if isinstance(entry, Mapping) and "file" in entry:
            yield from _file_cases(entry, i, ctx, where)
        else:
            yield build_case(entry, f"case-{i + 1}", f"cases[{i}]", ctx, where)


def _file_cases(entry: Mapping[str, Any], index: int, ctx: LoadContext, where: Location) -> Iterator[Case]:
    file_loc = Location(ctx.file, line_of(entry, "file"), f"cases[{index}].file")
    path, display = ctx.resolve(str(entry["file"]), file_loc)
    if not path.exists():
        raise SuiteError(file_loc, f"file not found: {entry['file']}")
    shared = build_graders(entry.get("graders"), f"cases[{index}].graders", ctx, where)
    stem = path.stem
    for row, loc in iter_rows(path, display):
        yield build_case(row, f"{stem}-{loc.line}", "case", ctx, loc,
                         extra_vars=entry.get("vars"), extra_graders=shared)
