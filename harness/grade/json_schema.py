"""``json_schema``: the output is JSON that satisfies a JSON Schema (draft 2020-12)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from harness.grade._common import clip, opt_str, schema_validator, schema_violations
from harness.grade._schema_refs import INLINE_NAME
from harness.grade.base import Grade, GradeContext, Grader, GraderConfigError, Output, register

# A fence opening on its own line, labelled json or unlabelled; other languages are not JSON.
_FENCE = re.compile(
    r"^[ \t]*```[ \t]*(?:json)?[ \t]*\r?\n(.*?)^[ \t]*```", re.MULTILINE | re.DOTALL | re.IGNORECASE
)
_OPENERS = re.compile(r"[\[{]")
# strict: the whole output is one fenced block (```json or unlabelled), nothing but whitespace around it.
_WHOLE_FENCE = re.compile(r"\A\s*```[ \t]*(?:json)?[ \t]*\r?\n(.*?)\r?\n?[ \t]*```\s*\Z", re.DOTALL | re.IGNORECASE)
_DECODER = json.JSONDecoder()


class NoJSON(Exception):
    pass


def extract_json(text: str) -> tuple[Any, str]:
    """The JSON value in ``text`` and where it came from; raises :class:`NoJSON` when there is none.

    Tried in order: the whole text, each fenced block, then the first ``{...}`` or ``[...]`` that decodes.
    """
    try:
        return json.loads(text), "the whole output"
    except ValueError as exc:
        whole_error = f"{exc.msg} at char {exc.pos}" if isinstance(exc, json.JSONDecodeError) else str(exc)
    except RecursionError:
        whole_error = "nested too deeply"
    for fence in _FENCE.finditer(text):
        try:
            return json.loads(fence.group(1)), f"the fenced block at char {fence.start()}"
        except (ValueError, RecursionError):
            continue
    for opener in _OPENERS.finditer(text):
        try:
            value, _ = _DECODER.raw_decode(text, opener.start())
        except (ValueError, RecursionError):
            continue
        return value, f"the JSON embedded at char {opener.start()}"
    raise NoJSON(whole_error)


def extract_strict(text: str) -> tuple[Any, str]:
    """The JSON value when the whole output is JSON, or one fenced JSON block and nothing else."""
    try:
        return json.loads(text), "the whole output"
    except (ValueError, RecursionError):
        pass
    fence = _WHOLE_FENCE.match(text)
    if fence is not None:
        try:
            return json.loads(fence.group(1)), "the fenced block that is the whole output"
        except (ValueError, RecursionError):
            pass
    raise NoJSON("strict: the whole output must be JSON, optionally in one ```json fence, with nothing else")


@register
class JsonSchema(Grader):
    """The output is JSON that satisfies a JSON Schema (draft 2020-12, with ``format`` checked).

    The JSON is the whole output if it parses; else the first fenced block (```` ```json ```` or
    unlabelled) that parses; else the first ``{...}`` or ``[...]`` embedded in the text that decodes.

    Args:
        schema: the JSON Schema, as a mapping. It is checked against the draft 2020-12 metaschema when
            the suite loads. The suite loader reads ``schema_file`` into this option.
        schema_file: the path the schema was read from (relative to the suite folder); labels the grader in
            reports and is the base of the schema's relative ``$ref``s.
        suite_dir: the suite's folder; the suite loader passes it.
        root: the project root; the suite loader passes it. A ``$ref`` may name only JSON files inside it
            (by relative path, or ``file://``); network references are refused, at load time.
        strict: when true, the whole output must be the JSON (optionally in one fenced block, with only
            whitespace around it): JSON inside prose or a code block of another language fails.
    """

    name = "json_schema"

    def __init__(self, *, schema: dict[str, Any] | None = None, schema_file: str | None = None,
                 suite_dir: str | None = None, root: str | None = None, strict: bool = False) -> None:
        if schema is None:
            raise GraderConfigError(
                "schema", "missing required option 'schema' (the loader fills it from 'schema_file')"
            )
        self.schema_file = None if schema_file is None else opt_str("schema_file", schema_file)
        folder = Path(suite_dir) if suite_dir is not None else None
        base = None if folder is None else folder / (self.schema_file or INLINE_NAME)
        self.validator = schema_validator("schema", schema, base, None if root is None else Path(root))
        if not isinstance(strict, bool):
            raise GraderConfigError("strict", f"strict must be true or false, got {strict!r}")
        self.strict = strict

    def grade(self, output: Output, ctx: GradeContext) -> Grade:
        try:
            value, source = extract_strict(output.text) if self.strict else extract_json(output.text)
        except NoJSON as exc:
            if self.strict:
                return Grade.fail(f"{exc}: {clip(output.text)}")
            return Grade.fail(f"output is not JSON ({exc}) and contains no JSON block: {clip(output.text)}")
        violations = schema_violations(self.validator, value)
        if violations:
            return Grade.fail(f"JSON from {source} violates the schema: " + "; ".join(violations))
        return Grade.ok(f"JSON from {source} matches the schema")

    def describe(self) -> str:
        return f"json_schema {self.schema_file}" if self.schema_file else "json_schema (inline)"
