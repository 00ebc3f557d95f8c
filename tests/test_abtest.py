"""A/B statistics: Wilson intervals and the pooled z-test checked against scipy and published
values; the enough-data thresholds; the verdict sentence."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from outbound.abtest import (
    compare,
    format_p,
    two_proportion_z_test,
    two_sided_p,
    wilson_interval,
)

CASES = [(12, 100, 6, 98), (45, 500, 60, 510), (3, 40, 9, 41), (1, 1000, 0, 1000), (30, 30, 1, 30)]


def scipy_wilson(successes: int, n: int, confidence: float) -> tuple[float, float]:
    """Wilson's interval written from scipy's normal quantile (as statsmodels'
    proportion_confint(method="wilson") computes it)."""
    z = stats.norm.ppf(0.5 + confidence / 2)
    p = successes / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    return centre - half, centre + half


@pytest.mark.parametrize(("successes", "n"), [(0, 10), (1, 10), (5, 10), (10, 10), (81, 263),
                                              (3, 1000)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_wilson_matches_the_formula_with_scipys_quantile(successes, n, confidence):
    assert wilson_interval(successes, n, confidence) == pytest.approx(
        scipy_wilson(successes, n, confidence), abs=1e-12)


def test_wilson_matches_scipy_binomtest_and_a_published_value():
    for successes, n in [(7, 50), (0, 25), (40, 40)]:
        expected = stats.binomtest(successes, n).proportion_ci(0.95, method="wilson")
        assert wilson_interval(successes, n) == pytest.approx(
            (expected.low, expected.high), abs=1e-9)
    # Newcombe (1998), Statistics in Medicine 17, table I: 81/263 -> 0.2553 to 0.3662
    low, high = wilson_interval(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)


def test_wilson_stays_within_zero_and_one_and_is_uninformative_for_nobody():
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)
    with pytest.raises(ValueError):
        wilson_interval(1, 10, confidence=1.0)


@pytest.mark.parametrize(("s_a", "n_a", "s_b", "n_b"), CASES)
def test_z_test_matches_scipys_chi_square_and_normal_tail(s_a, n_a, s_b, n_b):
    z, p = two_proportion_z_test(s_a, n_a, s_b, n_b)
    table = [[s_a, n_a - s_a], [s_b, n_b - s_b]]
    chi2, chi_p, _, _ = stats.chi2_contingency(table, correction=False)
    assert z**2 == pytest.approx(chi2, rel=1e-9)
    assert p == pytest.approx(chi_p, rel=1e-9)
    assert p == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9)
    assert math.copysign(1, z) == math.copysign(1, s_b / n_b - s_a / n_a)


def test_z_test_known_value():
    # 6/98 against 12/100: pooled 18/198, se = sqrt(18/198 * 180/198 * (1/98 + 1/100)) = 0.04086,
    # z = (0.12 - 0.061224) / 0.04086 = 1.4384, two-sided p = 0.1503
    z, p = two_proportion_z_test(6, 98, 12, 100)
    assert z == pytest.approx(1.4384, abs=1e-4)
    assert p == pytest.approx(0.1503, abs=1e-4)


@pytest.mark.parametrize("counts", [(0, 50, 0, 60), (50, 50, 60, 60), (3, 10, 0, 0), (0, 0, 0, 0)])
def test_z_test_without_variance_is_no_evidence(counts):
    assert two_proportion_z_test(*counts) == (0.0, 1.0)


def test_two_sided_p_uses_the_normal_tail():
    assert two_sided_p(1.959963984540054) == pytest.approx(0.05)
    assert two_sided_p(-3.0) == pytest.approx(2 * stats.norm.sf(3.0))


def test_small_arms_are_not_enough_data_and_the_verdict_says_which():
    result = compare({"A": (4, 40), "B": (3, 12)})
    assert not result.enough_data
    assert result.verdict == "Not enough data: B has 12 customers (need 30 per variant)."
    assert result.variants["B"].rate == 0.25
    assert result.p is not None  # the test still ran
    assert not any(c.significant for c in result.comparisons)


def test_too_few_conversions_in_total_is_not_enough_data():
    result = compare({"A": (1, 40), "B": (2, 45)})
    assert not result.enough_data
    assert result.verdict == "Not enough data: only 3 conversions in total (need 5)."
    assert "(need 30 per variant)" in compare({"A": (0, 3), "B": (1, 1)}).verdict
    assert "only 1 non-conversion in total" in compare({"A": (40, 40), "B": (44, 45)}).verdict


def test_thresholds_are_inclusive_and_adjustable():
    assert compare({"A": (3, 30), "B": (2, 30)}).enough_data  # 30 each, 5 conversions
    assert not compare({"A": (3, 30), "B": (2, 29)}).enough_data
    assert compare({"A": (3, 10), "B": (2, 10)}, min_per_arm=10).enough_data
    assert not compare({"A": (3, 30), "B": (2, 30)}, min_events=6).enough_data


def test_a_clear_winner_is_named_with_rates_and_p():
    result = compare({"A": (30, 500), "B": (60, 500)})
    assert result.enough_data
    assert result.z > 0
    assert result.verdict == (
        f"B converts better than A (12.0% vs 6.0%, {format_p(result.p)}).")
    assert result.comparisons[0].significant
    loser = compare({"A": (60, 500), "B": (30, 500)})
    assert loser.verdict.startswith("A converts better than B (12.0% vs 6.0%")


def test_no_significant_difference_says_so():
    result = compare({"A": (41, 500), "B": (45, 500)})
    assert result.enough_data
    assert result.verdict.startswith("No significant difference between B and A (9.0% vs 8.2%, ")
    assert f"p = {result.p:.2g})" in result.verdict


def test_p_formatting():
    assert format_p(0.0312) == "p = 0.031"
    assert format_p(0.41) == "p = 0.41"
    assert format_p(0.0004) == "p < 0.001"


def test_three_variants_compare_with_the_control_and_bonferroni():
    # B against A alone gives p ~ 0.04; two comparisons double it past 0.05.
    z, p = two_proportion_z_test(40, 500, 59, 500)
    assert 0.025 < p < 0.05
    result = compare({"A": (40, 500), "B": (59, 500), "C": (90, 500)})
    assert [(c.control, c.variant) for c in result.comparisons] == [("A", "B"), ("A", "C")]
    b, c = result.comparisons
    assert b.p == pytest.approx(p)
    assert b.p_adjusted == pytest.approx(2 * p)
    assert not b.significant
    assert c.significant
    assert "No significant difference between B and A" in result.verdict
    assert "C converts better than A (18.0% vs 8.0%" in result.verdict
    assert "Bonferroni-adjusted for 2 comparisons" in result.verdict
    assert result.p == c.p  # the headline numbers are the most significant comparison


def test_one_variant_has_nothing_to_compare():
    result = compare({"A": (10, 100)})
    assert not result.enough_data
    assert result.verdict == "Only one variant (A): nothing to compare."
    assert result.z is None and result.p is None
    assert compare({}).verdict == "No variants: nothing to compare."
