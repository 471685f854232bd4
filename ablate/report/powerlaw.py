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


def slope(c: Sequence[float], loss: Sequence[float], min_points: int = MIN_POINTS) -> Optional[tuple[float, float]]:
    """(a, b) of the least-squares L = a·C^(−b) through the points, with no judgement of b (one seed's fit, to be
    judged across seeds); None with fewer than min_points usable points or a single compute."""
    x, y = np.asarray(c, dtype=float), np.asarray(loss, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    x, y = x[keep], y[keep]
    if len(x) < min_points or np.ptp(np.log(x)) == 0:
        return None
    fit = stats.linregress(np.log(x), np.log(y))
    return math.exp(fit.intercept), -fit.slope


@dataclass(frozen=True)
class SeedFit:
    """An exponent fitted per seed, with a t interval over the seeds (n − 1 degrees of freedom)."""

    a: Optional[float]  # geometric mean of the seeds' prefactors (for drawing the law)
    b: Optional[float]  # mean of the seeds' exponents
    b_low: Optional[float]
    b_high: Optional[float]
    seeds: int  # seeds with a fit
    refused: Optional[str] = None

    def text(self) -> str:
        if self.refused:
            return f"no fit ({self.refused})"
        return (f"b = {self.b:.3f}, {self.seeds}-seed 95% t interval [{self.b_low:.3f}, {self.b_high:.3f}]")


def fit_over_seeds(points: dict[object, tuple[Sequence[float], Sequence[float]]], level: float = 0.95,
                   min_points: int = MIN_POINTS) -> SeedFit:
    """L = a·C^(−b) fitted to each seed's points {seed: (C, L)}, then b's t interval over the seeds: the spread
    a reader would see rerunning the experiment with other seeds (a fit through pooled points would treat the
    seeds' shared curves as independent evidence). Refused with fewer than 2 seeds with a fit, or an interval
    that includes 0."""
    fits = [f for f in (slope(c, loss, min_points) for c, loss in points.values()) if f is not None]
    most = max((len(c) for c, _ in points.values()), default=0)
    if len(fits) < 2:
        why = (f"at most {most} points a seed, at least {min_points} needed" if most < min_points else
               f"{len(fits)} seed{'s' * (len(fits) != 1)} with a fit, at least 2 needed for an interval")
        return SeedFit(None, None, None, None, len(fits), why)
    bs = np.array([b for _, b in fits])
    mean, sd = float(bs.mean()), float(bs.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, len(bs) - 1)) * sd / math.sqrt(len(bs))
    low, high = mean - half, mean + half
    if low <= 0 <= high:
        return SeedFit(None, None, low, high, len(fits), f"the exponent's {level:.0%} interval over {len(fits)} "
                                                         f"seeds [{low:.3f}, {high:.3f}] includes 0")
    a = math.exp(float(np.mean([math.log(a) for a, _ in fits])))
    return SeedFit(a, mean, low, high, len(fits))
