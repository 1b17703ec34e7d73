"""Within-case variance decomposition and the flakiness report (spec §5.2)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.stats.flakiness import variance_components


def test_binary_repeats_by_hand() -> None:
    scores = {"a": [1, 1, 1], "b": [1, 0, 1], "c": [0, 0, 0, 1], "d": [0, 0]}
    vc = variance_components(scores)
    # Pooled within variance: sum of squared deviations / sum(k_i - 1) = (0 + 2/3 + 3/4 + 0) / (2+2+3+1).
    within = (2 / 3 + 3 / 4) / 8
    means = np.array([1, 2 / 3, 1 / 4, 0])
    k_harm = 4 / (1 / 3 + 1 / 3 + 1 / 4 + 1 / 2)
    between = max(0.0, means.var(ddof=1) - within / k_harm)
    assert vc.within_var == pytest.approx(within)
    assert vc.within_sd == pytest.approx(math.sqrt(within))
    assert vc.k_harmonic == pytest.approx(k_harm)
    assert vc.between_var == pytest.approx(between)
    assert vc.icc == pytest.approx(between / (between + within))
    assert vc.noise_share == pytest.approx((within / k_harm) / (between + within / k_harm))
    # Four cases are too few to project the SE to other numbers of repeats (a floor of 0 would be a guess).
    assert vc.se_by_repeats == dict.fromkeys(("1", "3", "5", "10", "inf"))
    twenty = variance_components({f"{case}{i}": v for i in range(5) for case, v in scores.items()}, intervals=False)
    means20 = np.repeat(means, 5)
    between20 = max(0.0, means20.var(ddof=1) - within / k_harm)
    assert twenty.se_by_repeats["5"] == pytest.approx(math.sqrt((between20 + within / 5) / 20))
    assert twenty.se_by_repeats["inf"] == pytest.approx(math.sqrt(between20 / 20))
    assert (vc.k_min, vc.k_max, vc.n_cases) == (2, 4, 4)


def test_flaky_cases_and_flakiest_order() -> None:
    scores = {"steady": [1, 1, 1], "coin": [1, 0, 1, 0], "rare": [0, 0, 0, 1], "never": [0, 0, 0]}
    vc = variance_components(scores)
    assert vc.flaky_cases == 2
    assert vc.flaky_rate.estimate == pytest.approx(0.5) and vc.flaky_rate.n == 4
    assert vc.flaky_rate.low < 0.5 < vc.flaky_rate.high
    assert [c.case_id for c in vc.flakiest] == ["coin", "rare"]
    assert vc.flakiest[0].spread == pytest.approx(0.25)


def test_projected_se_shrinks_with_repeats_down_to_between_floor() -> None:
    rng = np.random.default_rng(0)
    p = rng.beta(2, 2, 200)
    scores = {f"c{i}": rng.binomial(1, pi, 5).tolist() for i, pi in enumerate(p)}
    vc = variance_components(scores)
    ses = [vc.se_by_repeats[key] for key in ("1", "3", "5", "10", "inf")]
    assert all(a > b for a, b in zip(ses, ses[1:], strict=False))  # type: ignore[operator]
    # Truth: between variance of Beta(2,2) is 0.05, within is E[p(1-p)] = 0.2.
    assert vc.between_var == pytest.approx(0.05, abs=0.02)
    assert vc.within_var == pytest.approx(0.2, abs=0.02)


def test_single_repeat_leaves_flakiness_unobserved() -> None:
    vc = variance_components({"a": [1.0], "b": [0.0], "c": [1.0]})
    assert vc.within_var is None and vc.icc is None and vc.se_by_repeats["3"] is None
    assert vc.flaky_cases == 0 and vc.flaky_rate.n == 0 and not vc.flaky_rate.defined
    with pytest.raises(ValueError):
        variance_components({"a": []})


def test_continuous_scores_and_serialisation() -> None:
    vc = variance_components({"a": [0.5, 0.5], "b": [0.2, 0.6], "c": [0.9, 0.7]})
    assert vc.within_var == pytest.approx((0.08 + 0.02) / 3)
    assert vc.flaky_cases == 2
    data = vc.to_dict()
    assert set(data["se_by_repeats"]) == {"1", "3", "5", "10", "inf"}
    assert data["flakiest"][0]["case_id"] == "b"


def test_within_case_sd_stays_on_the_pass_fail_scale() -> None:
    # Every case split one pass / one fail: the k/(k-1)-corrected pooled variance is 0.5, impossible for a
    # pass/fail outcome (at most 0.25); the sd shown is at most 0.5.
    split = {f"c{i}": [1.0, 0.0] for i in range(30)}
    vc = variance_components(split, seed=1)
    assert vc.within_var == 0.25 and vc.within_sd == 0.5
    assert vc.within_sd_interval is not None and vc.within_sd_interval.high is not None
    assert vc.within_sd_interval.high <= 0.5


def test_too_few_cases_get_no_interval_and_no_projection() -> None:
    ten = {f"c{i}": [1.0, 0.0] if i % 2 else [1.0, 1.0] for i in range(10)}
    vc = variance_components(ten, seed=1)
    assert vc.icc_interval is not None and not vc.icc_interval.defined
    assert "too few cases" in (vc.icc_interval.note or "")
    assert vc.within_sd_interval is not None and not vc.within_sd_interval.defined
    assert all(value is None for value in vc.se_by_repeats.values())  # no "SE at k=inf 0.0%" from 10 cases
    assert vc.to_dict()["icc_interval"]["low"] is None


def test_icc_and_within_sd_intervals_from_enough_cases() -> None:
    rng = np.random.default_rng(4)
    p = rng.beta(1.0, 1.0, size=80)
    scores = {f"c{i}": list(rng.binomial(1, p[i], size=4).astype(float)) for i in range(80)}
    a, b = variance_components(scores, seed=9), variance_components(scores, seed=9)
    assert a == b  # seeded
    icc, sd = a.icc_interval, a.within_sd_interval
    assert icc is not None and icc.defined and sd is not None and sd.defined
    assert icc.low <= a.icc <= icc.high and icc.low >= 0.0 and icc.high <= 1.0  # type: ignore[operator]
    assert sd.low <= a.within_sd <= sd.high <= 0.5  # type: ignore[operator]
    assert a.se_by_repeats["inf"] is not None and a.se_by_repeats["inf"] > 0
