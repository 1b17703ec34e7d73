"""Building cases and grader specs from raw rows, with errors that point at the file, line and field."""

from __future__ import annotations

import difflib
import inspect
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import Location, SuiteError
from harness.grade._common import is_template  # what graders render, so load and grade time agree
from harness.grade.base import GraderConfigError, build_grader, grader_class, grader_names
from harness.suite.datasets import SUPPORTED, iter_rows
from harness.suite.model import Case, GraderSpec
from harness.suite.tools import case_tool_results
from harness.suite.yamlread import DateText, line_of, load_yaml_text, plain, read_text, value_line
from harness.templating import check_template

RESERVED_CASE_KEYS = {"id", "vars", "messages", "graders", "label", "group", "description", "tool_results"}
# Options the loader fills in itself; a suite setting them could point the python grader elsewhere.
LOADER_OPTIONS = ("suite_dir", "root")
# Graders whose string options are not templates over the case's variables: the judge renders its own
# template (with the output), the python grader hands its options to user code untouched.
OWN_TEMPLATE_GRADERS = frozenset({"judge", "python"})


def join_field(prefix: str, key: str) -> str:
    """``cases[0]`` + ``vars`` → ``cases[0].vars``; rows of a case file have no prefix."""
    return f"{prefix}.{key}" if prefix else key


@dataclass(frozen=True)
class LoadContext:
    """Where relative paths resolve, and the limit they may not escape."""

    file: str  # display name of the suite file
    suite_dir: Path
    root: Path
    model_ids: frozenset[str] = frozenset()
    judge_defaults: Mapping[str, Any] | None = None  # the suite's `judge:` mapping, defaults for judge graders
    # Functions the prompts declare, so a case's tool result for any other is refused (None: not checked).
    declared_functions: frozenset[str] | None = None
    # Files that grader options referenced (`schema_file`, `rubric_file`, ...), for the suite's hash and
    # for --changed-since; appended to as graders are built.
    referenced: list[Path] = field(default_factory=list)

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
    if kind == "judge" and ctx.judge_defaults:
        options = _with_judge_defaults(options, ctx.judge_defaults)
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
    accepted = inspect.signature(cls.__init__).parameters
    _check_option_names(kind, options, accepted, raw, field, location)
    variables = set() if kind in OWN_TEMPLATE_GRADERS else _check_option_templates(raw, field, location)
    for key in list(options):
        if key.endswith("_file") and isinstance(options[key], str):
            options[key[: -len("_file")]] = _load_referenced(options[key], ctx, raw, key, field, location)
            if key not in accepted:
                del options[key]  # the grader takes only the loaded content
    if "suite_dir" in accepted:
        options["suite_dir"] = str(ctx.suite_dir)
    if "root" in accepted:
        options["root"] = str(ctx.root)
    if kind in ("judge", "moderation") and isinstance(options.get("model"), str) and ctx.model_ids \
            and options["model"] not in ctx.model_ids:
        raise SuiteError(
            Location(location.file, line_of(raw, "model"), f"{field}.model"),
            f"{kind} model {options['model']!r} is not declared under models: or judges:"
            f"{did_you_mean(options['model'], sorted(ctx.model_ids))}",
        )
    try:
        grader = build_grader(kind, options)
    except GraderConfigError as exc:
        # An option filled from `<name>_file` is reported at the `<name>_file` line the user wrote.
        key = exc.field if exc.field in raw or f"{exc.field}_file" not in raw else f"{exc.field}_file"
        line = line_of(raw, key) if key else location.line
        sub = f"{field}.{key}" if key else field
        raise SuiteError(Location(location.file, line or location.line, sub), str(exc)) from None
    return GraderSpec(type=kind, grader=grader, weight=float(weight), location=location, raw=dict(raw),
                      variables=frozenset(variables))


