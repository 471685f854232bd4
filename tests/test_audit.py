"""A report audits its experiment: corrected statistics (ablate.report.stats), named confounds
(ablate.report.confounds) and declared hypotheses with computed verdicts (ablate.report.verdicts)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ablate.report import stats


# ------------------------------------------------------------------ statistics, each against a worked example
def test_holm_matches_the_textbook_example_and_statsmodels():
    # Holm's procedure on p = (0.01, 0.04, 0.03, 0.005): sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 gives
    # 0.02, 0.03, 0.06, 0.04, made monotone: 0.02, 0.03, 0.06, 0.06 (statsmodels multipletests(method="holm")).
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # statsmodels 0.14 multipletests([...], method="holm")[1], written out
    got = stats.holm([0.0017, 0.2, 0.03, 0.04, 0.5, 0.011])
    assert got == pytest.approx([0.0102, 0.4, 0.12, 0.12, 0.5, 0.055])


def test_holm_leaves_nan_out_of_the_family_and_caps_at_one():
    got = stats.holm([0.01, math.nan, 0.6, 0.7])  # a family of 3: 0.03, 2 * 0.6 capped, then monotone
    assert got[0] == pytest.approx(0.03) and math.isnan(got[1]) and got[2] == 1.0 and got[3] == 1.0
    assert stats.holm([]).size == 0


def test_welch_interval_equals_scipys():
    from scipy.stats import ttest_ind

    a, b = [1.0, 2.0, 3.5], [0.5, 0.7, 0.2, 0.9]
    d, lo, hi = stats.welch_ci(a, b)
    ci = ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert d == pytest.approx(np.mean(a) - np.mean(b))
    assert (lo, hi) == pytest.approx((ci.low, ci.high))
    assert stats.welch_ci([1.0, 1.0], [0.5, 0.5]) == (0.5, 0.5, 0.5)  # no spread: the point itself
    assert math.isnan(stats.welch_ci([1.0], [0.5, 0.7])[1])  # one seed: no interval


def test_intervals_of_bounded_metrics_are_clipped_to_the_bounds():
    assert stats.metric_bounds("test/seq_acc") == (0.0, 1.0)
    assert stats.metric_bounds("test/bleu") == (0.0, 100.0)
    assert stats.metric_bounds("test/loss") == (0.0, math.inf)
    # baseline at 0.98: a row's Δ cannot exceed +0.02 nor go below -0.98
    assert stats.delta_bounds("test/seq_acc", 0.98) == pytest.approx((-0.98, 0.02))
    assert stats.clip_interval(-0.05, 0.04, (-0.98, 0.02)) == (-0.05, 0.02, True)
    assert stats.clip_interval(-0.05, 0.01, (-0.98, 0.02)) == (-0.05, 0.01, False)
    assert stats.clip_interval(-1.5, 0.01, (-0.98, 0.02)) == (-0.98, 0.01, True)


def test_seeds_for_power_matches_cohens_table_and_statsmodels():
    # Cohen (1988), two-sample t-test, alpha 0.05 two-sided, power 0.8: d = 0.5 needs 64 a group, d = 0.8 26
    # (statsmodels TTestIndPower().solve_power: 63.77, 25.52, and 5.09 for d = 2)
    assert stats.seeds_for_power(0.5, 1.0) == 64
    assert stats.seeds_for_power(-0.8, 1.0) == 26
    assert stats.seeds_for_power(0.02, 0.01) == 6
    assert stats.seeds_for_power(0.1, 0.0) == "any"
    assert stats.seeds_for_power(0.0, 0.1) == "never"
    assert stats.pooled_sd([1.0, 2.0, 3.0], [2.0, 4.0]) == pytest.approx(math.sqrt((2 * 1.0 + 1 * 2.0) / 3))


def test_fisher_exact_on_reached_counts():
    # Fisher's tea-tasting table [[3, 1], [1, 3]]: two-sided p = 34/70 = 0.4857
    assert stats.fisher_reached(3, 4, 1, 4) == pytest.approx(34 / 70)
    # the heads report's 0 of 3 against 3 of 3: p = 0.1, which three seeds can never get below
    assert stats.fisher_reached(0, 3, 3, 3) == pytest.approx(0.1)
    assert math.isnan(stats.fisher_reached(0, 0, 3, 3))


def test_logrank_censors_seeds_that_never_reached():
    # by hand: a reaches at 1, 2; b at 3, 4. O - E for a = 2 - (2/4 + 1/3) = 7/6, V = 1/4 + 2/9,
    # chi² = (7/6)² / V = 2.882, p = 0.0896
    p, o_e = stats.logrank_steps([1, 2], [True, True], [3, 4], [True, True])
    assert o_e == pytest.approx(7 / 6)
    assert p == pytest.approx(0.08955507, abs=1e-7)
    # a's seed stopped at 4 without reaching leaves the risk set there: O - E = 2 - (1/2 + 2/5 + 2/4 + 1/2) = 0.1;
    # counted as if it had reached at its cap, the test would see O - E = 13/30
    p_cens, o_e = stats.logrank_steps([1, 4, 5], [True, False, True], [2, 3, 6], [True, True, True])
    p_as_time, o_e_as_time = stats.logrank_steps([1, 4, 5], [True, True, True], [2, 3, 6], [True, True, True])
    assert o_e == pytest.approx(0.1) and o_e_as_time == pytest.approx(13 / 30)
    assert p_cens == pytest.approx(0.91994438, abs=1e-7) and p_as_time == pytest.approx(0.69389252, abs=1e-7)
    assert math.isnan(stats.logrank_steps([5], [False], [5], [False])[0])  # nobody reached: no test
