"""Cassette files are written from cached per-interaction text: byte for byte what vcrpy writes, and saved
at a pace that keeps a long recording linear."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from vcr.serialize import CASSETTE_FORMAT_VERSION
from vcr.serializers import jsonserializer

from harness.execute import journal
from harness.execute.cassette import Cassette, CassetteError, Interaction, make_interaction, match_key

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


def test_a_killed_recording_is_folded_into_the_file_on_the_next_open(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    first = Cassette(path)
    for i in range(3):
        first.record(interaction(i))
    first.save()
    killed = Cassette(path)
    killed.record(interaction(3))
    killed.record(interaction(1, text="re-recorded"))  # a new key
    # Killed here: never saved. Its last journal line was torn mid-write.
    journal = tmp_path / "c.json.journal"
    journal.write_bytes(journal.read_bytes() + b'{"key": "torn", "requ')
    reopened = Cassette(path)
    assert len(reopened) == 5
    assert not journal.exists()  # merged into the file at once
    assert len(json.loads(path.read_text())["interactions"]) == 5
    assert path.read_text() == reopened.dumps()


def test_a_torn_line_is_cut_before_the_next_append(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    journal_file = journal.journal_path(path)
    Cassette(path).record(interaction(0))
    journal_file.write_bytes(journal_file.read_bytes() + b'{"key": "to')  # a writer killed mid-line
    journal.append(journal_file, [interaction(1)])  # another process appends next
    lines = journal_file.read_bytes().splitlines()
    assert len(lines) == 2 and [json.loads(line)["key"] for line in lines] == [interaction(0).key, interaction(1).key]
    assert len(Cassette(path)) == 2


def test_a_later_recording_of_a_key_wins_in_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    cassette = Cassette(path)
    old = interaction(0)
    new = interaction(0, content=b'{"choices": []}')
    assert old.key == new.key
    cassette.record(old)
    cassette.record(new)
    assert Cassette(path).lookup(old.key).content == b'{"choices": []}'  # type: ignore[union-attr]


def test_two_writers_of_one_cassette_keep_the_union(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    a, b = Cassette(path), Cassette(path)  # as two processes: separate indexes, one file
    for i in range(0, 10, 2):
        a.record(interaction(i))
    for i in range(1, 10, 2):
        b.record(interaction(i))
    assert b.lookup(interaction(0).key) is not None  # a miss looks at the disk: a's recording is there
    a.save()
    b.save()
    assert len(Cassette(path)) == 10
    assert len(json.loads(path.read_text())["interactions"]) == 10


def test_conflicting_duplicates_in_a_file_are_refused_naming_both(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    first, second = interaction(0), interaction(0, content=b'{"other": true}')
    text = vcrpy_text([interaction(5), first, second])
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CassetteError, match=r"interactions\[1\] and interactions\[2\]") as raised:
        Cassette(path)
    assert str(path) in str(raised.value)
    # The same exchange twice (a merge that kept both copies) is harmless and kept once.
    path.write_text(vcrpy_text([first, first]), encoding="utf-8")
    assert len(Cassette(path)) == 1
