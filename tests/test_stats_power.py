"""Power, MDE and sample-size formulas against the spec's tables (§8.4, §10 G)."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from harness.stats.power import (
    mde,
    mde_normal,
    mde_sentence,
    omega2_from_run,
    power_paired,
    required_cases,
    required_cases_normal,
    required_repeats,
    sd_diff_binary,
    sd_diff_components,
)

# §10 G: pass rate p, correlation phi, sd(d), MDE in points at n = 25..1000, cases for a 5-point drop.
TABLE_G = [
    (0.7, 0.0, 0.648, (33.2, 23.1, 16.2, 11.4, 7.2, 5.1), 1041),
    (0.7, 0.3, 0.542, (27.8, 19.3, 13.6, 9.6, 6.0, 4.3), 729),
    (0.7, 0.6, 0.410, (21.0, 14.6, 10.3, 7.2, 4.6, 3.2), 417),
    (0.9, 0.0, 0.424, (21.7, 15.1, 10.6, 7.5, 4.7, 3.3), 447),
    (0.9, 0.3, 0.355, (18.2, 12.7, 8.9, 6.3, 4.0, 2.8), 313),
    (0.9, 0.6, 0.268, (13.7, 9.6, 6.7, 4.7, 3.0, 2.1), 180),
]
SIZES = (25, 50, 100, 200, 500, 1000)


@pytest.mark.parametrize(("p", "phi", "sd", "mdes", "cases"), TABLE_G)
def test_mde_and_required_cases_match_table_g(
    p: float, phi: float, sd: float, mdes: tuple[float, ...], cases: int
) -> None:
    sd_d = sd_diff_binary(p, p, phi)
    assert sd_d == pytest.approx(sd, abs=5e-4)
    for n, expected in zip(SIZES, mdes, strict=True):
        found = mde(sd_d, n)
        assert found is not None and 100 * found == pytest.approx(expected, abs=0.05)
    assert required_cases(0.05, sd_d) == cases


def test_mde_is_where_power_reaches_target() -> None:
    found = mde(0.4, 60, alpha=0.01, power=0.9)
    assert found is not None
    assert power_paired(found, 0.4, 60, alpha=0.01) == pytest.approx(0.9, abs=1e-9)
    assert found > mde_normal(0.4, 60, alpha=0.01, power=0.9)  # t is less powerful than z at finite n
    assert mde(0.4, 1) is None and mde(0.0, 30) == 0.0


def test_required_cases_is_the_smallest_sufficient_n() -> None:
    n = required_cases(0.04, 0.3, alpha=0.01)
    assert power_paired(0.04, 0.3, n, alpha=0.01) >= 0.8 > power_paired(0.04, 0.3, n - 1, alpha=0.01)
    assert required_cases_normal(0.04, 0.3, alpha=0.01) == math.ceil(
        ((stats.norm.ppf(0.99) + stats.norm.ppf(0.8)) * 0.3 / 0.04) ** 2
    )
    with pytest.raises(ValueError):
        required_cases(0.0, 0.3)


def test_power_formula_noncentral_t() -> None:
    expected = stats.nct.sf(stats.t.ppf(0.95, 199), 199, 0.05 * math.sqrt(200) / 0.42)
    assert power_paired(0.05, 0.42, 200) == pytest.approx(expected)
    two = power_paired(0.05, 0.42, 200, two_sided=True)
    assert two < power_paired(0.05, 0.42, 200)


def test_block_tier_costs_about_27_percent_more_mde() -> None:
    assert mde_normal(0.3, 200, 0.01) / mde_normal(0.3, 200, 0.05) == pytest.approx(3.168 / 2.487, abs=1e-3)


def test_required_repeats_spec_example() -> None:
    # §8.4: n = 200, delta = 5 points, omega^2 = 0.029, within variance 0.073 per variant => k = 3.
    assert required_repeats(0.05, 200, 0.029, 0.073, 0.073) == 3
    # When the between-case variance alone exceeds the budget no number of repeats helps.
    assert required_repeats(0.05, 50, 0.029, 0.073, 0.073) is None
    assert required_repeats(0.2, 200, 0.029, 0.073, 0.073) == 1


def test_variance_components_of_a_difference() -> None:
    assert sd_diff_components(0.029, 0.073, 0.073) == pytest.approx(math.sqrt(0.175))
    assert sd_diff_components(0.029, 0.073, 0.073, 5, 5) == pytest.approx(math.sqrt(0.029 + 0.146 / 5))
    assert omega2_from_run(0.1, 0.08, 0.06, 2, 2) == pytest.approx(0.03)
    assert omega2_from_run(0.01, 0.08, 0.06, 2, 2) == 0.0
    # Unpaired worst case: phi = 0 adds the variances.
    assert sd_diff_binary(0.8, 0.6, 0.0) == pytest.approx(math.sqrt(0.16 + 0.24))


def test_mde_sentence_for_the_spec_example() -> None:
    sd_d = sd_diff_components(0.029, 0.073, 0.073)
    text = mde_sentence(200, 1, sd_d, 0.05, omega2=0.029, within_new=0.073, within_base=0.073)
    assert text.startswith("With 200 cases × 1 repeat (sd of per-case differences 0.42), this suite detects")
    assert "a drop of 7.4 points with 80% power at the WARN level (9.4 points at BLOCK)" in text
    assert (
        f"To detect 5 points: {required_cases(0.05, sd_d)} cases ({required_cases(0.05, sd_d, 0.01)} for"
        in text
    )
    assert "keep 200 cases and run k = 3 repeats per case" in text


def test_mde_sentence_other_branches() -> None:
    assert "That is enough to detect 5 points" in mde_sentence(2000, 3, 0.2)
    assert mde_sentence(100, 1, 0.4).endswith("for BLOCK).")
    assert "add cases" in mde_sentence(50, 1, 0.42, omega2=0.029, within_new=0.073, within_base=0.073)
    assert "not detectable at this size" in mde_sentence(1, 1, 0.4)
