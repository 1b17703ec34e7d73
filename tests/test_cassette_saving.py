"""Cassette files are written from cached per-interaction text: byte for byte what vcrpy writes, and saved
at a pace that keeps a long recording linear."""

from __future__ import annotations

import json
from pathlib import Path

from vcr.serialize import CASSETTE_FORMAT_VERSION
from vcr.serializers import jsonserializer

from harness.execute.cassette import Cassette, Interaction, make_interaction, match_key

CHAT_PATH = "/v1/chat/completions"


def interaction(i: int, content: bytes | None = None, text: str = "") -> Interaction:
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": text or f"question {i}"}]}).encode()
    reply = content if content is not None else json.dumps(
        {"id": f"c{i}", "choices": [{"index": 0, "message": {"role": "assistant", "content": f"answer {i}"}}]}
    ).encode()
    return make_interaction(
        key=match_key("POST", CHAT_PATH, f"r{i % 3}", body), method="POST", uri=CHAT_PATH, sample=f"r{i % 3}",
        request_body=body, request_headers=[("Content-Type", "application/json"), ("Authorization", "Bearer k")],
        status=200, reason="OK", response_headers=[("content-type", "application/json"), ("set-cookie", "x")],
        content=reply,
    )


def vcrpy_text(interactions: list[Interaction]) -> str:
    data = {"version": CASSETTE_FORMAT_VERSION,
            "interactions": [{"request": i.request, "response": i.response} for i in interactions]}
    return str(jsonserializer.serialize(data))


def test_saved_file_is_exactly_what_vcrpys_serializer_writes(tmp_path: Path) -> None:
    items = [
        interaction(0),
        interaction(1, text="naïve café ✓ \"quoted\"\nnew line\ttab"),  # escapes and non-ASCII
        interaction(2, content=bytes(range(256))),  # not UTF-8: stored as base64
        interaction(3, content=b""),
        interaction(4, content="{\"emoji\": \"🙂\"}".encode()),
    ]
    cassette = Cassette(tmp_path / "c.json")
    for item in items:
        assert cassette.record(item)
    assert cassette.save()
    ordered = sorted(items, key=lambda i: i.key)
    assert (tmp_path / "c.json").read_text(encoding="utf-8") == vcrpy_text(ordered)
    assert cassette.dumps() == vcrpy_text(ordered)
    # Reading it back and saving again (a prune that drops nothing would be a no-op) gives the same bytes.
    again = Cassette(tmp_path / "c.json")
    assert again.dumps() == vcrpy_text(ordered)
    assert len(again) == 5 and again.lookup(items[2].key).content == bytes(range(256))  # type: ignore[union-attr]


def test_empty_and_single_interaction_files_match_vcrpy(tmp_path: Path) -> None:
    cassette = Cassette(tmp_path / "c.json")
    assert cassette.dumps() == vcrpy_text([])
    one = interaction(7)
    cassette.record(one)
    assert cassette.dumps() == vcrpy_text([one])
    assert cassette.prune([]) == 1 and cassette.save()
    assert json.loads((tmp_path / "c.json").read_text(encoding="utf-8")) == {"version": 1, "interactions": []}


def test_autosave_waits_for_growth_proportional_to_the_cassette(tmp_path: Path) -> None:
    cassette = Cassette(tmp_path / "c.json", autosave_every=10)
    for i in range(10):
        assert not cassette.autosave_due
        cassette.record(interaction(i))
    assert cassette.autosave_due  # small cassette: every 10 recordings
    cassette.save()
    for i in range(10, 1000):
        cassette.record(interaction(i))
    cassette.save()
    # Past 1,000 interactions a save waits for a tenth of the cassette in new ones, not for 10:
    # 111 new recordings make 1,111 interactions, a tenth of which is 111.
    for i in range(1000, 1110):
        cassette.record(interaction(i))
        assert not cassette.autosave_due
    cassette.record(interaction(1110))
    assert cassette.autosave_due
    assert Cassette(tmp_path / "c.json", autosave_every=None).autosave_due is False


def test_no_autosave_is_due_while_a_save_is_running(tmp_path: Path) -> None:
    cassette = Cassette(tmp_path / "c.json", autosave_every=1)
    cassette.record(interaction(0))
    assert cassette.autosave_due
    with cassette._save_lock:  # another thread is writing the file right now
        assert not cassette.autosave_due
    assert cassette.autosave_due
