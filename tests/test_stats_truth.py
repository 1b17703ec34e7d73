"""Every printed number possible (issue 10): intervals inside their support, no MDE that cannot be detected,
verdicts that agree with the interval beside them and mirror each other, exact sign-flip p-values."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from harness.stats.comparison import compare
from harness.stats.gate_rule import Verdict
from harness.stats.paired import MCNEMAR_MIDP, SIGN_FLIP, paired_diff_ci, sign_flip_test, smallest_p
from harness.store import TrialResult


def trials(prompt: str, passes: list[float], repeats: int = 1) -> list[TrialResult]:
    """One trial per (case, repeat): ``passes[i]`` is case i's share of passing repeats."""
    out = []
    for i, share in enumerate(passes):
        wins = round(share * repeats)
        for r in range(repeats):
            ok = r < wins
            out.append(TrialResult(trial_id=f"{prompt}-{i}-{r}", case_id=f"c{i:03d}", prompt=prompt, model="m",
                                   temperature=0.0, repeat=r, passed=ok, score=float(ok)))
    return out


def pair(base: list[float], new: list[float], repeats: int = 1, margin: float = 0.05):  # type: ignore[no-untyped-def]
    records = trials("base", base, repeats) + trials("new", new, repeats)
    (found,) = compare(records, ("m", "base", 0.0), [("m", "new", 0.0)], margin=margin)
    return found


def test_paired_difference_interval_stays_within_minus_one_and_one() -> None:
    # Four cases gained a full point and one lost it: the raw t interval reaches +171 points.
    ci = paired_diff_ci([1, 1, 1, 1, 0], [0, 0, 0, 0, 1])
    assert ci.high is not None and ci.low is not None
    assert -1.0 <= ci.low <= ci.high <= 1.0 and ci.high == 1.0
    assert "clipped to [-1, 1]" in (ci.note or "")
    c = pair([0, 0, 0, 0, 1], [1, 1, 1, 1, 0], repeats=2)
    assert c.ci95.high is not None and c.ci95.high <= 1.0 and c.ci90.high is not None and c.ci90.high <= 1.0


def test_no_mde_when_the_test_cannot_reach_the_level_at_this_size() -> None:
    # Five cases, one sample each: mid-p McNemar cannot go below 1/64 = 0.0156, so BLOCK (0.01) is out of
    # reach whatever happens, and the MDE for BLOCK must say so instead of printing a number.
    assert smallest_p(5, MCNEMAR_MIDP) == pytest.approx(0.015625) and smallest_p(5, SIGN_FLIP) == 0.03125
    c = pair([1, 1, 0, 1, 0], [1, 0, 1, 1, 0])
    assert c.p_method == MCNEMAR_MIDP and c.mde_block is None
    block = c.mde_unreachable["block"]
    assert "smallest possible p is 0.016" in (block.reason or "") and block.cases_needed is not None
    assert block.cases_needed >= 6  # the fewest cases at which mid-p McNemar can go below 0.01
    data = json.loads(json.dumps(c.to_dict()))
    assert data["mde_block"] is None and data["mde_unreachable"]["block"]["cases_needed"] == block.cases_needed
    assert "not detectable at this size (needs ≈" in (c.mde_message or "")


def test_no_mde_larger_than_the_room_below_the_baseline() -> None:
    # A 20% baseline on 10 cases: whatever the suite detects must fit in the 20 points it can drop.
    base = [1, 1] + [0] * 8
    new = [1, 0, 1] + [0] * 7
    c = pair(base, new)
    for level in ("warn", "block"):
        value = getattr(c, f"mde_{level}")
        assert value is None or value <= 0.2
    assert c.mde_warn is None and "larger than the 20.0 pts the baseline can drop" in (
        c.mde_unreachable["warn"].reason or "")
    assert "74.5" not in (c.mde_message or "") and "not detectable at this size" in (c.mde_message or "")


