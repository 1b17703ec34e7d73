"""Helpers the built-in graders share: option checks, templated options, short reasons, JSON Schema.

Private (the leading underscore keeps the registry's discovery from importing it as a grader module).
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from harness.grade._schema_refs import confined_registry
from harness.grade.base import Grade, GradeContext, Grader, GraderConfigError, Output

REASON_SNIPPET = 80


# --- option checks: YAML hands us anything, so every option is checked for type at load time ------------


def opt_bool(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise GraderConfigError(field, f"{field} must be true or false, got {type(value).__name__} {value!r}")
    return value


def opt_str(field: str, value: object, *, allow_empty: bool = False) -> str:
    if value is None:
        raise GraderConfigError(field, f"missing required option {field!r}")
    if not isinstance(value, str):
        # A bare YAML 30 or yes arrives as int/bool; silently str()-ing True into "True" would surprise.
        raise GraderConfigError(
            field, f"{field} must be a string (quote it in YAML), got {type(value).__name__} {value!r}"
        )
    if not value and not allow_empty:
        raise GraderConfigError(field, f"{field} must not be empty")
    return value


def opt_choice(field: str, value: object, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise GraderConfigError(field, f"{field} must be one of {', '.join(choices)}; got {value!r}")
    return value


def opt_fraction(field: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise GraderConfigError(field, f"{field} must be a number between 0 and 1, got {value!r}")
    return float(value)


def opt_mapping(field: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise GraderConfigError(field, f"{field} must be a mapping, got {type(value).__name__}")
    return value


def expected_strings(value: object, values: object, *, allow_empty: bool = False) -> tuple[str, ...]:
    """The expected strings from ``value`` (a string or a list) or ``values`` (a list), exactly one given."""
    if value is not None and values is not None:
        raise GraderConfigError("value", "give either value or values, not both")
    field, given = ("value", value) if values is None else ("values", values)
    if given is None:
        raise GraderConfigError("value", "missing required option 'value' (or 'values')")
    if isinstance(given, str):
        items: list[object] = [given]
    elif isinstance(given, list):
        items = given
    else:
        raise GraderConfigError(
            field, f"{field} must be a string or a list of strings, got {type(given).__name__}"
        )
    checked = tuple(opt_str(field, item, allow_empty=allow_empty) for item in items)
    if not checked:
        raise GraderConfigError(field, f"{field} must not be an empty list")
    return checked


# --- templated options -------------------------------------------------------------------------------------


def is_template(text: str) -> bool:
    return "{{" in text or "{%" in text


class RenderFailed(Exception):
    """A templated option could not be rendered for this case; the grader answers undecided."""


def render(ctx: GradeContext, text: str, field: str) -> str:
    if not is_template(text):
        return text
    try:
        rendered = ctx.render(text)
    except Exception as exc:  # noqa: BLE001 - any renderer failure means "cannot decide", never pass/fail
        raise RenderFailed(f"cannot render option {field!r}: {type(exc).__name__}: {exc}") from exc
    return str(rendered)


# --- reasons -----------------------------------------------------------------------------------------------


def clip(text: str, limit: int = REASON_SNIPPET, around: int | None = None) -> str:
    """A quoted excerpt of ``text`` at most ``limit`` characters long, centred near ``around`` if given.

    repr() shows the whitespace and control characters that usually explain a surprising mismatch.
    """
    if len(text) <= limit:
        return repr(text)
    start = 0 if around is None else max(0, min(around - limit // 4, len(text) - limit))
    excerpt = text[start : start + limit]
    head = "…" if start > 0 else ""
    tail = "…" if start + limit < len(text) else ""
    return f"{head}{excerpt!r}{tail} ({len(text)} chars)"


def clip_plain(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def quoted_list(items: Iterable[str], limit: int = 40) -> str:
    return ", ".join(clip(item, limit) for item in items)


# --- JSON Schema -------------------------------------------------------------------------------------------


def schema_validator(field: str, schema: object, base: Path | None = None,
                     root: Path | None = None) -> Draft202012Validator:
    """A validator for ``schema``; its ``$ref``s may reach only JSON files under ``root`` (none without one),
    relative ones resolved against ``base`` (the schema's own file)."""
    checked = opt_mapping(field, schema)
    try:
        Draft202012Validator.check_schema(checked)
    except SchemaError as exc:
        where = exc.json_path if exc.absolute_path else "the schema"
        raise GraderConfigError(field, f"invalid JSON schema at {where}: {clip_plain(exc.message)}") from exc
    document, registry = confined_registry(field, checked, base, root)
    # Without a format checker "date", "email" etc. are mere annotations; users expect them enforced.
    return Draft202012Validator(document, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER)


def schema_violations(validator: Draft202012Validator, instance: object, cap: int = 5) -> list[str]:
    """Every violation as ``$.path: message``, ordered by path, with at most ``cap`` listed."""

    def path_key(error: Any) -> tuple[tuple[int, float, str], ...]:
        # Array indexes sort numerically ([2] before [10]); keys alphabetically.
        return tuple(
            (0, part, "") if isinstance(part, int) else (1, 0, str(part)) for part in error.absolute_path
        )

    errors = sorted(validator.iter_errors(instance), key=lambda e: (path_key(e), e.message))
    lines = [f"{error.json_path}: {clip_plain(error.message)}" for error in errors[:cap]]
    if len(errors) > cap:
        lines.append(f"(+{len(errors) - cap} more)")
    return lines


def is_fraction(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0.0 <= value <= 1.0
    )


def render_needles(ctx: GradeContext, needles: Sequence[str], case_sensitive: bool) -> list[str]:
    """Render the expected strings of a substring check, casefolded when matching ignores case."""
    rendered = []
    for needle in needles:
        text = render(ctx, needle, "value")
        if not text:
            # An empty needle is found in every output, so a blank variable would pass silently.
            raise RenderFailed(f"option 'value' {needle!r} rendered to an empty string")
        rendered.append(text if case_sensitive else text.casefold())
    return rendered


# --- graders that look for expected strings in the output --------------------------------------------------


class NeedleGrader(Grader):
    """Base of ``contains``, ``not_contains``, ``starts_with`` and ``ends_with``; not registered itself.

    They share the ``value``/``values`` and ``case_sensitive`` options and how a trial is graded up to the
    match itself: render the expected strings for the case (undecided if that fails), casefold both sides
    when case does not matter, then ``check``. Subclasses keep their own explicit keyword-only ``__init__``,
    which is the grader's documented option list, and call ``_needle_options`` from it.
    """

    needles: tuple[str, ...]
    case_sensitive: bool

    def _needle_options(self, value: object, values: object, case_sensitive: object) -> None:
        self.needles = expected_strings(value, values)
        self.case_sensitive = opt_bool("case_sensitive", case_sensitive)

    def haystack(self, text: str) -> str:
        """The output text as ``check`` searches it."""
        return text if self.case_sensitive else text.casefold()

    def grade(self, output: Output, ctx: GradeContext) -> Grade:
        try:
            needles = render_needles(ctx, self.needles, self.case_sensitive)
        except RenderFailed as exc:
            return Grade.undecided(str(exc))
        return self.check(needles, self.haystack(output.text), output)

    @abstractmethod
    def check(self, needles: list[str], haystack: str, output: Output) -> Grade:
        """The verdict for ``needles`` (rendered, casefolded as needed) against the prepared ``haystack``."""


def model_service(ctx: GradeContext, model_id: str, role: str) -> tuple[Any, Any] | Grade:
    """For a grader that calls a model itself (a judge, moderation): the run's client pool and the model's
    spec, or the undecided grade that says why it cannot call."""
    pool = ctx.services.get("clients")
    if pool is None:
        return Grade.undecided(f"the {role} needs the run's model clients; run it through the pipeline")
    try:
        return pool, pool.spec(model_id)
    except KeyError:
        return Grade.undecided(f"{role} model {model_id!r} is not declared in the suite")
