"""Fault-server replies for API features beyond plain text: tool round trips, legacy function calls,
image parts and ``/v1/moderations``. Deterministic, like every reply of the server.

- **Tool round trips**: with ``tool_call`` set, a chat request is answered with a tool call until it holds
  ``tool_turns`` tool (or function) result messages; then with a final text answer that quotes the last
  result (``Tool result: <content>``; ``rules`` apply to that text). Without ``tool_name``, turn *k* calls the
  request's *k*-th declared function (cycling), so a sequence of different calls can be tested.
- **Legacy functions**: a request with ``functions`` (and no ``tools``) gets a ``function_call`` reply with
  finish_reason ``function_call``, as the API answered before tools existed.
- **Images**: image parts of the last user message are summarised in the echoed text
  (`` [image image/png 1234 bytes]``), so a test can see what reached the server.
- **Moderation**: the input is flagged for each category whose trigger word (``moderation_words``) it
  contains, with score 0.9; every other category scores 0.01.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from .config import FaultConfig

CATEGORIES = (
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
    "self-harm", "self-harm/instructions", "self-harm/intent", "sexual", "sexual/minors", "violence",
    "violence/graphic",
)
FLAGGED_SCORE = 0.9
CLEAN_SCORE = 0.01


def _declared(payload: dict[str, Any]) -> tuple[list[str], bool]:
    """The request's function names, and whether it uses the legacy ``functions`` parameter."""
    tools = payload.get("tools")
    if isinstance(tools, list) and tools:
        names = [(t.get("function") or {}).get("name") for t in tools if isinstance(t, dict)]
        return [n for n in names if isinstance(n, str)] or ["tool"], False
    functions = payload.get("functions")
    if isinstance(functions, list) and functions:
        names = [f.get("name") for f in functions if isinstance(f, dict)]
        return [n for n in names if isinstance(n, str)] or ["function"], True
    return ["tool"], False


def tool_results(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m.get("role") in ("tool", "function")]


def wants_tool_call(config: FaultConfig, messages: list[dict[str, Any]]) -> bool:
    return config.tool_call and len(tool_results(messages)) < config.tool_turns


def final_prompt(messages: list[dict[str, Any]]) -> str | None:
    """After tool results, what the final answer is built from: the last result, quoted."""
    if messages and messages[-1].get("role") in ("tool", "function"):
        content = messages[-1].get("content")
        return f"Tool result: {content if isinstance(content, str) else json.dumps(content)}"
    return None


def tool_call_message(config: FaultConfig, payload: dict[str, Any], call_id: str,
                      text: str) -> tuple[dict[str, Any], str]:
    """The assistant message calling a tool (or, for legacy requests, a function) and its finish reason."""
    names, legacy = _declared(payload)
    turn = len(tool_results(payload.get("messages") or []))
    name = config.tool_name or names[turn % len(names)]
    arguments = json.dumps(config.tool_arguments if config.tool_arguments is not None else {"text": text})
    if legacy:
        message = {"role": "assistant", "content": None, "refusal": None,
                   "function_call": {"name": name, "arguments": arguments}}
        return message, "function_call"
    call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
    return {"role": "assistant", "content": None, "refusal": None, "tool_calls": [call]}, "tool_calls"


def image_summary(content: Any) -> str:
    """`` [image image/png 123 bytes]`` per image part of a message's content."""
    if not isinstance(content, list):
        return ""
    out = []
    for part in content:
        url = (part.get("image_url") or {}).get("url") if isinstance(part, dict) else None
        if not isinstance(url, str):
            continue
        if url.startswith("data:") and ";base64," in url:
            mime, data = url[5:].split(";base64,", 1)
            try:
                size = len(base64.b64decode(data, validate=True))
            except ValueError:
                size = -1
            out.append(f" [image {mime} {size} bytes]")
        else:
            out.append(f" [image {url}]")
    return "".join(out)


def moderation(config: FaultConfig, payload: dict[str, Any], reply_id: str) -> dict[str, Any]:
    from .replies import ApiError

    raw = payload.get("input")
    if isinstance(raw, str):
        inputs = [raw]
    elif isinstance(raw, list) and all(isinstance(i, str) for i in raw):
        inputs = list(raw)
    elif isinstance(raw, list) and all(isinstance(i, dict) for i in raw):  # multi-modal parts: their text
        inputs = [" ".join(str(p.get("text", "")) for p in raw)]
    else:
        raise ApiError(400, "input must be a string, a list of strings or a list of content parts", "input")
    results = []
    for text in inputs:
        lowered = text.lower()
        hits = {category for word, category in config.moderation_words.items() if word.lower() in lowered}
        results.append({
            "flagged": bool(hits),
            "categories": {c: c in hits for c in CATEGORIES},
            "category_scores": {c: FLAGGED_SCORE if c in hits else CLEAN_SCORE for c in CATEGORIES},
        })
    model = payload.get("model")
    return {"id": reply_id, "model": model if isinstance(model, str) else "omni-moderation-latest",
            "results": results}
