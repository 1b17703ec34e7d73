"""One recorded client per endpoint-model (graded models and judges alike), and the record mode of each."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from harness.execute.direct_replay import DirectReplay
from harness.execute.pool import ShardedTransport
from harness.execute.provider import make_client, resolve_api_key
from harness.execute.replay import (
    Cassette,
    RecordingTransport,
    RecordMode,
    cassette_path,
    open_cassette,
    parse_mode,
)
from harness.suite.model import ModelSpec, Suite

if TYPE_CHECKING:  # the SDK is imported where a call is made: a replay answered from cassettes never needs it
    import openai


def choose_modes(suite: Suite, requested: str | None, ci: bool) -> dict[str, str]:
    """The record mode per model id (graded models and judges).

    An explicit ``--record`` wins. Otherwise CI always replays, and elsewhere a model replays when its key
    variable is unset and records what is missing when it is set. An endpoint that needs no key
    (``api_key_env: null``, a local server) replays unless asked: running offline is the safe default, and
    a missing recording then says so instead of calling a server that may not be there.
    """
    models = {m.id: m for m in (*suite.models, *suite.judges.values())}
    if requested is not None:
        mode = parse_mode(requested)
        return {model_id: mode.value for model_id in models}
    modes = {}
    for model_id, model in models.items():
        has_key = bool(model.api_key_env) and bool(os.environ.get(model.api_key_env))
        modes[model_id] = RecordMode.replay.value if ci or not has_key else RecordMode.record_missing.value
    return modes


def check_keys(suite: Suite, modes: Mapping[str, str], model_ids: Iterable[str] | None = None) -> None:
    """Raise ``MissingKeyError`` (exit 2) before any trial runs if a model that will call its API lacks a key.

    Checks the graded models of this run (``model_ids``, default all) and the models declared under
    ``judges:``, each in the mode it will run in; replayed models need no key.
    """
    chosen = set(model_ids) if model_ids else None
    graded = [m for m in suite.models if chosen is None or m.id in chosen]
    judges = [m for m_id, m in suite.judges.items() if m_id not in {g.id for g in suite.models}]
    for model in (*graded, *judges):
        mode = parse_mode(modes.get(model.id, RecordMode.replay.value))
        resolve_api_key(model, needed=mode is not RecordMode.replay)


class ClientPool:
    """Builds clients lazily; each has its own transport consulting its own cassette."""

    def __init__(self, suite: Suite, cassettes_root: Path, modes: dict[str, str]) -> None:
        self.suite = suite
        self.cassettes_root = cassettes_root
        self.modes = {k: parse_mode(v) for k, v in modes.items()}
        self._clients: dict[str, openai.AsyncOpenAI] = {}
        self._cassettes: dict[str, Cassette] = {}
        self._owners: dict[str, str] = {}  # cassette name -> the model id whose mode it follows
        self._direct: dict[str, DirectReplay | None] = {}

    def spec(self, model_id: str) -> ModelSpec:
        models = {m.id: m for m in (*self.suite.models, *self.suite.judges.values())}
        return models[model_id]

    def mode(self, model_id: str) -> RecordMode:
        return self.modes.get(model_id, RecordMode.replay)

    def cassette(self, model_id: str) -> Cassette | None:
        return self._cassettes.get(model_id)

    def client(self, model_id: str) -> openai.AsyncOpenAI:
        """The client for a graded model (cassette ``<suite>/<model>.json``)."""
        client = self._clients.get(model_id)
        if client is None:
            client = self._clients[model_id] = self._build(model_id, model_id)
        return client

    def direct(self, model_id: str) -> DirectReplay | None:
        """Answers from a graded model's cassette without the SDK, when the model replays or records only what
        is missing (else None: every call goes out)."""
        if model_id not in self._direct:
            replays = self.mode(model_id) in (RecordMode.replay, RecordMode.record_missing)
            self._direct[model_id] = DirectReplay(self._cassette(model_id, model_id), self.spec(model_id)) \
                if replays else None
        return self._direct[model_id]

    def judge_client(self, model_id: str) -> openai.AsyncOpenAI:
        """The client for a judge (cassette ``<suite>/<model>.judge.json``).

        Separate from the graded model's cassette even when one model plays both roles, so trial recordings
        can be listed and pruned exactly, and judge recordings can be dropped on their own.
        """
        return self.role_client(model_id, "judge")

    def role_client(self, model_id: str, role: str) -> openai.AsyncOpenAI:
        """The client for calls a grader makes in ``role`` (``judge``, ``moderation``): its own cassette,
        ``<suite>/<model>.<role>.json``, with the model's key, mode and limits."""
        name = f"{model_id}.{role}"
        client = self._clients.get(name)
        if client is None:
            client = self._clients[name] = self._build(model_id, name)
        return client

    def _build(self, model_id: str, cassette_name: str) -> openai.AsyncOpenAI:
        model = self.spec(model_id)
        mode = self.mode(model_id)
        api_key = resolve_api_key(model, needed=mode is not RecordMode.replay)
        connections = max(model.max_concurrency, 1)
        # A replay never calls upstream: skip the real transport (its TLS context alone costs ~30 ms).
        inner = None if mode is RecordMode.replay else ShardedTransport(connections)
        if mode is RecordMode.live:
            # Through the transport all the same: it caps the answer's size as in the recording modes.
            live = RecordingTransport(None, mode, inner=inner, max_response_bytes=model.max_response_bytes)
            return make_client(model, api_key, live, connections)
        cassette = self._cassette(model_id, cassette_name)
        transport = RecordingTransport(cassette, mode, inner=inner, max_response_bytes=model.max_response_bytes)
        return make_client(model, api_key, transport, connections)

    def _cassette(self, model_id: str, cassette_name: str) -> Cassette:
        """The cassette ``cassette_name``, opened once: the SDK's transport and direct replays share it."""
        cassette = self._cassettes.get(cassette_name)
        if cassette is None:
            cassette = open_cassette(cassette_path(self.cassettes_root, self.suite.name, cassette_name))
            self._cassettes[cassette_name] = cassette
            self._owners[cassette_name] = model_id
        return cassette

    def prune_unused(self) -> dict[str, int]:
        """After a whole-suite ``record`` run: drop recordings this run did not use, per cassette."""
        dropped = {}
        for name, cassette in self._cassettes.items():
            if self.mode(self._owners.get(name, name)) is RecordMode.record:
                dropped[name] = cassette.prune(cassette.used_keys)
        return dropped

    def save(self) -> None:
        for cassette in self._cassettes.values():
            cassette.save()

    async def aclose(self) -> None:
        self.save()
        for client in self._clients.values():
            await client.close()
