"""The suite's JSON Schema check: the published schema, and each violation explained at its file, line and
field (the alternative the user evidently meant, an unknown key with a suggestion, never a pasted key)."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

import jsonschema

from harness.errors import Location, SuiteError
from harness.suite.cases import did_you_mean
from harness.suite.yamlread import DateText, line_at_path


@functools.lru_cache(maxsize=1)
def suite_schema() -> dict[str, Any]:
    """The published JSON Schema of the suite format."""
    text = resources.files("harness.suite").joinpath("schema.json").read_text(encoding="utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


def _is_text(checker: Any, instance: Any) -> bool:
    return isinstance(instance, str) and not isinstance(instance, DateText)


_CASE_REF = {"$ref": "#/$defs/caseOrFile"}
# JSON types as the checker below sees them (bool is no integer; a date read by YAML is no string).
_PLAIN_TYPES: dict[str, Any] = {
    "string": lambda v: isinstance(v, str) and not isinstance(v, DateText),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
}


@functools.lru_cache(maxsize=1)
def _plain_case_fields() -> dict[str, Any] | None:
    """Fields of an inline case whose schema is only a type (or nothing), each with its type test; None when
    the schema's case definition is not the shape this shortcut understands (then every case is checked)."""
    case = suite_schema().get("$defs", {}).get("caseOrFile", {})
    inline = [b for b in case.get("anyOf", []) if b.get("not") == {"required": ["file"]}]
    if set(case) - {"type", "anyOf", "description"} or case.get("type") != "object" or len(inline) != 1:
        return None
    branch = inline[0]
    if set(branch) - {"not", "additionalProperties", "properties"} or branch.get("additionalProperties") is not False:
        return None
    fields: dict[str, Any] = {}
    for name, sub in branch.get("properties", {}).items():
        if set(sub) - {"type", "description"}:
            continue  # checked by the schema itself ($ref, items, ...)
        kinds = sub.get("type")
        names = [kinds] if isinstance(kinds, str) else list(kinds or [])
        if not all(kind in _PLAIN_TYPES for kind in names):
            continue
        fields[name] = (lambda v: True) if kinds is None else (
            lambda v, tests=[_PLAIN_TYPES[k] for k in names]: any(test(v) for test in tests))
    return fields


def _plainly_valid_case(case: Any) -> bool:
    """True only for an inline case the schema certainly accepts: a mapping of plain-typed known fields.
    Everything else (files, messages, graders, any doubt) goes through the schema as before."""
    fields = _plain_case_fields()
    if not fields or not isinstance(case, dict) or "file" in case:
        return False
    return all(key in fields and fields[key](value) for key, value in case.items())


def _items(validator: Any, items: Any, instance: Any, schema: Any) -> Any:
    """The schema's ``items``, skipping the inline cases that are plainly valid: with 10,000 cases, checking
    each through the schema's alternatives took longer than reading the YAML. Errors are unchanged."""
    if items == _CASE_REF and validator.is_type(instance, "array") and not schema.get("prefixItems"):
        for index, item in enumerate(instance):
            if not _plainly_valid_case(item):
                yield from validator.descend(instance=item, schema=items, path=index)
        return
    yield from _DRAFT_ITEMS(validator, items, instance, schema)


_DRAFT_ITEMS = jsonschema.Draft202012Validator.VALIDATORS["items"]
# Where the schema expects text, a value YAML read as a date is refused (quoting it says it is text).
_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    validators={"items": _items},
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("string", _is_text),
)


def schema_errors(data: Any, file: str) -> list[SuiteError]:
    validator = _Validator(suite_schema())
    errors = []
    for err in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        errors.append(explain(err, data, file))
    return errors


def _field_name(path: list[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _plausible_branch(err: jsonschema.ValidationError) -> jsonschema.ValidationError | None:
    """For an anyOf/oneOf failure, the error of the one alternative the value was evidently meant as.

    An alternative whose own shape rules the value out (wrong type, a missing or forbidden key at its top)
    was not meant; when exactly one alternative is left, its errors are the user's real mistake.
    """
    branches: dict[Any, list[jsonschema.ValidationError]] = {}
    for sub in err.context or []:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    shaped = [errs for errs in branches.values()
              if not any(e.validator in ("type", "required", "not") and not e.relative_path for e in errs)]
    if len(shaped) != 1:
        return None
    return jsonschema.exceptions.best_match(shaped[0])


def explain(err: jsonschema.ValidationError, data: Any, file: str) -> SuiteError:
    if err.validator in ("anyOf", "oneOf") and err.context:
        branch = _plausible_branch(err)
        if branch is not None:
            return explain(branch, data, file)
    # Otherwise the most specific sub-error usually names the real problem.
    best = jsonschema.exceptions.best_match([err]) if err.context else err
    path = list(best.absolute_path)
    if best.validator == "additionalProperties" and isinstance(best.instance, Mapping):
        allowed = list(best.schema.get("properties", {}))
        extra = [k for k in best.instance if k not in allowed]
        key = extra[0] if extra else ""
        line = line_at_path(data, [*path, key])
        return SuiteError(
            Location(file, line, _field_name([*path, key])),
            f"unknown key {key!r}{did_you_mean(key, allowed)}; allowed: {', '.join(allowed)}",
        )
    if best.validator == "required":
        return SuiteError(Location(file, line_at_path(data, path), _field_name(path)), best.message)
    if best.validator == "not":
        return SuiteError(
            Location(file, line_at_path(data, path), _field_name(path)),
            best.schema.get("description") or "this key is not allowed here",
        )
    message = best.message
    if isinstance(best.instance, DateText):
        message = f"{best.instance} was read as a date; quote it if you mean this text"
    if path and path[-1] == "api_key_env":
        # Never echo the value: a key pasted here by mistake would end up in CI logs.
        message = ("must name the environment variable that holds the key (like OPENAI_API_KEY), never the key "
                   "itself; or null for a server that needs none")
    if len(message) > 300:
        message = message[:300] + "…"
    return SuiteError(Location(file, line_at_path(data, path), _field_name(path)), message)


def prompt_schema_errors(loaded: Any, file: str) -> list[SuiteError]:
    """Validate a prompt file against the prompt part of the suite schema."""
    schema = {**suite_schema()["$defs"]["prompt"], "$defs": suite_schema()["$defs"]}
    validator = _Validator(schema)
    return [explain(e, loaded, file) for e in validator.iter_errors(loaded)]
