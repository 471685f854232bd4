"""The power law L = a·C^(−b) of a scaling curve (Kaplan et al. 2020), fitted as a pure function.

A least-squares line through (log C, log L): log L = log a − b·log C. The exponent's interval is the slope's
t interval (n − 2 degrees of freedom). A fit that cannot support a number says so instead of giving one: fewer
than `min_points` points, a non-positive value (no logarithm), or an interval for b that reaches zero (the
points do not show the loss falling with C at all).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy import stats

MIN_POINTS = 3  # a line through two points always fits: no residual left to judge it by


@dataclass(frozen=True)
class PowerLaw:
    a: Optional[float]
    b: Optional[float]  # the exponent: L falls as C^(−b)
    b_low: Optional[float]
    b_high: Optional[float]
    n: int
    refused: Optional[str] = None  # why no exponent is given; None when it is

    def text(self) -> str:
        if self.refused:
            return f"no fit ({self.refused})"
        return f"L = {self.a:.3g}·C^(−{self.b:.3f}), b in [{self.b_low:.3f}, {self.b_high:.3f}] (n = {self.n})"


def fit_power_law(c: Sequence[float], loss: Sequence[float], level: float = 0.95,
                  min_points: int = MIN_POINTS) -> PowerLaw:
    """L = a·C^(−b) through the points (c, loss), with b's `level` interval, or the reason it is refused."""
    x, y = np.asarray(c, dtype=float), np.asarray(loss, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = len(x)
    if n < min_points:
        return PowerLaw(None, None, None, None, n, f"{n} points, at least {min_points} needed")
    if (x <= 0).any() or (y <= 0).any():
        return PowerLaw(None, None, None, None, n, "a value at or below 0 has no logarithm")
    if np.ptp(np.log(x)) == 0:
        return PowerLaw(None, None, None, None, n, "every point at one compute")
    fit = stats.linregress(np.log(x), np.log(y))
    b = -fit.slope
    half = stats.t.ppf(0.5 + level / 2, n - 2) * fit.stderr
    low, high = b - half, b + half
    if low <= 0 <= high:
        return PowerLaw(None, None, low, high, n, f"the exponent's {level:.0%} interval [{low:.3f}, {high:.3f}] "
                                                   "includes 0: no power law shown")
    return PowerLaw(math.exp(fit.intercept), b, low, high, n)
