"""The scaling-law fit L = a·C^(−b): recovers a known exponent from noisy points, refuses what it cannot
support."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ablate.report.powerlaw import fit_power_law


def test_exact_points_give_the_law_back():
    # L = 2·C^(−1/2) at C = 1, 4, 16: L = 2, 1, 0.5
    fit = fit_power_law([1, 4, 16], [2, 1, 0.5])
    assert fit.refused is None
    assert math.isclose(fit.a, 2) and math.isclose(fit.b, 0.5)


def test_recovers_kaplans_compute_exponent_from_noisy_points():
    # Kaplan et al. 2020, eq. 1.3: L(C_min) = (C_c / C_min)^0.050 with C_c = 3.1e8 PF-days; 12 budgets over
    # 8 decades, each loss off by 1% multiplicative noise
    rng = np.random.default_rng(0)
    c = np.logspace(-8, 0, 12)
    loss = (3.1e8 / c) ** 0.050 * np.exp(rng.normal(0, 0.01, c.size))
    fit = fit_power_law(c, loss)
    assert fit.refused is None
    assert fit.b_low < 0.050 < fit.b_high and abs(fit.b - 0.050) < 0.005
    assert fit.b_high - fit.b_low < 0.01
    assert math.isclose(fit.a, 3.1e8 ** 0.050, rel_tol=0.1)


@pytest.mark.parametrize("c,loss,reason", [
    ([1e6, 1e7], [3.0, 2.0], "2 points, at least 3 needed"),
    ([1e6, 1e7, 0], [3.0, 2.0, 1.0], "no logarithm"),
    ([1e6, 1e6, 1e6], [3.0, 2.0, 1.0], "one compute"),
])
def test_refuses_too_few_or_unusable_points(c, loss, reason):
    fit = fit_power_law(c, loss)
    assert fit.b is None and reason in fit.refused and "no fit" in fit.text()


def test_refuses_an_exponent_whose_interval_includes_zero():
    # flat loss with 5% noise: no power law to find
    rng = np.random.default_rng(1)
    c = np.logspace(6, 9, 6)
    fit = fit_power_law(c, 2.0 * np.exp(rng.normal(0, 0.05, c.size)))
    assert fit.b is None and "includes 0" in fit.refused
    assert fit.b_low < 0 < fit.b_high
