"""Tool round trips: answer the model's tool calls from the suite and call again until it answers.

When a suite gives tool results (``tool_results`` by function name, per suite or per case, or
``tool_functions``), a reply that calls tools does not end the trial. The assistant turn is appended to the
conversation with one result message per call (``role: tool`` with the call's id; ``role: function`` with
its name for the legacy ``functions`` API), and the model is called again, up to ``max_tool_turns`` times.

Each step is an ordinary call through the trial's recorded client: its body holds the whole conversation so
far, so every step has its own match key and a replay walks the same steps offline. Tool functions must
therefore be deterministic (same arguments, same result), as any graded code should be.

The loop ends early, with a reason the pipeline turns into a grade named ``tool_loop``, when the model:
still calls tools after ``max_tool_turns`` rounds (a failure), calls a function the prompt does not declare
(a failure), or calls a declared one the suite gives no result for (undecided: the suite is incomplete).
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from harness.execute.provider import CallFailed, Completion
from harness.grade.base import Grade, ToolCall
from harness.plan import Trial
from harness.render import Request
from harness.store import TrialError
from harness.suite.model import Suite, ToolFunction
from harness.suite.tools import declared_functions

LOOP_GRADER = "tool_loop"
CallFn = Callable[[Request], Awaitable[Completion]]


@dataclass(frozen=True)
class RoundTrip(Completion):
    """The final completion of a tool round trip, with what led to it.

    ``transcript`` is every message added after the rendered request (assistant turns, tool results, the
    final answer); ``steps`` each model turn's tool calls in order; ``stopped`` why the loop ended before a
    final answer, and ``stopped_is_failure`` whether that is the model's fault (else the suite's).
    """

    transcript: tuple[Mapping[str, Any], ...] = ()
    steps: tuple[tuple[ToolCall, ...], ...] = ()
    stopped: str | None = None
    stopped_is_failure: bool = True


@dataclass(frozen=True)
class ToolBox:
    """Where one trial's tool results come from, and how many rounds it may take."""

    static: Mapping[str, Any]
    functions: Mapping[str, ToolFunction]
    declared: frozenset[str]
    max_turns: int

    @classmethod
    def for_trial(cls, suite: Suite, trial: Trial) -> ToolBox | None:
        """The trial's tool box, or None when it makes a single call (no results given, or not chat)."""
        if trial.model.api != "chat":
            return None
        static = {**suite.tool_results, **trial.case.tool_results}
        functions = {k: f for k, f in suite.tool_functions.items() if k not in static}
        if not static and not functions:
            return None
        declared = declared_functions(trial.prompt, suite.params, trial.model.params)
        return cls(static, functions, frozenset(declared), suite.max_tool_turns)


class _Stop(Exception):
    def __init__(self, reason: str, failure: bool) -> None:
        super().__init__(reason)
        self.failure = failure


async def run_round_trip(call: CallFn, request: Request, box: ToolBox) -> Completion:
    """Call, answer tool calls, call again; the final completion carries the whole exchange."""
    legacy = "functions" in request.body and "tools" not in request.body
    body = dict(request.body)
    transcript: list[Mapping[str, Any]] = []
    steps: list[tuple[ToolCall, ...]] = []
    usage: dict[str, int] = {}
    latency = 0.0
    ttft: float | None = None
    for turn in range(box.max_turns + 1):
        started = time.perf_counter()
        completion = await call(Request(api=request.api, body=body, sample=request.sample))
        step_ms = completion.recorded_latency_ms
        latency += step_ms if step_ms is not None else (time.perf_counter() - started) * 1000
        _add_usage(usage, completion.usage)
        if turn == 0:
            ttft = completion.ttft_ms  # the first token the user would see
        calls = tuple(_with_id(c, turn, i) for i, c in enumerate(completion.tool_calls))
        steps.append(calls)
        assistant = _assistant_turn(completion.text, calls, legacy)
        transcript.append(assistant)
        stopped: _Stop | None = None
        if not calls:
            pass
        elif turn == box.max_turns:
            names = ", ".join(sorted({c.name for c in calls}))
            stopped = _Stop(f"the model still called tools ({names}) after max_tool_turns={box.max_turns} "
                            "rounds of tool results, without a final answer", failure=True)
        else:
            try:
                results = [await _result(box, c, legacy) for c in calls]
            except _Stop as stop:
                stopped = stop
            else:
                transcript.extend(results)
                body = {**body, "messages": [*body.get("messages", ()), assistant, *results]}
                continue
        return RoundTrip(
            text=completion.text, tool_calls=completion.tool_calls, finish_reason=completion.finish_reason,
            usage=usage, recorded_latency_ms=round(latency, 1), ttft_ms=ttft, transcript=tuple(transcript),
            steps=tuple(steps),
            stopped=str(stopped) if stopped else None, stopped_is_failure=stopped.failure if stopped else True,
        )
    raise AssertionError("unreachable: the last turn returns")  # pragma: no cover


