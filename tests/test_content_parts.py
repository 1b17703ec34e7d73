"""Content parts and images, and chat prompts flattened for the completions endpoint: suite → request → replay."""

from __future__ import annotations

import base64
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest

from harness.pipeline import RunOptions, run_suite
from harness.render import render_request
from harness.render_parts import MAX_IMAGE_BYTES
from harness.report.render import FORMATS, render_run
from harness.suite import load_suite
from harness.testing.fault_server import FaultServer


def png(width: int = 2, height: int = 1) -> bytes:
    """A real (tiny, grey) PNG, built by hand so the test needs no imaging library."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


SUITE = """
suite: pics
models:
  - {{name: m, base_url: "{url}", api_key_env: null}}
prompts:
  v1:
    - role: user
      content:
        - {{type: text, text: "What is in picture {{{{ name }}}}?"}}
        - {{image: "img/{{{{ name }}}}.png", detail: low}}
        - {{type: image_url, image_url: {{url: "https://example.com/cat.png"}}}}
cases:
  - {{id: a, vars: {{name: one}}, graders: [{{type: contains, value: "[image image/png"}}]}}
  - id: b
    vars: {{name: two}}
    messages:
      - role: user
        content: [{{type: text, text: "Earlier picture:"}}, {{image: img/one.png}}]
      - {{role: assistant, content: "A grey dot."}}
"""


def project(tmp_path: Path, url: str, text: str = SUITE) -> Path:
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "suites" / "img").mkdir(parents=True)
    (tmp_path / "suites" / "img" / "one.png").write_bytes(png(2, 1))
    (tmp_path / "suites" / "img" / "two.png").write_bytes(png(3, 2))
    path = tmp_path / "suites" / "pics.yaml"
    path.write_text(text.format(url=url))
    return path


def run(path: Path, reports: Path, record: str) -> tuple[Path, dict[str, dict[str, Any]]]:
    outcome = run_suite(load_suite(path), RunOptions(reports_root=reports, record=record, progress=False))
    rows = [json.loads(line) for line in outcome.results_path.read_text().splitlines()]
    return outcome.directory, {r["case_id"]: r for r in rows}


def test_images_are_embedded_parts_pass_through_and_a_replay_is_identical(tmp_path: Path) -> None:
    with FaultServer() as server:
        path = project(tmp_path, server.base_url)
        first_dir, recorded = run(path, tmp_path / "r1", "record")
    parts = recorded["a"]["request"]["messages"][0]["content"]
    assert parts[0] == {"type": "text", "text": "What is in picture one?"}
    expected_url = "data:image/png;base64," + base64.b64encode(png(2, 1)).decode()
    assert parts[1] == {"type": "image_url", "image_url": {"url": expected_url, "detail": "low"}}
    assert parts[2] == {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}  # untouched
    # The server saw both images; the case's grader checks it through the echoed text.
    assert recorded["a"]["passed"] is True
    assert f"[image image/png {len(png(2, 1))} bytes] [image https://example.com/cat.png]" in recorded["a"]["output"]
    # Case b has no history placeholder: its earlier turns come last, so the server echoes that picture.
    assert f"Earlier picture: [image image/png {len(png(2, 1))} bytes]" == recorded["b"]["output"]
    history = recorded["b"]["request"]["messages"][1]["content"]
    assert history[1] == {"type": "image_url", "image_url": {"url": expected_url}}

    # The body, and so the match key, is a pure function of the files: rendering again gives the same bytes.
    suite = load_suite(path)
    case = next(iter(suite.iter_cases()))
    again = render_request(suite, suite.prompts["v1"], suite.models[0], case, 0.0, 0)
    assert again.body == recorded["a"]["request"]

    second_dir, replayed = run(path, tmp_path / "r2", "replay")
    strip = {"finished_at", "attempts"}  # a loaded machine may retry a recording call; its replay takes one
    assert {c: {k: v for k, v in r.items() if k not in strip} for c, r in replayed.items()} == \
        {c: {k: v for k, v in r.items() if k not in strip} for c, r in recorded.items()}
    for fmt in FORMATS:
        assert render_run(first_dir, fmt) == render_run(second_dir, fmt), fmt
    html = render_run(first_dir, "html")
    assert f'<img class="thumb" src="{expected_url}"' in html
    assert "[image https://example.com/cat.png]" in html
    assert base64.b64encode(png(2, 1)).decode() not in html.replace(expected_url, "")  # only as thumbnails


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", "validate", str(path)], capture_output=True, text=True,
                          timeout=60, cwd=path.parent)


@pytest.mark.parametrize(("change", "where", "message"), [
    ('{{image: "img/{{{{ name }}}}.png", detail: low}}', "pics.yaml:10: prompts.v1[0].content[1].image",
     "outside the project root", ),
    ('{{image: "img/{{{{ name }}}}.png", detail: low}}', "pics.yaml:10: prompts.v1[0].content[1].image",
     "is not a PNG"),
    ('{{image: "img/{{{{ name }}}}.png", detail: low}}', "pics.yaml:10: prompts.v1[0].content[1].image",
     "the limit is"),
    ('{{image: "img/{{{{ name }}}}.png", detail: low}}', "pics.yaml:10: prompts.v1[0].content[1].image",
     "detail must be one of"),
    ("{{image: img/one.png}}]", "pics.yaml:14: cases[1].messages[0].image", "image file not found: img/nine.png"),
    ('{{image: "img/{{{{ name }}}}.png", detail: low}}', "pics.yaml:13: prompts.v1[0].content.image",
     "case 'a': image file not found: img/one.png"),
])
def test_validate_refuses_images_outside_missing_too_big_or_not_images(tmp_path: Path, change: str, where: str,
                                                                      message: str) -> None:
    path = project(tmp_path, "http://127.0.0.1:9/v1")
    text = SUITE
    if "outside" in message:
        (tmp_path.parent / "secret.png").write_bytes(png())
        os.symlink(tmp_path.parent / "secret.png", tmp_path / "suites" / "img" / "link.png")
        text = text.replace(change, "{{image: img/link.png}}")
    elif "not a PNG" in message:
        (tmp_path / "suites" / "img" / "fake.png").write_text("GIF? no, text")
        text = text.replace(change, "{{image: img/fake.png}}")
    elif "limit" in message:
        (tmp_path / "suites" / "img" / "big.png").write_bytes(png() + b"\0" * MAX_IMAGE_BYTES)
        text = text.replace(change, "{{image: img/big.png}}")
    elif "detail" in message:
        text = text.replace(change, "{{image: img/one.png, detail: huge}}")
    elif "nine" in message:
        text = text.replace(change, "{{image: img/nine.png}}]")
    else:
        (tmp_path / "suites" / "img" / "one.png").unlink()  # case a's templated path now misses
        text = text.replace("[{{type: text, text: \"Earlier picture:\"}}, {{image: img/one.png}}]", "hi")
    path.write_text(text.format(url="http://127.0.0.1:9/v1"))
    done = validate(path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert where in done.stderr and message in done.stderr, done.stderr


FLAT = """
suite: flat
models:
  - {{name: base, base_url: "{url}", api_key_env: null, api: completions}}
