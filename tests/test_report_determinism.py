"""Reports are a pure function of what was evaluated: replays give byte-identical reports in every format,
whatever order the trials finished in and whatever the run is called."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from test_report_fixtures import TinyProject, replay, tiny_project, trial

from harness.report.render import FORMATS, render_run
from harness.stats import compare, pareto_summary, summarize_variants
from harness.store import RESULTS_FILE


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> TinyProject:
    return tiny_project(tmp_path_factory.mktemp("tiny"))


def _shuffle_lines(path: Path, seed: int) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    original = list(lines)
    random.Random(seed).shuffle(lines)
    assert lines != original
    path.write_text("".join(lines), encoding="utf-8")


def test_replays_under_new_run_ids_give_byte_identical_reports(project: TinyProject) -> None:
    first = replay(project, "replay-one")
    second = replay(project, "replay-two")
    # Concurrency decides the line order of results.jsonl; the report must not depend on it.
    _shuffle_lines(second / RESULTS_FILE, seed=3)
    for fmt in FORMATS:
        a, b = render_run(first, fmt), render_run(second, fmt)
        assert a == b, f"{fmt} report differs between two replays"
        assert "replay-one" not in a and "replay-two" not in b
    data = json.loads(render_run(first, "json"))
    assert data["settings"]["seed"] == json.loads(render_run(second, "json"))["settings"]["seed"]


def test_stats_do_not_depend_on_the_order_of_results() -> None:
    # Distinct costs and latencies make every bootstrap sensitive to the order cases are drawn in.
    rng = random.Random(11)
    results = [
        trial(f"c{c:02d}", rng.random() < 0.6, prompt=prompt, repeat=r, cost=rng.lognormvariate(-7, 1),
              latency_ms=rng.uniform(100, 900))  # fmt: skip
        for prompt in ("v1", "v2")
        for c in range(15)
        for r in range(2)
    ]

    def numbers(rows: list) -> str:
        return json.dumps([
            [s.to_dict() for s in summarize_variants(rows, seed=5, n_resamples=499)],
            [c.to_dict() for c in compare(rows, ("m", "v1", 0.0), metric="cost", seed=5)],
            [c.to_dict() for c in compare(rows, ("m", "v1", 0.0), seed=5)],
            [p.to_dict() for p in pareto_summary(rows, seed=5, n_resamples=499)],
        ])  # fmt: skip

    expected = numbers(results)
    for seed in (1, 2):
        shuffled = list(results)
        random.Random(seed).shuffle(shuffled)
        assert numbers(shuffled) == expected
    assert [s.prompt for s in summarize_variants(list(reversed(results)), n_resamples=99)] == ["v1", "v2"]
