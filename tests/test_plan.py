"""The plan: matrix expansion, its order, stable trial ids, and shards that partition it."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from harness.plan import Shard, count_trials, iter_trials
from harness.suite import Suite, load_suite

BASE = {
    "models": "  - name: alpha\n    base_url: http://127.0.0.1:1/v1\n    params: {top_p: 0.5}\n  - name: beta\n",
    "prompt": "Say {{ word }}",
    "temperatures": "[0.0, 0.7]",
    "repeats": "2",
}


def make_suite(folder: Path, n_cases: int = 3, **changes: str) -> Suite:
    spec = {**BASE, **changes}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text("")
    rows = [{"id": f"c{i}", "vars": {"word": f"w{i}"}} for i in range(n_cases)]
    (folder / "cases.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (folder / "s.yaml").write_text(
        f"suite: plan\nmodels:\n{spec['models']}temperatures: {spec['temperatures']}\nrepeats: {spec['repeats']}\n"
        f"prompts:\n  v1:\n    - role: user\n      content: '{spec['prompt']}'\n"
        "  v2:\n    - role: user\n      content: 'Please say {{ word }}'\n"
        "cases:\n  - file: cases.jsonl\n",
        encoding="utf-8",
    )
    return load_suite(folder / "s.yaml")


def ids(suite: Suite) -> dict[tuple[str, str, str, float, int], str]:
    return {t.key: t.id for t in iter_trials(suite)}


def test_matrix_size_and_order(tmp_path: Path) -> None:
    suite = make_suite(tmp_path)
    trials = list(iter_trials(suite))
    assert len(trials) == 3 * 2 * 2 * 2 * 2 == count_trials(suite)
    # Case by case, then repeat, model, prompt and temperature: a run stopped half-way covers every variant.
    assert [t.key for t in trials[:9]] == [
        ("c0", "v1", "alpha", 0.0, 0), ("c0", "v1", "alpha", 0.7, 0),
        ("c0", "v2", "alpha", 0.0, 0), ("c0", "v2", "alpha", 0.7, 0),
        ("c0", "v1", "beta", 0.0, 0), ("c0", "v1", "beta", 0.7, 0),
        ("c0", "v2", "beta", 0.0, 0), ("c0", "v2", "beta", 0.7, 0),
        ("c0", "v1", "alpha", 0.0, 1),
    ]
    assert [t.case.id for t in trials[::16]] == ["c0", "c1", "c2"]
    assert len({t.id for t in trials}) == len(trials)
    assert all(len(t.id) == 20 and int(t.id, 16) >= 0 for t in trials)


def test_filters(tmp_path: Path) -> None:
    suite = make_suite(tmp_path)
    chosen = list(iter_trials(suite, models=["beta"], prompts=["v2"], cases=["c1", "c2"]))
    assert {(t.model.id, t.prompt.name) for t in chosen} == {("beta", "v2")}
    assert {t.case.id for t in chosen} == {"c1", "c2"} and len(chosen) == 2 * 2 * 2
    assert count_trials(suite, models=["alpha"]) == 24


def test_ids_are_stable_across_loads(tmp_path: Path) -> None:
    assert ids(make_suite(tmp_path / "a")) == ids(make_suite(tmp_path / "b"))


@pytest.mark.parametrize(
    ("change", "which"),
    [
        ({"prompt": "Now say {{ word }}"}, "v1"),
        ({"models": BASE["models"].replace("top_p: 0.5", "top_p: 0.6")}, "alpha"),
        ({"models": BASE["models"].replace("name: beta", "name: beta-2024")}, "beta-2024"),
    ],
)
def test_ids_change_with_what_shapes_the_request(tmp_path: Path, change: dict[str, str], which: str) -> None:
    before = ids(make_suite(tmp_path / "a"))
    after = ids(make_suite(tmp_path / "b", **change))
    changed = {k for k in after if before.get(k) != after[k]}
    assert changed and all(which in (k[1], k[2]) for k in changed), "only the edited variant's ids change"
    assert len(changed) == 24


def test_ids_change_with_the_case_and_the_temperature(tmp_path: Path) -> None:
    suite = make_suite(tmp_path / "a")
    before = ids(suite)
    rows = (tmp_path / "a" / "cases.jsonl").read_text().replace('"w1"', '"edited"')
    (tmp_path / "a" / "cases.jsonl").write_text(rows)
    after = ids(load_suite(tmp_path / "a" / "s.yaml"))
    assert {k[0] for k in after if before[k] != after[k]} == {"c1"}
    warmer = ids(make_suite(tmp_path / "b", temperatures="[0.0, 0.9]"))
    assert {k: v for k, v in warmer.items() if k[3] == 0.0} == {k: v for k, v in before.items() if k[3] == 0.0}


def test_ids_ignore_where_the_model_is_served(tmp_path: Path) -> None:
    moved = BASE["models"].replace("http://127.0.0.1:1/v1", "http://127.0.0.1:2/other/v1")
    priced = moved + "    price: {input: 1, output: 2}\n"
    assert ids(make_suite(tmp_path / "a")) == ids(make_suite(tmp_path / "b", models=priced))


def test_adding_a_case_keeps_the_other_ids(tmp_path: Path) -> None:
    small, large = ids(make_suite(tmp_path / "a", 3)), ids(make_suite(tmp_path / "b", 4))
    assert all(large[k] == v for k, v in small.items())


def test_shards_partition_the_plan_by_case(tmp_path: Path) -> None:
    suite = make_suite(tmp_path, n_cases=200, repeats="1", temperatures="[0.0]")
    everything = [t.id for t in iter_trials(suite)]
    shards = [list(iter_trials(suite, shard=Shard(i, 4))) for i in range(1, 5)]
    owned = [[t.id for t in shard] for shard in shards]
    assert sorted(sum(owned, [])) == sorted(everything)  # union is all, and no trial twice
    assert all(set(a).isdisjoint(b) for i, a in enumerate(owned) for b in owned[i + 1:])
    for shard in shards:
        # Every variant of a case stays in its shard, so each shard has the same mix of models and prompts.
        per_case = Counter(t.case.id for t in shard)
        assert set(per_case.values()) == {4}
        per_model = Counter(t.model.id for t in shard)
        assert per_model["alpha"] == per_model["beta"]
        assert 30 <= len(per_case) <= 70, "about a quarter of the 200 cases each"
    # Deterministic: the same slice every time.
    assert [t.id for t in iter_trials(suite, shard=Shard(2, 4))] == owned[1]
    assert [t.id for t in iter_trials(suite, shard=Shard(1, 1))] == everything


@pytest.mark.parametrize("text", ["0/3", "4/3", "1/0", "a/b", "3", "1/2/3", ""])
def test_shard_parse_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="I/N|1 ≤ I ≤ N"):
        Shard.parse(text)


def test_shard_parse_and_str() -> None:
    assert Shard.parse("2/5") == Shard(2, 5) and str(Shard(2, 5)) == "2/5"
