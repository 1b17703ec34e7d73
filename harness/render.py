"""The render stage: a prompt version and a case's vars become the exact request body.

A chat prompt sent to the legacy completions endpoint is flattened into one text by a Jinja template over
``messages`` (each with ``role``, ``content`` as text and ``name``) and the case's vars: the prompt's own
``completion_template``, or ``DEFAULT_COMPLETION_TEMPLATE``, which labels each turn with its role and ends
with ``Assistant:`` so a base model continues as the assistant::

    System: You are terse.

    User: What is 2+2?

    Assistant:
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.render_parts import render_parts, text_of
from harness.suite.model import Api, Case, MessageTemplate, ModelSpec, PromptVersion, Suite, case_vars
from harness.templating import render_text

SAMPLE_HEADER = "X-Harness-Sample"
DEFAULT_COMPLETION_TEMPLATE = (
    "{% for m in messages %}{{ m.role | capitalize }}: {{ m.content }}\n\n{% endfor %}Assistant:"
)


@dataclass(frozen=True)
class Request:
    """What is sent: the endpoint kind, the exact JSON body and the per-sample key header."""

    api: Api
    body: dict[str, Any]
    sample: str

    @property
    def path(self) -> str:
        return "/chat/completions" if self.api == "chat" else "/completions"


@dataclass(frozen=True)
class _Where:
    """What rendering one trial's messages needs besides the templates: its vars and where files live."""

    variables: Mapping[str, Any]
    label: str
    base: Path  # the suite's folder: image paths resolve against it
    root: Path  # the project: images may not come from outside it

    def text(self, template: str) -> str:
        return render_text(template, self.variables, self.label)


def _render_content(content: Any, where: _Where) -> Any:
    if isinstance(content, str):
        return where.text(content)
    if isinstance(content, list):
        return render_parts(content, where.text, where.base, where.root)
    return content


def _message(template: MessageTemplate, where: _Where) -> dict[str, Any]:
    content = _render_content(template.content, where)
    msg: dict[str, Any] = {"role": template.role, "content": content}
    if template.name:
        msg["name"] = template.name
    if template.tool_calls:
        msg["tool_calls"] = [dict(call) for call in template.tool_calls]
    if template.tool_call_id:
        msg["tool_call_id"] = template.tool_call_id
    if template.function_call:
        msg["function_call"] = dict(template.function_call)
    return msg


def _history_message(message: Mapping[str, Any], where: _Where) -> dict[str, Any]:
    """A case's earlier turn, as written; only ``{image: ...}`` parts are embedded (it is not a template)."""
    content = message.get("content")
    if isinstance(content, list):
        return {**message, "content": render_parts(content, None, where.base, where.root)}
    return dict(message)


def render_messages(suite: Suite, prompt: PromptVersion, case: Case,
                    variables: Mapping[str, Any]) -> list[dict[str, Any]]:
    where = _Where(variables, f"prompt {prompt.name!r}, case {case.id!r}", suite.dir, suite.root)
    history = [_history_message(m, where) for m in case.messages]
    out: list[dict[str, Any]] = []
    placed = False
    for template in prompt.messages:
        if template.history:
            out.extend(history)
            placed = True
        else:
            out.append(_message(template, where))
    if history and not placed:
        out.extend(history)
    return out


def render_request(
    suite: Suite, prompt: PromptVersion, model: ModelSpec, case: Case, temperature: float, repeat: int
) -> Request:
    """Build the exact request for one trial."""
    variables = case_vars(suite, case)
    body: dict[str, Any] = {"model": model.name}
    if model.api == "completions":
        text = prompt.prompt
        if text is None:
            text = flatten(prompt, render_messages(suite, prompt, case, variables), variables)
        else:
            text = render_text(text, variables, f"prompt {prompt.name!r}, case {case.id!r}")
        body["prompt"] = text
    else:
        body["messages"] = render_messages(suite, prompt, case, variables)
        if prompt.tools:
            body["tools"] = [dict(t) for t in prompt.tools]
        if prompt.tool_choice is not None:
            body["tool_choice"] = prompt.tool_choice
        if prompt.functions:
            body["functions"] = [dict(f) for f in prompt.functions]
        if prompt.function_call is not None:
            body["function_call"] = prompt.function_call
    body["temperature"] = temperature
    body.update(suite.params)
    body.update(prompt.params)
    body.update(model.params)
    if body.get("stream") is True and "stream_options" not in body:
        # Without it a stream carries no usage and the call's cost is unknown; a suite whose endpoint
        # refuses the option sets stream_options: {include_usage: false}.
        body["stream_options"] = {"include_usage": True}
    if model.send_seed and "seed" not in body:
        body["seed"] = suite.seed + repeat
    return Request(api=model.api, body=body, sample=f"r{repeat}")


def flatten(prompt: PromptVersion, messages: list[dict[str, Any]], variables: Mapping[str, Any]) -> str:
    """A chat prompt as the one text the completions endpoint takes, through the documented template."""
    turns = [{"role": str(m.get("role", "")), "content": text_of(m.get("content")), "name": m.get("name")}
             for m in messages]
    template = prompt.completion_template or DEFAULT_COMPLETION_TEMPLATE
    return render_text(template, {**variables, "messages": turns},
                       f"completion_template of prompt {prompt.name!r}")
