"""Cost that matches the invoice: cached prompt tokens, reasoning tokens, the dated price table, overrides,
a warning for a model without a price; and ``harness validate`` refusing misused sampling parameters."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.pipeline import RunOptions, run_suite
from harness.stats.summary import summarize_variants
from harness.store import read_results
from harness.suite import Price, load_suite
from harness.suite.prices import KNOWN_PRICES, PRICES_AS_OF, known_price, suite_price
from harness.testing.fault_server import FaultConfig, FaultServer


def validate(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return subprocess.run([sys.executable, "-m", "harness", "validate", str(path)], capture_output=True, text=True,
                          timeout=60)


BASE = """suite: s
models:
  - name: {model}
    api_key_env: null{model_extra}
params:
  max_tokens: 5{params}
prompts:
  v1: [{{role: user, content: hi}}]
cases:
  - {{id: a, graders: [{{type: contains, value: x}}]}}
"""


def suite(model: str = "gpt-4o", params: str = "", model_extra: str = "") -> str:
    return BASE.format(model=model, params=params, model_extra=model_extra)


def test_cached_tokens_priced_at_the_cached_rate() -> None:
    price = Price(input=2.0, output=8.0, cached_input=0.5)
    assert price.cost(1000, 100, cached_tokens=400) == pytest.approx((600 * 2.0 + 400 * 0.5 + 100 * 8.0) / 1e6)
    # Without a cached rate, cached tokens cost the input price; more cached than prompt tokens is capped.
    assert Price(2.0, 8.0).cost(1000, 0, cached_tokens=400) == pytest.approx(1000 * 2.0 / 1e6)
    assert price.cost(10, 0, cached_tokens=50) == pytest.approx(10 * 0.5 / 1e6)
    assert price.usage_cost({}) is None and price.usage_cost(None) is None  # unknown, not zero
    assert price.usage_cost({"prompt_tokens": 0, "completion_tokens": 0}) == 0.0


def test_price_table_is_dated_and_overridable() -> None:
    assert len(PRICES_AS_OF) == 10 and PRICES_AS_OF[4] == "-"
    for name, price in KNOWN_PRICES.items():
        assert price.batch is not None and price.batch.input == price.input / 2, name
    assert known_price("gpt-4o-mini-2024-07-18") == KNOWN_PRICES["gpt-4o-mini"]
    assert known_price("gpt-4") is None
    # One key changed, the rest kept from the table (the batch price too, unless given).
    custom = suite_price({"cached_input": 0.6}, "gpt-4o")
    assert custom is not None and (custom.input, custom.output, custom.cached_input) == (2.5, 10.0, 0.6)
    assert custom.batch == KNOWN_PRICES["gpt-4o"].batch
    batch = suite_price({"batch": {"input": 1.0}}, "gpt-4o")
    assert batch is not None and batch.batch is not None and (batch.batch.input, batch.batch.output) == (1.0, 5.0)
    assert suite_price({"input": 1, "output": 2}, "my-model") == Price(1.0, 2.0)
    assert suite_price({"input": 1}, "my-model") is None


def test_unpriced_model_warns_once_with_how_to_set_it(tmp_path: Path) -> None:
    done = validate(tmp_path, suite("gpt-4"))
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1
    assert "'gpt-4'" in warnings[0] and "price: {input:" in warnings[0] and PRICES_AS_OF in warnings[0]
    assert "suite.yaml:3: models[0]" in warnings[0]
    assert "warning" not in validate(tmp_path, suite("gpt-4o")).stderr
    priced = validate(tmp_path, suite("gpt-4", model_extra="\n    price: {input: 30, output: 60}"))
    assert priced.returncode == 0 and "warning" not in priced.stderr


@pytest.mark.parametrize(("params", "model_extra", "where", "says"), [
    ("\n  n: 0", "", "suite.yaml:7: params.n", "minimum"),
    ("\n  n: 129", "", "suite.yaml:7: params.n", "maximum"),
    ("\n  stream: 'yes'", "", "suite.yaml:7: params.stream", "boolean"),
    ("\n  stream_options: {include_usage: true}", "", "suite.yaml:7: params.stream_options",
     "only applies with stream: true"),
    ("\n  best_of: 3", "", "suite.yaml:7: params.best_of", "legacy completions"),
    ("\n  best_of: 3\n  stream: true", "\n    api: completions", "suite.yaml:8: params.best_of", "stream"),
    ("\n  best_of: 2\n  n: 3", "\n    api: completions", "suite.yaml:8: params.best_of", "at least n"),
    ("\n  best_of: 4\n  n: 2", "\n    api: completions", "suite.yaml:9: params.n", "biased"),
    ("", "\n    price: {input: 1}", "suite.yaml:5: models[0].price", "give both input and output"),
    ("\n  n: 2\ntools: [{type: function, function: {name: f}}]\ntool_results: {f: 1}", "", "suite.yaml:7: params.n",
     "tool round trips"),
])
def test_validate_refuses_misuse(tmp_path: Path, params: str, model_extra: str, where: str, says: str) -> None:
    done = validate(tmp_path, suite("my-model", params, model_extra))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert where in done.stderr and says in done.stderr, done.stderr


def test_model_setting_overrides_suite_stream_at_its_own_line(tmp_path: Path) -> None:
    done = validate(tmp_path, suite("my-model", "\n  stream: true\n  stream_options: {include_usage: true}",
                                    "\n    params: {stream: false}"))
    assert done.returncode == 2 and "params.stream_options" in done.stderr, done.stderr


def test_cached_and_reasoning_tokens_through_a_run(tmp_path: Path) -> None:
    with FaultServer(FaultConfig(cached_tokens=2, reasoning_tokens=4)) as server:
        path = tmp_path / "suite.yaml"
        path.write_text(f"""suite: s
models:
  - {{name: gpt-4o, base_url: "{server.base_url}", api_key_env: null}}
prompts:
  v1: [{{role: user, content: "one two three four five"}}]
cases:
  - {{id: a, graders: [{{type: contains, value: one}}]}}
""")
        outcome = run_suite(load_suite(path), RunOptions(reports_root=tmp_path / "r", record="live", progress=False))
    (record,) = [json.loads(line) for line in outcome.results_path.read_text().splitlines()]
    usage = record["usage"]
    assert usage["cached_tokens"] == 2 and usage["reasoning_tokens"] == 4
    price = KNOWN_PRICES["gpt-4o"]
    assert price.cached_input is not None
    expected = ((usage["prompt_tokens"] - 2) * price.input + 2 * price.cached_input
                + usage["completion_tokens"] * price.output) / 1e6
    assert record["cost"] == pytest.approx(expected)
    (summary,) = summarize_variants(read_results(outcome.results_path), n_resamples=100)
    assert (summary.tokens_cached_per_case, summary.tokens_reasoning_per_case) == (2.0, 4.0)
    assert summary.to_dict()["tokens_reasoning_per_case"] == 4.0
