"""Checks on how a suite samples: ``n``, ``stream`` and ``best_of`` as each variant will send them, and
the models whose cost would be unknown.

The schema types each ``params`` block on its own; what only the merged request shows (suite params, then
prompt params, then model params, as ``harness.render`` merges them) is checked here, named at the
``params`` block that set the offending value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.errors import Location, SuiteError
from harness.suite.model import ModelSpec, PromptVersion
from harness.suite.prices import missing_price_warning
from harness.suite.yamlread import line_of

# OpenAI's limit on choices per request; more would be refused by the API after every other check.
MAX_CHOICES = 128


def check_sampling(data: Mapping[str, Any], models: Sequence[ModelSpec],
                   prompts: Mapping[str, PromptVersion], file: str) -> None:
    """Refuse parameter combinations the endpoint would reject on every call (exit 2 at validate)."""
    suite_params = data.get("params") or {}
    raw_models = data.get("models") or []
    for i, model in enumerate(models):
        raw_model = raw_models[i] if i < len(raw_models) else {}
        for prompt in prompts.values():
            layers = [
                (suite_params, Location(file, line_of(data, "params"), "params")),
                (prompt.params, _prompt_params_location(prompt, file)),
                (raw_model.get("params") or {},
                 Location(file, line_of(raw_model, "params"), f"models[{i}].params")),
            ]
            _check_variant(model, layers, round_trips=bool(data.get("tool_results") or data.get("tool_functions")))


def _prompt_params_location(prompt: PromptVersion, file: str) -> Location:
    loc = prompt.location or Location(file, None, f"prompts.{prompt.name}")
    return Location(loc.file, loc.line, f"{loc.field}.params")


def _check_variant(model: ModelSpec, layers: list[tuple[Mapping[str, Any], Location]], round_trips: bool) -> None:
    merged: dict[str, Any] = {}
    where: dict[str, Location] = {}
    for params, loc in layers:
        for key, value in params.items():
            merged[key] = value
            line = line_of(params, key) or loc.line
            where[key] = Location(loc.file, line, f"{loc.field}.{key}")
    n = merged.get("n", 1)
    stream = merged.get("stream", False)
    if "n" in merged and (isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_CHOICES):
        raise SuiteError(where["n"], f"n must be an integer from 1 to {MAX_CHOICES} (choices per request), "
                                     f"got {n!r}")
    if round_trips and isinstance(n, int) and n > 1:
        raise SuiteError(where["n"], "n > 1 with tool round trips (tool_results / tool_functions): only the first "
                                     "choice's conversation would continue; sample with repeats instead")
    if "stream" in merged and not isinstance(stream, bool):
        raise SuiteError(where["stream"], f"stream must be true or false, got {stream!r}")
    if "stream_options" in merged and not stream:
        raise SuiteError(where["stream_options"], "stream_options only applies with stream: true")
    best_of = merged.get("best_of")
    if best_of is not None:
        if model.api != "completions":
            raise SuiteError(where["best_of"], f"best_of exists only on the legacy completions endpoint; model "
                                               f"{model.id!r} uses chat (sample with n instead)")
        if stream:
            raise SuiteError(where["best_of"], "best_of cannot be combined with stream: true (the endpoint "
                                               "picks the best choice only after generating all of them)")
        if isinstance(n, int) and isinstance(best_of, int) and best_of < n:
            raise SuiteError(where["best_of"], f"best_of ({best_of}) must be at least n ({n})")
        if isinstance(n, int) and n > 1:
            # best_of returns the top n of best_of server-side draws: they are not independent samples,
            # so pass@k and the per-sample pass rate would be biased upwards.
            raise SuiteError(where["n"], "n > 1 with best_of returns the endpoint's top picks, not samples: "
                                         "pass@k would be biased; drop best_of or set n: 1")


def price_warnings(models: Sequence[ModelSpec]) -> list[str]:
    """One warning per distinct model name whose cost would be unknown."""
    seen: set[str] = set()
    out = []
    for model in models:
        if model.price is None and model.name not in seen:
            seen.add(model.name)
            loc = model.location
            where = f"{loc.file}:{loc.line}: {loc.field}" if loc is not None else f"model {model.id}"
            out.append(missing_price_warning(model.name, where))
    return out