params: {{max_tokens: 50}}
prompts:
  default:
    - {{role: system, content: "You are terse."}}
    - {{history: true}}
    - {{role: user, content: "{{{{ q }}}}"}}
  custom:
    messages: [{{role: system, content: "You are terse."}}, {{history: true}}, {{role: user, content: "{{{{ q }}}}"}}]
    completion_template: >-
      {{% for m in messages %}}<{{{{ m.role }}}}>{{{{ m.content }}}}</{{{{ m.role }}}}>{{% endfor %}}<assistant>
cases:
  - id: two-turns
    vars: {{q: "And 3+3?"}}
    messages: [{{role: user, content: "2+2?"}}, {{role: assistant, content: "4"}}]
"""


def test_a_conversation_sent_to_the_completions_endpoint_goes_through_its_template(tmp_path: Path) -> None:
    with FaultServer() as server:
        path = project(tmp_path, server.base_url, FLAT)
        directory, _ = run(path, tmp_path / "r", "live")
    rows = [json.loads(line) for line in (directory / "results.jsonl").read_text().splitlines()]
    by_prompt = {r["prompt"]: r["request"]["prompt"] for r in rows}
    assert by_prompt["default"] == ("System: You are terse.\n\nUser: 2+2?\n\nAssistant: 4\n\n"
                                    "User: And 3+3?\n\nAssistant:")
    assert by_prompt["custom"] == ("<system>You are terse.</system><user>2+2?</user><assistant>4</assistant>"
                                   "<user>And 3+3?</user><assistant>")


def test_validate_refuses_a_broken_template_and_images_for_the_completions_endpoint(tmp_path: Path) -> None:
    path = project(tmp_path, "http://127.0.0.1:9/v1", FLAT.replace("{{% endfor %}}", ""))
    done = validate(path)
    assert done.returncode == 2 and "pics.yaml:14: prompts.custom.completion_template" in done.stderr, done.stderr

    text = FLAT.replace('{{role: user, content: "{{{{ q }}}}"}}]', '{{role: user, content: [{{image: img/one.png}}]}}]')
    path.write_text(text.format(url="http://127.0.0.1:9/v1"))
    done = validate(path)
    assert done.returncode == 2 and "pics.yaml:4: models[0].api" in done.stderr, done.stderr
    assert "takes text only" in done.stderr
