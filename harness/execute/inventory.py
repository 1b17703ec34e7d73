"""What the cassettes hold against what a suite needs: recorded, missing and unused interactions.

Expected match keys are computed from requests built by the ``openai`` SDK itself (the same URL joining and
body serialisation a run uses), so "missing" here means exactly "would miss on replay". Judge requests depend
on the graded outputs, so they can only be counted, not predicted. A tool round trip's later steps depend on
the recorded replies too: they are found by walking the round trip through the cassette, offline, with the
suite's tool results (so tool functions run, as in a replay).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
from openai._models import FinalRequestOptions

from harness.execute.cassette import Cassette, cassette_path, match_key, open_cassette
from harness.execute.provider import NO_KEY_PLACEHOLDER, CallFailed, Completion, make_client, recorded_completion
from harness.execute.tool_loop import ToolBox, run_round_trip
from harness.plan import Trial, iter_trials
from harness.render import SAMPLE_HEADER, Request, render_request
from harness.suite.model import Suite


@dataclass
class ModelInventory:
    model: str
    path: Path
    recorded: int
    expected: int
    missing: list[Trial] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    exists: bool = True


def request_key(client: openai.AsyncOpenAI, request: Request) -> str:
    """The match key the replay transport will compute for this request."""
    options = FinalRequestOptions.construct(
        method="post", url=request.path, json_data=request.body, headers={SAMPLE_HEADER: request.sample}
    )
    built = client._build_request(options)
    return match_key(built.method, built.url.raw_path.decode("ascii"), request.sample, built.content)


def _trials_by_model(suite: Suite) -> Iterator[tuple[str, list[tuple[Trial, Request]]]]:
    grouped: dict[str, list[tuple[Trial, Request]]] = {m.id: [] for m in suite.models}
    for trial in iter_trials(suite):
        request = render_request(suite, trial.prompt, trial.model, trial.case, trial.temperature, trial.repeat)
        grouped[trial.model.id].append((trial, request))
    yield from grouped.items()


def inventory(suite: Suite, cassettes_root: Path) -> list[ModelInventory]:
    """Per graded model: recorded interactions, trials without a recording, recordings no trial uses."""
    out = []
    for model_id, pairs in _trials_by_model(suite):
        model = suite.model(model_id)
        path = cassette_path(cassettes_root, suite.name, model_id)
        cassette = Cassette(path) if path.exists() else None
        client = make_client(model, NO_KEY_PLACEHOLDER, None, 1)
        expected: dict[str, Trial] = {}
        for trial, request in pairs:
            box = ToolBox.for_trial(suite, trial)
            keys = [request_key(client, request)] if box is None else _round_trip_keys(client, cassette, request, box)
            for key in keys:
                expected.setdefault(key, trial)
        recorded = set(cassette.keys()) if cassette is not None else set()
        missing = list({id(t): t for key, t in expected.items() if key not in recorded}.values())
        unused = sorted(recorded - set(expected))
        out.append(ModelInventory(model_id, path, len(recorded), len(expected), missing, unused,
                                  exists=cassette is not None))
    return out


def unrecorded(suite: Suite, cassettes_root: Path, trial_ids: set[str], model_ids: set[str]) -> set[str]:
    """Of the stored trials ``trial_ids`` of models ``model_ids``, those whose call has no recording in their
    cassette (a journal lost, a run from before the journal existed): a resume records them again. A tool
    round trip is checked by its first request."""
    found: set[str] = set()
    clients: dict[str, openai.AsyncOpenAI] = {}
    for trial in iter_trials(suite, models=sorted(model_ids)):
        if trial.id not in trial_ids:
            continue
        model = trial.model
        client = clients.get(model.id)
        if client is None:
            client = clients[model.id] = make_client(model, NO_KEY_PLACEHOLDER, None, 1)
        cassette = open_cassette(cassette_path(cassettes_root, suite.name, model.id))
        request = render_request(suite, trial.prompt, model, trial.case, trial.temperature, trial.repeat)
        if cassette.lookup(request_key(client, request)) is None:
            found.add(trial.id)
    return found


class _Unrecorded(Exception):
    pass


def _round_trip_keys(client: openai.AsyncOpenAI, cassette: Cassette | None, request: Request,
                     box: ToolBox) -> list[str]:
    """The match keys of a round trip's steps, as far as the cassette holds them (plus the first missing)."""
    keys: list[str] = []

    async def lookup(step: Request) -> Completion:
        key = request_key(client, step)
        keys.append(key)
        found = cassette.lookup(key) if cassette is not None else None
        if found is None:
            raise _Unrecorded
        return recorded_completion(step.api, found.content)

    # The walk ends where the recordings (or valid replies) do.
    with contextlib.suppress(_Unrecorded, CallFailed, ValueError):
        asyncio.run(run_round_trip(lookup, request, box))
    return keys


def judge_cassettes(suite: Suite, cassettes_root: Path) -> list[tuple[str, Path, int]]:
    """Cassettes of graders' own calls (``<model>.judge.json``, ``<model>.moderation.json``): a label such as
    ``gpt-4o (judge)``, the path and how many interactions they hold."""
    found = []
    for model_id in suite.judges:
        for role in ("judge", "moderation"):
            path = cassette_path(cassettes_root, suite.name, f"{model_id}.{role}")
            if path.exists():
                found.append((f"{model_id} ({role})", path, len(Cassette(path).keys())))
    return found


def prune(suite: Suite, cassettes_root: Path) -> dict[str, int]:
    """Drop interactions no trial of the suite uses; returns how many were dropped per model."""
    dropped = {}
    for item in inventory(suite, cassettes_root):
        if not item.exists or not item.unused:
            continue
        cassette = open_cassette(item.path)
        keep: Any = set(cassette.keys()) - set(item.unused)
        dropped[item.model] = cassette.prune(keep)
        cassette.save()
    return dropped