def _check_option_names(kind: str, options: Mapping[str, Any], accepted: Mapping[str, inspect.Parameter],
                        raw: Any, field: str, location: Location) -> None:
    """Refuse options the grader does not take, at the option's line, with a suggestion."""
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
        return
    allowed = [name for name in accepted if name != "self" and name not in LOADER_OPTIONS]
    # `schema_file` is offered wherever `schema` is: the loader reads the file into `schema`.
    allowed += [f"{name}_file" for name in allowed if f"{name}_file" not in allowed]
    for key in options:
        if key in LOADER_OPTIONS and key in accepted:
            raise SuiteError(Location(location.file, line_of(raw, key) or location.line, f"{field}.{key}"),
                             f"{key!r} is set by the loader (the suite's own folder) and cannot be given")
        if key not in allowed:
            shown = [name for name in allowed if not name.endswith("_file") or name in accepted]
            raise SuiteError(
                Location(location.file, line_of(raw, key) or location.line, f"{field}.{key}"),
                f"unknown option {key!r} for grader {kind!r}{did_you_mean(key, allowed)}; "
                f"allowed: {', '.join(shown) or '(none)'}",
            )


def _check_option_templates(raw: Mapping[str, Any], field: str, location: Location) -> set[str]:
    """Check templated string options like a prompt's; return the case variables they need."""
    needed: set[str] = set()

    def walk(value: Any, sub: str, line: int | None) -> None:
        if isinstance(value, str):
            if is_template(value):
                needed.update(check_template(value, Location(location.file, line, sub)))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{sub}[{i}]", line_of(value, i) or line)
        elif isinstance(value, Mapping):
            for key, item in value.items():
                walk(item, f"{sub}.{key}", value_line(value, str(key)) or line)

    for key, value in raw.items():
        if key not in ("type", "weight"):
            walk(value, f"{field}.{key}", value_line(raw, key) or location.line)
    return needed


def _with_judge_defaults(options: dict[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Suite-level judge defaults under the grader's own options; `X` and `X_file` count as one option."""
    given = {key.removesuffix("_file") for key in options}
    merged = {k: v for k, v in defaults.items() if k.removesuffix("_file") not in given}
    return {**merged, **options}


def _load_referenced(ref: str, ctx: LoadContext, raw: Any, key: str, field: str, location: Location) -> Any:
    where = Location(location.file, line_of(raw, key), f"{field}.{key}")
    path, display = ctx.resolve(ref, where)
    if not path.exists():
        raise SuiteError(where, f"file not found: {ref}")
    if path not in ctx.referenced:
        ctx.referenced.append(path)
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
        return Location(location.file, line_of(row, key) or location.line, join_field(field, key))

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
    # Locations are built only for what is there: most cases have neither graders, label nor tool results.
    raw_graders = row.get("graders")
    graders = () if raw_graders is None else build_graders(raw_graders, join_field(field, "graders"), ctx,
                                                           at("graders"))
    if row.get("label") is not None:
        _check_label(row["label"], at("label"))
    group = row.get("group")
    tool_results = {} if row.get("tool_results") is None else case_tool_results(row, at("tool_results"),
                                                                                ctx.declared_functions)
    return Case(
        id=str(case_id),
        vars=plain(variables),
        messages=tuple(plain(m) for m in messages),
        graders=extra_graders + graders,
        label=row.get("label"),
        group=None if group is None else str(group),
        location=location,
        tool_results=tool_results,
    )


def _check_label(label: Any, location: Location) -> None:
    """A human label is pass/fail (true/false), a score, or a value of a judge's scale (text)."""
    if isinstance(label, DateText):
        raise SuiteError(location, f"{label} was read as a date; a label is pass, fail, a score or a scale value "
                                   "(quote it if you mean this text)")
    if label is not None and not isinstance(label, str | int | float | bool):
        raise SuiteError(location, f"a label must be pass, fail, a score or a scale value, not a "
                                   f"{'mapping' if isinstance(label, Mapping) else type(label).__name__}")


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
    if path.suffix.lower() not in SUPPORTED:
        raise SuiteError(file_loc, f"unsupported case file type {path.suffix!r}; use one of {', '.join(SUPPORTED)}")
    if not path.is_file():
        raise SuiteError(file_loc, f"file not found: {entry['file']}")
    shared = build_graders(entry.get("graders"), f"cases[{index}].graders", ctx,
                           Location(ctx.file, line_of(entry, "graders") or where.line, f"cases[{index}].graders"))
    stem = path.stem
    count = 0
    # Rows are reported by their own file and line; their fields are the row's keys (`vars`, `graders[0]`).
    for row, loc in iter_rows(path, display):
        count += 1
        yield build_case(row, f"{stem}-{loc.line}", "", ctx, loc,
                         extra_vars=entry.get("vars"), extra_graders=shared)
    if count == 0:
        raise SuiteError(file_loc, f"case file {entry['file']} has no cases")
