"""The example suites of the API features replay offline from their committed cassettes, with the verdicts
their descriptions promise (they were recorded against the project's fault server)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.pipeline import RunOptions, run_suite
from harness.suite import load_suite

EXAMPLES = Path(__file__).resolve().parents[1] / "suites" / "examples"


def replay(name: str, tmp_path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    outcome = run_suite(load_suite(EXAMPLES / f"{name}.yaml"),
                        RunOptions(reports_root=tmp_path, record="replay", progress=False))
    assert outcome.manifest.status == "complete"
    rows = [json.loads(line) for line in outcome.results_path.read_text().splitlines()]
    return {(r["prompt"], r["case_id"]): r for r in rows}


def test_tools_example_walks_both_round_trips(tmp_path: Path) -> None:
    rows = replay("tools", tmp_path)
    for prompt in ("tools", "legacy"):
        paris, rome = rows[(prompt, "paris")], rows[(prompt, "rome")]
        assert paris["passed"] is True and paris["output"] == "Tool result: 14:05 in Paris"
        weather = json.loads(paris["transcript"][1]["content"])
        assert weather == {"city": "Paris", "sky": "sunny", "temperature": 21, "unit": "C"}
        assert rome["passed"] is False and "expected \"Rome\", got \"Paris\"" in rome["grades"][1]["reason"]


def test_moderation_example_flags_by_category(tmp_path: Path) -> None:
    rows = replay("moderation", tmp_path)
    verdicts = {case: [g["passed"] for g in r["grades"]] for (_, case), r in rows.items()}
    assert verdicts == {"friendly": [True, True], "process": [False, True], "insult": [False, False]}
    assert rows[("v1", "process")]["grades"][0]["reason"] == "moderation flagged: violence 0.90"


def test_images_example_sends_each_picture(tmp_path: Path) -> None:
    rows = replay("images", tmp_path)
    for (_, case), row in rows.items():
        image = row["request"]["messages"][0]["content"][1]["image_url"]
        assert image["detail"] == "low" and image["url"].startswith("data:image/png;base64,")
        assert row["passed"] is True and case in row["output"]


def test_completions_example_flattens_conversations_through_its_templates(tmp_path: Path) -> None:
    rows = replay("completions", tmp_path)
    labels, chatml = rows[("labels", "follow-up")], rows[("chatml", "follow-up")]
    assert labels["request"]["prompt"] == (
        "System: You are a helpful assistant. Answer in a few words.\n\nUser: My name is Ada.\n\n"
        "Assistant: Nice to meet you, Ada.\n\nUser: What is my name?\n\nAssistant:")
    assert chatml["request"]["prompt"].endswith("<|im_start|>user\nWhat is my name?<|im_end|>\n<|im_start|>assistant\n")
    # Recorded from SmolLM2-135M: it knows the capital either way, and forgets the name either way.
    assert all(rows[(p, "capital")]["passed"] is True for p in ("labels", "chatml"))
    assert all(r["error"] is None and r["usage"]["prompt_tokens"] > 10 for r in rows.values())
