"""harness.stats.dist gives scipy.stats' numbers to the last bit, and the run summary never imports scipy.stats."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
from scipy import optimize, stats
from test_cli_subprocess_fixtures import cli_loading

from harness.stats import dist

LEVELS = (0.8, 0.9, 0.95, 0.99)
SIZES = (*range(1, 21), 57, 100, 101, 999, 4321)


def same(a: float, b: float) -> bool:
    """Equal as doubles (NaN equal to NaN): not approximately, exactly."""
    return (math.isnan(a) and math.isnan(b)) or float(a).hex() == float(b).hex()


def test_normal_and_t_quantiles_are_scipy_stats_exactly() -> None:
    qs = [0.5 + 0.5 * level for level in LEVELS] + [1 - (1 - level) / 2 for level in LEVELS] + [0.001, 0.3, 0.999]
    for q in qs:
        assert same(dist.norm_ppf(q), stats.norm.ppf(q))
        for df in (1, 2, 3, 7, 19, 30, 99, 1000, 2.5):
            assert same(dist.t_ppf(q, df), stats.t.ppf(q, df)), (q, df)
    assert math.isnan(dist.t_ppf(0.975, 0)) and math.isnan(stats.t.ppf(0.975, 0))
    for x in (-3.0, -1.2, 0.0, 0.7, 2.5):
        assert same(dist.norm_cdf(x), stats.norm.cdf(x))


def test_beta_and_binomial_functions_are_scipy_stats_exactly() -> None:
    for n in SIZES[::3]:
        for p in (0.0, 0.01, 0.25, 0.5, 0.95, 1.0):
            for k in (-1, 0, 1, n // 2, n - 1, n, n + 1, 2.5):
                assert same(dist.binom_sf(k, n, p), stats.binom.sf(k, n, p)), (k, n, p)
                assert same(dist.binom_cdf(k, n, p), stats.binom.cdf(k, n, p)), (k, n, p)
        for p in (0.05, 0.5, 0.95):
            for q in (0.0, 0.005, 0.025, 0.05, 0.5, 0.975, 1.0):
                assert same(dist.binom_ppf(q, n, p), stats.binom.ppf(q, n, p)), (q, n, p)
                assert same(dist.binom_isf(q, n, p), stats.binom.isf(q, n, p)), (q, n, p)
        for f in range(0, min(n, 12)):
            assert same(dist.beta_ppf(0.95, f + 1, n - f), stats.beta.ppf(0.95, f + 1, n - f))


def test_brentq_takes_scipy_optimize_steps() -> None:
    functions = [
        (lambda x: x**3 - 2 * x - 5, 2.0, 3.0),
        (lambda x: math.cos(x) - x, 0.0, 1.0),
        (lambda x: math.exp(x) - 1e3, 0.0, 10.0),
        (lambda x: x - 0.25, 0.0, 1.0),
        (lambda x: (x - 1e-9) * 1e12, 0.0, 1.0),
    ]
    for f, a, b in functions:
        assert same(dist.brentq(f, a, b), optimize.brentq(f, a, b))
    with pytest.raises(ValueError):
        dist.brentq(lambda x: x + 1.0, 0.0, 1.0)


@pytest.mark.parametrize("method", ["wilson", "exact"])
def test_proportion_intervals_are_binomtest_exactly(method: str) -> None:
    for n in SIZES:
        ks = range(n + 1) if n <= 20 else (0, 1, 2, 3, 4, 5, n // 3, n // 2, n - 5, n - 4, n - 3, n - 2, n - 1, n)
        for k in ks:
            for level in LEVELS:
                want = stats.binomtest(k, n).proportion_ci(confidence_level=level, method=method)
                low, high = dist.binom_proportion_ci(k, n, level, method)
                assert same(low, want.low) and same(high, want.high), (k, n, level, method)


def test_order_statistic_interval_is_quantile_test_exactly() -> None:
    rng = np.random.default_rng(7)
    for n in (*range(1, 30), 59, 60, 100, 1000, 5000):
        x = rng.lognormal(size=n)
        for p in (0.5, 0.9, 0.95, 0.99):
            for level in (0.9, 0.95):
                want = stats.quantile_test(x, q=float(np.quantile(x, p)), p=p).confidence_interval(level)
                low, high = dist.order_statistic_ci(np.sort(x), p, level)
                assert same(low, want.low) and same(high, want.high), (n, p, level)


def test_run_summary_does_not_import_scipy_stats(tmp_path: Path) -> None:
    """A replayed run and its printed summary, in a fresh interpreter: scipy.stats stays unloaded."""
    from harness.testing.fault_server import FaultConfig, FaultServer

    (tmp_path / "suite.yaml").write_text(
        "suite: light\n"
        "models:\n"
        "  - name: fault-server\n"
        "    base_url: ${LIGHT_URL:-http://127.0.0.1:9/v1}\n"
        "    api_key_env: null\n"
        "prompts:\n"
        "  v1:\n"
        "    - {role: user, content: '{{ text }}'}\n"
        "cases:\n" + "".join(f"  - {{id: c{i}, vars: {{text: 'item {i}'}}}}\n" for i in range(12)) +
        "graders:\n"
        "  - {type: contains, value: item}\n",
        encoding="utf-8",
    )
    with FaultServer(FaultConfig()) as server:
        args = ["run", "suite.yaml", "--record", "record", "--run-id", "r1", "--quiet"]
        out, loaded = cli_loading(args, ["scipy.stats"], tmp_path, {**os.environ, "LIGHT_URL": server.base_url})
    assert "pass rate" in out.lower() or "light" in out, out
    assert loaded == {"scipy.stats": False}
