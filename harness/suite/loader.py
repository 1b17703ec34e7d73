"""The suite stage: a YAML file becomes a typed, validated ``Suite``.

Checks run in order: YAML syntax, the published JSON Schema (types, unknown keys), then meaning (grader
options, templates, referenced files, duplicate case ids, undefined template variables). Every error names
the file, the line and the field.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.errors import Location, SuiteError, SuiteErrors, TemplateError
from harness.render_parts import is_shorthand
from harness.suite.cases import LoadContext, build_graders, case_stream, did_you_mean
from harness.suite.checks import check_base_url, check_key_env, check_no_credentials, check_plain_data
from harness.suite.model import (
    DEFAULT_MAX_RESPONSE_BYTES,
    Baseline,
    Case,
    GateSettings,
    MessageTemplate,
    ModelSpec,
    Price,
    PromptVersion,
    RetrySettings,
    Suite,
    case_vars,
)
from harness.suite.parts import check_case_images, check_prompt_images, check_text_only_endpoints
from harness.suite.prices import suite_price
from harness.suite.sampling import check_sampling, price_warnings
from harness.suite.schema_check import prompt_schema_errors, schema_errors
from harness.suite.tools import declared_functions, load_tool_settings
from harness.suite.yamlread import LineDict, line_of, load_yaml_text, plain, read_text, value_line
from harness.templating import check_template, fits_plainly, is_template, plain_names, render_text

ROOT_MARKERS = ("pyproject.toml", ".git", "harness.toml")


def project_root(start: Path) -> Path:
    for folder in [start, *start.parents]:
        if any((folder / marker).exists() for marker in ROOT_MARKERS):
            return folder
    return start


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def load_suite(path: str | Path, check_cases: bool = True) -> Suite:
    """Load and validate a suite file. Raises ``SuiteError``/``SuiteErrors`` (exit code 2)."""
    # Loading builds hundreds of thousands of long-lived objects (nodes, values, lines, cases) and no
    # garbage cycles: the collector's passes over them were half the time of loading 10,000 inline cases.
    with gc_paused():
        return _load_suite(Path(path), check_cases)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off for the block (left as it was found)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _load_suite(path: Path, check_cases: bool) -> Suite:
    file = _display(path)
    text = read_text(path, file)
    data = load_yaml_text(text, file)
    if data is None:
        raise SuiteError(Location(file, 1, "(top level)"), "the suite file is empty")
    if not isinstance(data, LineDict):
        raise SuiteError(Location(file, getattr(data, "line", None) or 1, "(top level)"),
                         "a suite must be a YAML mapping (suite:, models:, prompts:, ...)")
    check_plain_data(data, file)
    errors = schema_errors(data, file)
    if errors:
        raise errors[0] if len(errors) == 1 else SuiteErrors(errors)
    check_no_credentials(data.get("params"), file, "params", line_of(data, "params"))
    suite_dir = path.resolve().parent
    models = _models(data.get("models") or [], "models", file)
    judges = _models(data.get("judges") or [], "judges", file)
    _unique_ids([*models, *judges], file)
    ctx = LoadContext(file, suite_dir, project_root(suite_dir),
                      frozenset(m.id for m in (*models, *judges)), data.get("judge"))
    prompts, prompt_files = _prompts(data["prompts"], ctx, data.get("tools") or [])
    params = plain(data.get("params") or {})
    declared = set().union(*(declared_functions(p, params, *(m.params for m in models)) for p in prompts.values()))
    ctx = replace(ctx, declared_functions=frozenset(declared))
    tool_results, tool_functions, max_tool_turns = load_tool_settings(data, str(suite_dir), file, declared)
    check_text_only_endpoints(models, prompts)
    check_sampling(data, models, prompts, file)
    graders = build_graders(data.get("graders"), "graders", ctx, Location(file, line_of(data, "graders")))
    raw_cases = data.get("cases") or []
    case_files = [
        ctx.resolve(str(c["file"]), Location(file, line_of(c, "file"), f"cases[{i}].file"))[0]
        for i, c in enumerate(raw_cases) if isinstance(c, Mapping) and "file" in c
    ]
    files = (path.resolve(), *prompt_files, *case_files)
    suite = Suite(
        name=data["suite"],
        description=data.get("description", ""),
        path=path.resolve(),
        root=ctx.root,
        models=tuple(models),
        judges={m.id: m for m in (*judges, *models)},
        prompts=prompts,
        temperatures=tuple(float(t) for t in data.get("temperatures", [0.0])),
        repeats=int(data.get("repeats", 1)),
        params=params,
        seed=int(data.get("seed", 0)),
        vars=plain(data.get("vars") or {}),
        graders=graders,
        threshold=data.get("threshold"),
        baseline=_baseline(data, prompts, models, file),
        gate=_gate(data.get("gate") or {}),
        retry=RetrySettings(**(data.get("retry") or {})),
        case_source=lambda: case_stream(raw_cases, ctx),
        cases_location=Location(file, line_of(data, "cases") or data.line, "cases"),
        tool_results=tool_results,
        tool_functions=tool_functions,
        max_tool_turns=max_tool_turns,
        warnings=tuple(price_warnings([*models, *judges])),
    )
    if check_cases:
        check_suite_cases(suite)  # builds every case's graders, so their referenced files are known after
    all_files = tuple(dict.fromkeys([*files, *ctx.referenced]))
    return replace(suite, files=all_files, hash=_hash_files(list(all_files)))


def _hash_files(paths: list[Path]) -> str:
    """A hash of everything the suite read: an edited case, rubric or schema changes it too."""
    digest = hashlib.sha256()
    for p in paths:
        digest.update(str(p.name).encode("utf-8"))
        with p.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def _models(raw: list[Any], key: str, file: str) -> list[ModelSpec]:
    out = []
    for i, m in enumerate(raw):
        loc = Location(file, line_of(raw, i), f"{key}[{i}]")
        url_at = Location(file, line_of(m, "base_url"), f"{key}[{i}].base_url")
        base_url = expand_env(m["base_url"], url_at) if m.get("base_url") else None
        if base_url is not None:
            check_base_url(base_url, url_at)
        check_key_env(m.get("api_key_env"), Location(file, line_of(m, "api_key_env"), f"{key}[{i}].api_key_env"))
        check_no_credentials(m.get("params"), file, f"{key}[{i}].params", line_of(m, "params"))
        out.append(ModelSpec(
            id=str(m.get("id", m["name"])),
            name=m["name"],
            base_url=base_url,
            api_key_env=m.get("api_key_env", "OPENAI_API_KEY") or "",
            provider=m.get("provider", "openai"),
            api_version=m.get("api_version"),
            api=m.get("api", "chat"),
            price=_price(m, loc),
            max_concurrency=int(m.get("max_concurrency", 8)),
            timeout=float(m.get("timeout", 60.0)),
            max_response_bytes=int(m.get("max_response_bytes", DEFAULT_MAX_RESPONSE_BYTES)),
            send_seed=bool(m.get("seed", True)),
            params=plain(m.get("params") or {}),
            batch=bool(m.get("batch", False)),
            location=loc,
        ))
    return out


def _price(raw: Mapping[str, Any], loc: Location) -> Price | None:
    given = raw.get("price")
    price = suite_price(given, raw["name"])
    if given and price is None:
        raise SuiteError(Location(loc.file, line_of(raw, "price"), f"{loc.field}.price"),
                         f"model {raw['name']!r} is not in the built-in price table: give both input and output")
    return price


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(text: str, location: Location) -> str:
    """Expand ``${VAR}`` and ``${VAR:-default}``; an unset variable without a default is an error."""

    def sub(match: re.Match[str]) -> str:
        value = os.environ.get(match.group(1))
        if value:
            return value
        if match.group(2) is not None:
            return match.group(2)
        raise SuiteError(location, f"environment variable {match.group(1)} is not set (and has no default)")

    return _ENV_REF.sub(sub, text)


def _unique_ids(models: list[ModelSpec], file: str) -> None:
    seen: set[str] = set()
    for m in models:
        if m.id in seen:
            assert m.location is not None
            raise SuiteError(Location(file, m.location.line, f"{m.location.field}.id"),
                             f"duplicate model id {m.id!r}; give each entry a distinct `id`")
        seen.add(m.id)


def _prompts(
    raw: Mapping[str, Any], ctx: LoadContext, suite_tools: list[Any]
) -> tuple[dict[str, PromptVersion], list[Path]]:
    prompts: dict[str, PromptVersion] = {}
    files: list[Path] = []
    for name, spec in raw.items():
        loc = Location(ctx.file, line_of(raw, name), f"prompts.{name}")
        source_file = ctx.file
        if isinstance(spec, Mapping) and "file" in spec:
            path, display = ctx.resolve(str(spec["file"]), Location(ctx.file, line_of(spec, "file"),
                                                                      f"prompts.{name}.file"))
            if not path.exists():
                raise SuiteError(Location(ctx.file, line_of(spec, "file"), f"prompts.{name}.file"),
                                 f"file not found: {spec['file']}")
            files.append(path)
            source_file = display
            text = read_text(path, display, Location(ctx.file, line_of(spec, "file"), f"prompts.{name}.file"))
            # Fields inside a prompt file are named as if the prompt were written inline (prompts.v2[0]...).
            if path.suffix.lower() in (".yaml", ".yml"):
                loaded = load_yaml_text(text, display)
                check_plain_data(loaded, display, f"prompts.{name}")
                errors = prompt_schema_errors(loaded, display)
                if errors:
                    raise errors[0]
                spec = loaded if isinstance(loaded, Mapping) else {"messages": loaded}
                loc = Location(display, 1, f"prompts.{name}")
            else:
                spec = {"messages": [{"role": "user", "content": text}]}
                loc = Location(display, 1, f"prompts.{name}")
        if isinstance(spec, list):
            spec = {"messages": spec}
        prompts[name] = _prompt_version(name, spec, loc, source_file, suite_tools)
        check_prompt_images(spec.get("messages") or [], loc.field, loc.file, ctx.suite_dir, ctx.root)
    return prompts, files


def _prompt_version(name: str, spec: Mapping[str, Any], loc: Location, source: str,
                    suite_tools: list[Any]) -> PromptVersion:
    needed: set[str] = set()
    templates: list[tuple[str, Location]] = []
    messages = []
    raw_messages = spec.get("messages") or []
    for i, m in enumerate(raw_messages):
        # A prompt read from a text file is one message whose content starts at the file's first line.
        is_text_file = not isinstance(m, LineDict)
        line = loc.line if is_text_file else value_line(m, "content") or line_of(raw_messages, i) or loc.line
        where = Location(loc.file, line, loc.field if is_text_file else f"{loc.field}[{i}].content")
        if m.get("history"):
            messages.append(MessageTemplate(role="history", content=None, history=True))
            continue
        content = m.get("content")
        for text in _texts(content):
            needed |= check_template(text, where)
            templates.append((text, where))
        messages.append(MessageTemplate(
            role=m["role"], content=plain(content), name=m.get("name"),
            tool_calls=tuple(plain(m.get("tool_calls") or [])), tool_call_id=m.get("tool_call_id"),
            function_call=plain(m.get("function_call")),
        ))
    prompt_text = spec.get("prompt")
    if isinstance(prompt_text, str):
        where = Location(loc.file, line_of(spec, "prompt"), f"{loc.field}.prompt")
        needed |= check_template(prompt_text, where)
        templates.append((prompt_text, where))
    if not messages and prompt_text is None:
        raise SuiteError(loc, "a prompt version needs `messages` (chat) or `prompt` (completions)")
    tools = spec.get("tools", suite_tools)
    flattening = spec.get("completion_template")
    if isinstance(flattening, str):
        where = Location(loc.file, value_line(spec, "completion_template") or loc.line,
                         f"{loc.field}.completion_template")
        needed |= check_template(flattening, where) - {"messages"}
    check_no_credentials(spec.get("params"), loc.file, f"{loc.field}.params", line_of(spec, "params") or loc.line)
    return PromptVersion(
        name=name,
        messages=tuple(messages),
        prompt=prompt_text,
        tools=tuple(plain(tools)),
        tool_choice=plain(spec.get("tool_choice")),
        functions=tuple(plain(spec.get("functions") or [])),
        function_call=plain(spec.get("function_call")),
        completion_template=flattening,
        params=plain(spec.get("params") or {}),
        source=source,
        variables=frozenset(needed),
        location=loc,
        raw=plain({**spec, "tools": tools}),
        templates=tuple((text, where) for text, where in templates if is_template(text)),
    )


def _texts(content: Any) -> Iterator[str]:
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                yield part["text"]
            elif is_shorthand(part) and isinstance(part["image"], str):
                yield part["image"]  # a templated image path: checked, and its variables required, like text


def _baseline(data: LineDict, prompts: Mapping[str, PromptVersion], models: list[ModelSpec],
              file: str) -> Baseline:
    raw = data.get("baseline")
    if raw is None:
        return Baseline()
    checks = [("prompt", list(prompts)), ("model", [m.id for m in models])]
    for key, choices in checks:
        value = raw.get(key)
        if value is not None and value not in choices:
            raise SuiteError(Location(file, line_of(raw, key), f"baseline.{key}"),
                             f"{value!r} is not a declared {key}{did_you_mean(str(value), choices)}")
    temps = [float(t) for t in data.get("temperatures", [0.0])]
    t = raw.get("temperature")
    if t is not None and float(t) not in temps:
        raise SuiteError(Location(file, line_of(raw, "temperature"), "baseline.temperature"),
                         f"{t} is not one of the suite's temperatures {temps}")
    return Baseline(prompt=raw.get("prompt"), model=raw.get("model"),
                    temperature=None if t is None else float(t))


def _gate(raw: Mapping[str, Any]) -> GateSettings:
    return GateSettings(
        metrics=tuple(raw.get("metrics", ("pass_rate",))),
        margin=float(raw.get("margin", 0.05)),
        tolerance=float(raw.get("tolerance", 0.0)),
        mode=raw.get("mode", "default"),
    )


def check_suite_cases(suite: Suite) -> int:
    """Stream every case once: duplicate ids and undefined template variables. Returns the case count."""
    # Only (file, line) per id is kept, so checking a large case file holds ids, not cases.
    seen: dict[str, tuple[str, int | None]] = {}
    count = 0
    needs = _needed_variables(suite)
    for case in suite.iter_cases():
        count += 1
        loc = case.location or Location(str(suite.path))
        if case.id in seen:
            file, line = seen[case.id]
            raise SuiteError(Location(loc.file, loc.line, f"{loc.field}.id" if loc.field else "id"),
                             f"duplicate case id {case.id!r} (first at {file}:{line})")
        seen[case.id] = (loc.file, loc.line)
        _check_vars(suite, case, loc, needs)
        check_case_images(suite, case)
        _check_renders(suite, case)
    if count == 0:
        where = suite.cases_location or Location(_display(suite.path), 1, "cases")
        raise SuiteError(where, "the suite has no cases")
    return count


def _check_renders(suite: Suite, case: Case) -> None:
    """Render every prompt template with the case's variables, so what would fail each trial of the case at
    run time (a rendering limit, runaway recursion, a missing attribute) fails validation instead."""
    variables = case_vars(suite, case)
    for prompt in suite.prompts.values():
        for text, where in prompt.templates:
            names = plain_names(text)
            if names is not None and fits_plainly(text, names, variables):
                continue  # nothing in it can fail with these values: no need to render (10,000 cases: 40%)
            try:
                render_text(text, variables, f"case {case.id!r}")
            except TemplateError as exc:
                raise SuiteError(where, str(exc)) from None


def _needed_variables(suite: Suite) -> list[tuple[frozenset[str], str]]:
    """The variables each prompt and suite-level grader needs, with a label naming where it is."""
    needs = [(p.variables, f"prompt {p.name!r} ({p.location})") for p in suite.prompts.values()]
    needs += [(g.variables, f"grader {g.type!r} ({g.location})") for g in suite.graders if g.variables]
    return needs


def _check_vars(suite: Suite, case: Case, loc: Location, needs: list[tuple[frozenset[str], str]]) -> None:
    available = set(suite.vars) | set(case.vars) | {"case_id"}
    case_needs = [(g.variables, f"grader {g.type!r} ({g.location})") for g in case.graders if g.variables]
    for variables, user in (*needs, *case_needs):
        missing = sorted(variables - available)
        if missing:
            raise SuiteError(
                Location(loc.file, loc.line, f"{loc.field}.vars" if loc.field else "vars"),
                f"case {case.id!r} does not define {', '.join(repr(m) for m in missing)}, used by {user}",
            )
