"""The gate rule's classification (spec §8.3)."""

from __future__ import annotations

import json

import pytest

from harness.stats.gate_rule import Verdict, gate_verdict


@pytest.mark.parametrize(
    ("p_holm", "low", "high", "verdict"),
    [
        (0.005, -0.09, -0.02, Verdict.BLOCK),
        (0.03, -0.04, -0.001, Verdict.WARN),
        (0.03, -0.09, -0.001, Verdict.WARN),
        (0.6, 0.01, 0.08, Verdict.IMPROVEMENT),
        (0.4, -0.03, 0.05, Verdict.NON_INFERIOR),
        (0.4, -0.05, 0.05, Verdict.NON_INFERIOR),
        (0.2, -0.12, 0.04, Verdict.INCONCLUSIVE),
    ],
)
def test_default_rule(p_holm: float, low: float, high: float, verdict: Verdict) -> None:
    decision = gate_verdict(p_holm, low, high, margin=0.05)
    assert decision.verdict is verdict
    assert decision.fails is (verdict is Verdict.BLOCK)


def test_block_wins_over_an_interval_inside_the_margin() -> None:
    # A small but highly significant drop is still a regression.
    assert gate_verdict(0.001, -0.02, -0.005).verdict is Verdict.BLOCK


def test_lower_is_better_metrics_flip_the_interval() -> None:
    # Cost went down by 0.02-0.08: an improvement for a lower-is-better metric.
    cheaper = gate_verdict(0.9, -0.08, -0.02, 0.05, higher_is_better=False)
    assert cheaper.verdict is Verdict.IMPROVEMENT and (cheaper.low, cheaper.high) == (0.02, 0.08)
    pricier = gate_verdict(0.3, 0.01, 0.2, 0.05, higher_is_better=False)
    assert pricier.verdict is Verdict.INCONCLUSIVE


def test_strict_mode_blocks_unless_non_inferiority_is_shown() -> None:
    assert gate_verdict(0.2, -0.12, 0.04, strict=True).verdict is Verdict.BLOCK
    assert gate_verdict(0.4, -0.03, 0.05, strict=True).verdict is Verdict.NON_INFERIOR
    assert gate_verdict(0.4, None, None, strict=True).verdict is Verdict.BLOCK
    small = gate_verdict(0.2, -0.12, 0.04, strict=True, n_cases=50, required_cases=600)
    assert "needs about 600 cases" in small.reason and "has 50" in small.reason
    big_enough = gate_verdict(0.2, -0.12, 0.04, strict=True, n_cases=800, required_cases=600)
    assert "needs about" not in big_enough.reason


def test_missing_interval_is_inconclusive_or_warn() -> None:
    assert gate_verdict(0.5, None, None).verdict is Verdict.INCONCLUSIVE
    assert gate_verdict(0.02, None, None).verdict is Verdict.WARN


def test_decision_serialises() -> None:
    data = json.loads(json.dumps(gate_verdict(0.03, -0.04, -0.001).to_dict()))
    assert data["verdict"] == "WARN" and data["low"] == -0.04 and data["strict"] is False
    with pytest.raises(ValueError):
        gate_verdict(0.5, -0.1, 0.1, margin=-0.01)
