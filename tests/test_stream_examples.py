"""The streaming, samples and costs example suites replay offline from their committed cassettes with the
numbers their descriptions promise (streaming and samples recorded against llama-server, costs against the
fault server)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.pipeline import RunOptions, run_suite
from harness.stats.summary import summarize_variants
from harness.store import read_results
from harness.suite import load_suite

EXAMPLES = Path(__file__).resolve().parents[1] / "suites" / "examples"


def replay(name: str, tmp_path: Path) -> tuple[list[dict[str, Any]], Path]:
    outcome = run_suite(load_suite(EXAMPLES / f"{name}.yaml"),
                        RunOptions(reports_root=tmp_path, record="replay", progress=False))
    assert outcome.manifest.status == "complete" and not outcome.execute.replay_misses
    rows = [json.loads(line) for line in outcome.results_path.read_text().splitlines()]
    return rows, outcome.results_path


def test_streaming_example_has_a_recorded_ttft_per_trial(tmp_path: Path) -> None:
    rows, path = replay("streaming", tmp_path)
    assert len(rows) == 12
    for r in rows:
        assert r["request"]["stream"] is True and r["request"]["stream_options"] == {"include_usage": True}
        assert 0 < r["ttft_ms"] <= r["latency_ms"] and r["usage"]["completion_tokens"] > 0 and r["cost"] > 0
    summaries = summarize_variants(read_results(path), n_resamples=200)
    assert all(s.ttft_p95_s is not None and s.tokens_per_s is not None for s in summaries)
    again, _ = replay("streaming", tmp_path / "again")
    assert sorted((r["trial_id"], r["ttft_ms"], r["output"]) for r in again) == \
        sorted((r["trial_id"], r["ttft_ms"], r["output"]) for r in rows)


def test_samples_example_grades_every_choice(tmp_path: Path) -> None:
    rows, path = replay("samples", tmp_path)
    assert len(rows) == 5 * 2 * 4  # cases × repeats × choices
    (summary,) = summarize_variants(read_results(path), n_resamples=200)
    choices = summary.choices
    assert choices is not None and choices.samples_min == 8 and choices.choices_per_request == 4
    one, four = choices.pass_at_k[1].estimate, choices.pass_at_k[4].estimate
    assert one is not None and four is not None and one <= four
    assert one == pytest.approx(summary.pass_rate.estimate)  # pass@1 is the per-sample pass rate
    assert choices.majority is not None and choices.voted_cases == 5


def test_costs_example_prices_cached_tokens_and_shows_reasoning(tmp_path: Path) -> None:
    rows, _ = replay("costs", tmp_path)
    gpt4 = [r for r in rows if r["model"] == "gpt-4"]
    assert len(gpt4) == 2
    for r in gpt4:
        usage = r["usage"]
        assert usage["cached_tokens"] == 8 and usage["reasoning_tokens"] == 5
        expected = ((usage["prompt_tokens"] - 8) * 30 + 8 * 15 + usage["completion_tokens"] * 60) / 1e6
        assert r["cost"] == pytest.approx(expected)
    assert not load_suite(EXAMPLES / "costs.yaml").warnings  # every model has a price
