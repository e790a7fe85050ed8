"""Report statistics: exact McNemar, paired bootstrap and permutation, Benjamini-Hochberg (vs hand values, scipy)."""

from __future__ import annotations

import doctest
import math
from fractions import Fraction

import numpy as np
import pytest
from scipy.stats import permutation_test

from fairpriv.report import stats
from fairpriv.report.stats import benjamini_hochberg, mcnemar, paired_bootstrap, paired_permutation


def test_doctests():
    assert doctest.testmod(stats, raise_on_error=False).failed == 0


# --- McNemar -------------------------------------------------------------------------------------------------------
def pairs(a: int, b: int, c: int, d: int) -> tuple[list[bool], list[bool]]:
    """Paired outcomes of the 2x2 table [[a, b], [c, d]] (rows: base true/false, columns: variant true/false)."""
    base = [True] * (a + b) + [False] * (c + d)
    variant = [True] * a + [False] * b + [True] * c + [False] * d
    return base, variant


def exact_p(b: int, c: int) -> float:
    """min(1, 2 P(X <= min(b, c))), X ~ Binomial(b + c, 1/2), in exact rational arithmetic."""
    n = b + c
    tail = sum(Fraction(math.comb(n, k), 2 ** n) for k in range(min(b, c) + 1))
    return float(min(Fraction(1), 2 * tail))


def test_mcnemar_hand_computed_b1_c6():
    r = mcnemar(*pairs(2, 1, 6, 3))  # 2 P(X <= 1 | 7, 1/2) = 2 * 8 / 128
    assert (r.b, r.c, r.n, r.test) == (1, 6, 12, "mcnemar-exact")
    assert r.p_value == pytest.approx(0.125, abs=1e-15)
    assert r.delta == pytest.approx((6 - 1) / 12)
    assert (r.base_value, r.variant_value) == (pytest.approx(3 / 12), pytest.approx(8 / 12))
    assert r.ci_low is None and r.ci_high is None


@pytest.mark.parametrize("table", [
    (101, 121, 59, 33),  # the worked example of Wikipedia's "McNemar's test" (and statsmodels' tests)
    (794, 150, 86, 570),  # Agresti, Categorical Data Analysis: presidential approval, two surveys
    (10, 0, 5, 10),  # one-sided discordance: 2 / 2^5
    (0, 4, 4, 0),  # balanced discordance: p = 1
    (5, 1, 0, 5),
])
def test_mcnemar_matches_exact_binomial_tail(table):
    a, b, c, d = table
    r = mcnemar(*pairs(a, b, c, d))
    assert (r.b, r.c, r.n) == (b, c, a + b + c + d)
    assert r.p_value == pytest.approx(exact_p(b, c), rel=1e-9)
    assert r.delta == pytest.approx((c - b) / (a + b + c + d))


def test_mcnemar_known_values():
    assert mcnemar(*pairs(10, 0, 5, 10)).p_value == pytest.approx(0.0625)
    assert mcnemar(*pairs(0, 4, 4, 0)).p_value == 1.0
    assert mcnemar(*pairs(0, 0, 2, 0)).p_value == 0.5  # 2 * P(X = 0 | 2, 1/2)


def test_mcnemar_without_discordant_pairs_is_one():
    r = mcnemar([True, False, True], [True, False, True])
    assert (r.p_value, r.delta, r.b, r.c) == (1.0, 0.0, 0, 0)


def test_mcnemar_is_symmetric_in_its_arguments():
    base, variant = pairs(3, 2, 9, 4)
    r, s = mcnemar(base, variant), mcnemar(variant, base)
    assert (s.b, s.c, s.p_value, s.delta) == (r.c, r.b, r.p_value, -r.delta)


def test_mcnemar_accepts_zero_one_and_numpy_bools():
    r = mcnemar(np.array([1, 0, 1, 1]), np.array([True, True, False, True]))
    assert (r.b, r.c) == (1, 1)


@pytest.mark.parametrize("base, variant, match", [
    ([True, False], [True], "differ in length"),
    ([], [], "empty"),
    ([True, 2], [True, False], "booleans"),
    ([0.5, 1], [1, 1], "booleans"),
])
def test_mcnemar_rejects_bad_input(base, variant, match):
    with pytest.raises(ValueError, match=match):
        mcnemar(base, variant)


