"""Load-time checks of content parts: every ``{image: file}`` a trial would embed, and endpoints that take text.

A literal image path is checked once, where the prompt names it; a templated one (``{image: "{{ photo }}"}``)
and the images in a case's own turns are checked case by case, so ``harness validate`` finds a missing, too
big or outside-the-project picture before any trial runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from harness.errors import Location, SuiteError, TemplateError
from harness.render_parts import ImageError, check_shorthand, has_non_text, is_shorthand, resolve_image, shorthand_parts
from harness.suite.model import Case, ModelSpec, PromptVersion, Suite
from harness.suite.yamlread import line_of
from harness.templating import is_template, render_text


def check_prompt_images(raw_messages: Iterable[Any], field: str, file: str, base: Path, root: Path) -> None:
    """Literal image paths of a prompt's messages (templated ones are checked per case)."""
    for i, message in enumerate(raw_messages or ()):
        if not isinstance(message, Mapping):
            continue
        content = message.get("content")
        for j, part in enumerate(content if isinstance(content, list) else ()):
            if not is_shorthand(part):
                continue
            where = Location(file, line_of(content, j) or line_of(message, "content"),
                             f"{field}[{i}].content[{j}].image")
            try:
                check_shorthand(part)
                if not (isinstance(part["image"], str) and is_template(part["image"])):
                    resolve_image(part["image"], base, root)
            except ImageError as exc:
                raise SuiteError(where, str(exc)) from None


def check_case_images(suite: Suite, case: Case) -> None:
    """Templated image paths of every prompt, rendered with this case's vars, and images in its own turns."""
    from harness.render import case_vars  # the render stage imports the suite model: import it late

    variables = case_vars(suite, case)
    for prompt in suite.prompts.values():
        for i, message in enumerate(prompt.messages):
            for part in shorthand_parts(message.content):
                ref = part["image"]
                if isinstance(ref, str) and is_template(ref):
                    _check(ref, variables, suite, case, f"prompts.{prompt.name}[{i}].content.image")
    for i, message in enumerate(case.messages):
        for part in shorthand_parts(message.get("content")):
            prefix = case.location.field if case.location else ""
            field = f"{prefix}.messages[{i}].image" if prefix else f"messages[{i}].image"
            _check(part["image"], None, suite, case, field)


def _check(ref: Any, variables: Mapping[str, Any] | None, suite: Suite, case: Case, field: str) -> None:
    loc = case.location or Location(str(suite.path))
    try:
        path = render_text(ref, variables, field) if variables is not None else ref
        resolve_image(path, suite.dir, suite.root)
    except (ImageError, TemplateError) as exc:
        raise SuiteError(Location(loc.file, loc.line, field), f"case {case.id!r}: {exc}") from None


def check_text_only_endpoints(models: Iterable[ModelSpec], prompts: Mapping[str, PromptVersion]) -> None:
    """The completions endpoint takes one text: a prompt with image (or other non-text) parts cannot go there."""
    for model in models:
        if model.api != "completions":
            continue
        for prompt in prompts.values():
            if any(has_non_text(m.content) for m in prompt.messages):
                where = model.location or Location("?")
                raise SuiteError(
                    Location(where.file, where.line, f"{where.field}.api"),
                    f"model {model.id!r} uses the completions endpoint, which takes text only, but prompt "
                    f"{prompt.name!r} has image (or other non-text) content parts; use a chat model",
                )
