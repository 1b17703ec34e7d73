"""The render stage: a prompt version and a case's vars become the exact request body."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.suite.model import Api, Case, MessageTemplate, ModelSpec, PromptVersion, Suite
from harness.templating import render_text

SAMPLE_HEADER = "X-Harness-Sample"


@dataclass(frozen=True)
class Request:
    """What is sent: the endpoint kind, the exact JSON body and the per-sample key header."""

    api: Api
    body: dict[str, Any]
    sample: str

    @property
    def path(self) -> str:
        return "/chat/completions" if self.api == "chat" else "/completions"


def case_vars(suite: Suite, case: Case) -> dict[str, Any]:
    return {**suite.vars, **case.vars, "case_id": case.id}


def _render_content(content: Any, variables: Mapping[str, Any], where: str) -> Any:
    if isinstance(content, str):
        return render_text(content, variables, where)
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                part = {**part, "text": render_text(part["text"], variables, where)}
            parts.append(part)
        return parts
    return content


def _message(template: MessageTemplate, variables: Mapping[str, Any], where: str) -> dict[str, Any]:
    content = _render_content(template.content, variables, where)
    msg: dict[str, Any] = {"role": template.role, "content": content}
    if template.name:
        msg["name"] = template.name
    if template.tool_calls:
        msg["tool_calls"] = [dict(call) for call in template.tool_calls]
    if template.tool_call_id:
        msg["tool_call_id"] = template.tool_call_id
    return msg


def render_messages(prompt: PromptVersion, case: Case, variables: Mapping[str, Any]) -> list[dict[str, Any]]:
    where = f"prompt {prompt.name!r}, case {case.id!r}"
    history = [dict(m) for m in case.messages]
    out: list[dict[str, Any]] = []
    placed = False
    for template in prompt.messages:
        if template.history:
            out.extend(history)
            placed = True
        else:
            out.append(_message(template, variables, where))
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
        if text is None:  # a chat prompt sent to a base model: join the turns
            text = "\n\n".join(str(m["content"]) for m in render_messages(prompt, case, variables))
        else:
            text = render_text(text, variables, f"prompt {prompt.name!r}, case {case.id!r}")
        body["prompt"] = text
    else:
        body["messages"] = render_messages(prompt, case, variables)
        if prompt.tools:
            body["tools"] = [dict(t) for t in prompt.tools]
        if prompt.tool_choice is not None:
            body["tool_choice"] = prompt.tool_choice
    body["temperature"] = temperature
    body.update(suite.params)
    body.update(prompt.params)
    body.update(model.params)
    if model.send_seed and "seed" not in body:
        body["seed"] = suite.seed + repeat
    return Request(api=model.api, body=body, sample=f"r{repeat}")