# --- Benjamini-Hochberg --------------------------------------------------------------------------------------------
def test_bh_hand_computed():
    # sorted p: 0.01, 0.03, 0.04, 0.2 -> p * 4 / rank: 0.04, 0.06, 0.0533, 0.2 -> running min from the top
    q = benjamini_hochberg([0.01, 0.04, 0.03, 0.2])
    assert q == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.2])


def test_bh_passes_missing_values_through_without_counting_them():
    q = benjamini_hochberg([None, 0.01, float("nan"), 0.04, 0.03, None, 0.2])
    assert q[0] is None and q[5] is None and math.isnan(q[2])
    assert [q[1], q[3], q[4], q[6]] == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.2])


def test_bh_edge_cases():
    assert benjamini_hochberg([]) == []
    assert benjamini_hochberg([None, None]) == [None, None]
    assert benjamini_hochberg([0.3]) == [pytest.approx(0.3)]
    assert benjamini_hochberg([0.5, 0.9, 1.0]) == pytest.approx([1.0, 1.0, 1.0])  # q capped at 1


def test_bh_rejects_p_values_outside_unit_interval():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        benjamini_hochberg([0.1, 1.5])


# --- paired bootstrap ----------------------------------------------------------------------------------------------
def test_bootstrap_equal_runs_give_zero_delta_and_p_one():
    x = [0.3, 1.2, -0.5, 2.0, 0.7, 0.1]
    r = paired_bootstrap(x, list(x), np.mean)
    assert (r.delta, r.p_value, r.ci_low, r.ci_high, r.n) == (0.0, 1.0, 0.0, 0.0, 6)
    assert (r.n_resamples, r.n_dropped, r.test) == (2000, 0, "paired-bootstrap")


def test_bootstrap_shift_by_one_gives_delta_one_and_tiny_p():
    base = [3, 1, 4, 1, 5, 9, 2, 6, 5, 4]  # mean 4.0 exactly
    r = paired_bootstrap(base, [x + 1 for x in base], np.mean, n_resamples=1000)
    assert r.delta == 1.0
    assert r.p_value == pytest.approx(1 / 1001)  # every resampled delta is 1: the bound 1 / (B + 1)
    assert r.ci_low <= 1.0 <= r.ci_high and r.ci_high - r.ci_low < 1e-12


def test_bootstrap_is_seeded():
    rng = np.random.default_rng(5)
    base, variant = rng.normal(size=40).tolist(), rng.normal(0.3, 1.0, size=40).tolist()
    r1, r2 = (paired_bootstrap(base, variant, np.mean, seed=7) for _ in range(2))
    assert r1 == r2
    assert paired_bootstrap(base, variant, np.mean, seed=8).ci_low != r1.ci_low


def test_bootstrap_ci_brackets_delta_and_agrees_with_p():
    rng = np.random.default_rng(1)
    base = rng.normal(size=60)
    for shift, significant in ((0.0, False), (1.0, True)):
        variant = base + shift + rng.normal(0, 0.5, size=60)
        r = paired_bootstrap(base.tolist(), variant.tolist(), np.mean)
        assert r.ci_low < r.delta < r.ci_high
        assert (r.p_value < 0.05) == significant == (r.ci_low > 0 or r.ci_high < 0)


def test_bootstrap_keeps_pairs_together():
    # variant = base + 1 with huge spread across items: an unpaired bootstrap would give a wide interval
    base = [0.0, 100.0, -50.0, 1000.0, 7.0]
    r = paired_bootstrap(base, [x + 1 for x in base], np.mean)
    assert r.ci_high - r.ci_low < 1e-9


def test_bootstrap_statistic_over_tuples():
    def ratio(items):  # corpus-level: sum of numerators / sum of denominators
        return sum(a for a, _ in items) / sum(b for _, b in items)
    base = [(1.0, 2.0), (3.0, 4.0), (2.0, 2.0)]
    variant = [(2.0, 2.0), (3.0, 4.0), (4.0, 2.0)]
    r = paired_bootstrap(base, variant, ratio, n_resamples=200)
    assert r.delta == pytest.approx(9 / 8 - 6 / 8)
    assert (r.base_value, r.variant_value) == (pytest.approx(0.75), pytest.approx(1.125))