def loop_grade(completion: Completion | None) -> Grade | None:
    """The ``tool_loop`` grade of a round trip that ended without a final answer, else None."""
    if not isinstance(completion, RoundTrip) or completion.stopped is None:
        return None
    if completion.stopped_is_failure:
        return replace(Grade.fail(completion.stopped), grader=LOOP_GRADER)
    return replace(Grade.undecided(completion.stopped), grader=LOOP_GRADER)


def _with_id(call: ToolCall, turn: int, index: int) -> ToolCall:
    # Some servers omit ids; a result message must name its call, so give a stable one.
    return call if call.id else replace(call, id=f"call_{turn}_{index}")


def _assistant_turn(text: str, calls: tuple[ToolCall, ...], legacy: bool) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls and legacy:
        message["function_call"] = {"name": calls[0].name, "arguments": calls[0].arguments}
    elif calls:
        message["tool_calls"] = [{"id": c.id, "type": "function",
                                  "function": {"name": c.name, "arguments": c.arguments}} for c in calls]
    if message["content"] is None and not calls:
        message["content"] = ""
    return message


async def _result(box: ToolBox, call: ToolCall, legacy: bool) -> dict[str, Any]:
    if call.name not in box.declared:
        raise _Stop(f"the model called {call.name!r}, which the prompt does not declare", failure=True)
    if call.name in box.static:
        content = _as_text(box.static[call.name])
    elif call.name in box.functions:
        content = await _run_function(box.functions[call.name], call)
    else:
        raise _Stop(f"the model called {call.name!r}, but the suite gives no result for it "
                    "(add it to tool_results or tool_functions)", failure=False)
    if legacy:
        return {"role": "function", "name": call.name, "content": content}
    return {"role": "tool", "tool_call_id": call.id, "content": content}


async def _run_function(tool: ToolFunction, call: ToolCall) -> str:
    """The function's result; arguments it cannot take are answered with an error the model can read."""
    try:
        arguments = json.loads(call.arguments) if call.arguments.strip() else {}
    except json.JSONDecodeError as exc:
        return _as_text({"error": f"arguments are not valid JSON: {exc.msg}"})
    if not isinstance(arguments, dict):
        return _as_text({"error": "arguments must be a JSON object"})
    try:
        inspect.signature(tool.function).bind(**arguments)
    except TypeError as exc:
        return _as_text({"error": f"bad arguments for {call.name}: {exc}"})
    except ValueError:
        pass  # no introspectable signature: the call itself will tell
    try:
        value = tool.function(**arguments)
        if inspect.isawaitable(value):
            value = await value
    except Exception as exc:  # noqa: BLE001 - the suite's code failed: the trial's error, never a verdict
        raise _tool_error(f"tool function {tool.reference} raised {type(exc).__name__}: {exc}") from exc
    try:
        return _as_text(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise _tool_error(f"tool function {tool.reference} returned a {type(value).__name__} that is not JSON "
                          f"(return a string, or JSON-compatible data without NaN): {exc}") from exc


def _tool_error(message: str) -> CallFailed:
    return CallFailed(TrialError("tool", message), retryable=False)


def _as_text(value: Any) -> str:
    """A result as the message content: strings as they are, anything else as strict JSON (no NaN)."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, allow_nan=False)


def _add_usage(total: dict[str, int], usage: Mapping[str, Any]) -> None:
    for key, value in usage.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            total[key] = total.get(key, 0) + value  # type: ignore[assignment]