@pytest.mark.parametrize("n", [10, 24])
def test_verdicts_mirror_each_other_and_agree_with_their_interval(n: int) -> None:
    for fixes, regressions in itertools.product(range(0, 7), repeat=2):
        if fixes + regressions > n:
            continue
        base = [0.0] * fixes + [1.0] * regressions + [1.0] * (n - fixes - regressions)
        new = [1.0] * fixes + [0.0] * regressions + [1.0] * (n - fixes - regressions)
        c, mirror = pair(base, new), pair(new, base)
        v, ci = c.gate.verdict, c.ci90
        assert ci.low is not None and ci.high is not None
        if v is Verdict.IMPROVEMENT:
            assert ci.low > 0 and c.p_better < 0.05
            assert mirror.gate.verdict in (Verdict.WARN, Verdict.BLOCK), (fixes, regressions, n)
        elif v in (Verdict.WARN, Verdict.BLOCK):
            assert ci.high <= 0
            assert mirror.gate.verdict is Verdict.IMPROVEMENT, (fixes, regressions, n)
        else:
            assert ci.low <= 0 <= ci.high, (fixes, regressions, n, v, ci)
    # The example: 3 fixes and no regression is not an IMPROVEMENT (p = 0.0625), and its mirror is
    # not a silent INCONCLUSIVE beside an interval wholly below zero.
    three = pair([0, 0, 0] + [1] * 7, [1, 1, 1] + [1] * 7)
    assert three.gate.verdict is not Verdict.IMPROVEMENT and three.p_better == pytest.approx(0.0625)
    mirrored = pair([1, 1, 1] + [1] * 7, [0, 0, 0] + [1] * 7)
    assert mirrored.ci90.high is not None and mirrored.ci90.high >= 0.0


def test_gate_reason_speaks_in_points() -> None:
    c = pair([1] * 30, [1] * 29 + [0])
    assert "pts" in c.gate.reason and "0.05" not in c.gate.reason
    assert "5.0 pts" in c.gate.reason


def test_sign_flip_is_exact_up_to_nineteen_cases() -> None:
    # All 19 differences negative: exactly one sign pattern of 2**19 is as extreme.
    assert sign_flip_test(-np.ones(19)) == pytest.approx(2.0**-19, rel=1e-12)
    rng = np.random.default_rng(7)
    d = rng.normal(-0.1, 0.3, size=12)
    # Brute force over every pattern.
    signs = np.array(list(itertools.product([1.0, -1.0], repeat=12)))
    expected = np.mean((signs * d).sum(axis=1) <= d.sum() + 1e-12)
    assert sign_flip_test(d) == pytest.approx(expected, rel=1e-12)
    assert sign_flip_test(d, alternative="greater") == pytest.approx(
        np.mean((signs * d).sum(axis=1) >= d.sum() - 1e-12), rel=1e-12)


def test_repeats_advice_refused_on_few_cases_and_never_misses_its_target() -> None:
    from harness.stats.power import MIN_CASES_FOR_REPEATS, mde, mde_sentence, required_repeats, sd_diff_components

    # Ten cases with repeats, between-case variance estimated as exactly 0 (the classify example): no advice.
    base = [0.5] * 5 + [0.0] * 5
    new = [1.0, 0.5, 0.5, 0.0, 0.5] + [0.5] * 5
    c = pair(base, new, repeats=2)
    assert c.required_repeats is None
    assert "k = " not in (c.mde_message or "")
    text = mde_sentence(10, 2, 0.3, 0.05, omega2=0.0, within_new=0.25, within_base=0.25)
    assert f"at least {MIN_CASES_FOR_REPEATS} cases" in text and "k = " not in text
    # Wherever advice is given, its projected MDE (the same noncentral-t formula) reaches the target it names.
    for n, omega2, within, delta in itertools.product((20, 50, 200), (0.0, 0.01, 0.03), (0.05, 0.1, 0.2),
                                                       (0.05, 0.1)):  # fmt: skip
        k = required_repeats(delta, n, omega2, within, within)
        if k is None:
            continue
        projected = mde(sd_diff_components(omega2, within, within, k, k), n)
        assert projected is not None and projected <= delta + 1e-12, (n, omega2, within, delta, k)
        if k > 1:  # and it is the smallest such k
            previous = mde(sd_diff_components(omega2, within, within, k - 1, k - 1), n)
            assert previous is not None and previous > delta