def test_bootstrap_drops_and_counts_undefined_resamples():
    def needs_first(items):  # undefined unless item 0 was drawn
        return np.mean(items) if 0 in items else float("nan")
    x = [0, 1, 2, 3, 4]
    r = paired_bootstrap(x, [v * 2 for v in x], needs_first, n_resamples=1000)
    assert 200 < r.n_dropped < 500  # P(no 0 among 5 draws) = 0.8^5 = 0.33
    assert r.n_resamples + r.n_dropped == 1000 and not math.isnan(r.ci_low)


def test_bootstrap_undefined_observed_statistic_gives_nan_p():
    r = paired_bootstrap([1, 2], [1, 2], lambda items: None, n_resamples=10)
    assert math.isnan(r.p_value) and math.isnan(r.delta) and r.n_dropped == 10


def test_bootstrap_p_value_definition():
    assert stats.bootstrap_p_value(np.array([-1.0, 1.0, 2.0, 3.0])) == 0.5  # 2 * min(1, 3) / 4
    assert stats.bootstrap_p_value(np.array([1.0, 2.0, 3.0])) == 0.25  # bounded below by 1 / (B + 1)
    assert stats.bootstrap_p_value(np.array([0.0, 0.0])) == 1.0
    assert math.isnan(stats.bootstrap_p_value(np.array([])))


@pytest.mark.parametrize("kwargs, match", [
    (dict(base_items=[1, 2], variant_items=[1]), "differ in length"),
    (dict(base_items=[], variant_items=[]), "empty"),
    (dict(base_items=[1], variant_items=[1], n_resamples=0), "n_resamples"),
    (dict(base_items=[1], variant_items=[1], confidence=1.0), "confidence"),
])
def test_bootstrap_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        paired_bootstrap(statistic=np.mean, **kwargs)


# --- paired permutation --------------------------------------------------------------------------------------------
def scipy_paired(base, variant, fn, n_resamples=np.inf):
    result = permutation_test((np.asarray(base, float), np.asarray(variant, float)),
                              lambda x, y, axis: fn(y, axis=axis) - fn(x, axis=axis), vectorized=True,
                              permutation_type="samples", n_resamples=n_resamples, rng=0)
    return result.pvalue, result.statistic


@pytest.mark.parametrize("fn", [np.mean, np.median])
def test_permutation_exact_matches_scipy(fn):
    rng = np.random.default_rng(3)
    base = rng.normal(size=10)
    variant = base + rng.normal(0.4, 1.0, size=10)
    r = paired_permutation(base.tolist(), variant.tolist(), fn, n_permutations=2000)  # 2^10 <= 2000: exact
    p, statistic = scipy_paired(base, variant, fn)
    assert r.test == "paired-permutation-exact" and r.n_resamples == 1024
    assert r.p_value == pytest.approx(p, rel=1e-12)
    assert r.delta == pytest.approx(statistic)


def test_permutation_random_close_to_exact():
    rng = np.random.default_rng(4)
    base = rng.normal(size=14)
    variant = base + rng.normal(0.5, 1.0, size=14)
    r = paired_permutation(base.tolist(), variant.tolist(), np.mean, n_permutations=4000)  # 2^14 > 4000
    p_exact, _ = scipy_paired(base, variant, np.mean)
    assert r.test == "paired-permutation" and r.n_resamples == 4000
    assert r.p_value == pytest.approx(p_exact, abs=4 * math.sqrt(p_exact * (1 - p_exact) / 4000) + 1e-3)


def test_permutation_equal_runs_and_seeding():
    x = [1.0, 2.0, 3.0, 4.5]
    assert paired_permutation(x, x, np.mean).p_value == 1.0
    rng = np.random.default_rng(2)
    base, variant = rng.normal(size=20).tolist(), rng.normal(size=20).tolist()
    assert paired_permutation(base, variant, np.mean, seed=1) == paired_permutation(base, variant, np.mean, seed=1)


def test_permutation_exact_p_is_at_least_two_over_two_to_the_n():
    base = [0.0, 0.0, 0.0, 0.0]
    r = paired_permutation(base, [1.0, 2.0, 3.0, 4.0], np.mean)  # only the identity reaches the observed delta
    assert r.p_value == pytest.approx(2 / 16)
