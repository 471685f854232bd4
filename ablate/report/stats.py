"""The statistics a report's verdicts rest on, as small pure functions (numbers in, numbers out).

- holm: Holm's step-down adjustment of a family of p-values (Holm 1979).
- welch_ci: the difference of two means with its Welch confidence interval (the interval of the table's t-test).
- clip_interval / delta_bounds: an interval of a bounded metric kept within what the metric can take.
- seeds_for_power: seeds per row a two-sample t-test needs to find the observed Δ with 80% power.
- fisher_reached: Fisher's exact test of "k of n reached the target" between two rows.
- logrank_steps: the log-rank test of steps-to-target with seeds that never reached it censored at their last step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional, Union

import numpy as np

ALPHA = 0.05
POWER = 0.8


def _finite(x: Sequence[float]) -> np.ndarray:
    a = np.asarray(x, float)
    return a[~np.isnan(a)]


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-adjusted p-values, in the input's order; NaN entries are not in the family and stay NaN.

    Sorted ascending, the i-th smallest of m (i from 0) becomes max over j <= i of (m - j) * p_(j), capped at 1:
    rejecting where the adjusted p < alpha is Holm's sequentially rejective test at family-wise level alpha.
    """
    p = np.asarray(pvalues, float)
    out = np.full(p.shape, math.nan)
    idx = np.flatnonzero(~np.isnan(p))
    m = len(idx)
    if not m:
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def welch_ci(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean(a) - mean(b), low, high): Welch's interval (unequal variances, Welch–Satterthwaite degrees of
    freedom), the interval of the same test as the table's p-value. NaN bounds with fewer than 2 values a side;
    with no spread on either side the interval is the point itself."""
    from scipy.stats import t

    a, b = _finite(a), _finite(b)
    if not len(a) or not len(b):
        return math.nan, math.nan, math.nan
    d = float(a.mean() - b.mean())
    if len(a) < 2 or len(b) < 2:
        return d, math.nan, math.nan
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return d, d, d
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(t.ppf(0.5 + level / 2, dof)) * se
    return d, d - half, d + half


def metric_bounds(metric: str) -> tuple[float, float]:
    """The values a metric can take: accuracies in [0, 1], BLEU and chrF in [0, 100], losses and counts >= 0;
    (-inf, inf) for a metric this does not know."""
    last = metric.split("/")[-1].lower()
    if last in ("bleu", "chrf"):
        return 0.0, 100.0
    if last.endswith("acc") or last in ("reached", "exact_match"):
        return 0.0, 1.0
    if any(w in last for w in ("loss", "ppl", "perplexity", "steps", "time", "flops")):
        return 0.0, math.inf
    return -math.inf, math.inf


def delta_bounds(metric: str, base_mean: float) -> tuple[float, float]:
    """Where Δ = row mean - baseline mean can lie when the row's mean stays within the metric's bounds."""
    lo, hi = metric_bounds(metric)
    return lo - base_mean, hi - base_mean


def clip_interval(low: float, high: float, bounds: tuple[float, float]) -> tuple[float, float, bool]:
    """(low, high) within bounds, and whether either end moved (NaN ends stay NaN)."""
    lo, hi = bounds
    new_low = low if math.isnan(low) else max(low, lo)
    new_high = high if math.isnan(high) else min(high, hi)
    return new_low, new_high, (new_low != low and not math.isnan(low)) or (new_high != high and not math.isnan(high))


def pooled_sd(a: Sequence[float], b: Sequence[float]) -> float:
    """The pooled standard deviation sqrt(((n_a - 1) s_a² + (n_b - 1) s_b²) / (n_a + n_b - 2)); NaN below 2+2."""
    a, b = _finite(a), _finite(b)
    if len(a) < 2 or len(b) < 2:
        return math.nan
    return math.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2))


def seeds_for_power(delta: float, sd: float, alpha: float = ALPHA, power: float = POWER,
                    most: int = 100_000) -> Union[int, str]:
    """Seeds per row a two-sided two-sample t-test at level alpha needs to detect delta with the given power,
    the spread being sd in both rows: the smallest n >= 2 with

        P(|T| > t_{1-alpha/2, 2n-2}) >= power,  T ~ noncentral t(df = 2n - 2, nc = |delta| / (sd * sqrt(2 / n)))

    (the exact power of the t-test, as statsmodels' TTestIndPower; Cohen's d = 0.5 needs 64 a row).
    "any" when sd is 0 and delta is not (every seed agrees), "never" when delta is 0, "–" when either is NaN,
    f">{most}" past `most`.
    """
    if delta is None or sd is None or math.isnan(delta) or math.isnan(sd):
        return "–"
    if delta == 0:
        return "never"
    if sd == 0:
        return "any"
    from scipy.stats import nct, t

    d = abs(delta) / sd

    def achieved(n: int) -> float:
        df, nc = 2 * n - 2, d / math.sqrt(2 / n)
        crit = t.ppf(1 - alpha / 2, df)
        return float(nct.sf(crit, df, nc) + nct.cdf(-crit, df, nc))

    lo, hi = 2, 2
    while achieved(hi) < power:  # doubling, then bisection: the power grows with n
        lo, hi = hi, hi * 2
        if hi > most:
            return f">{most}"
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if achieved(mid) < power else (lo, mid)
    return lo


def fisher_reached(k_a: int, n_a: int, k_b: int, n_b: int) -> float:
    """Two-sided p of Fisher's exact test on the 2x2 table [[k_a, n_a - k_a], [k_b, n_b - k_b]] (reached or not,
    row a against row b); NaN when a row has no runs."""
    if n_a <= 0 or n_b <= 0:
        return math.nan
    from scipy.stats import fisher_exact

    return float(fisher_exact([[k_a, n_a - k_a], [k_b, n_b - k_b]], alternative="two-sided").pvalue)


def logrank_steps(steps_a: Sequence[float], reached_a: Sequence[bool], steps_b: Sequence[float],
                  reached_b: Sequence[bool]) -> tuple[float, float]:
    """(p, observed - expected reaches of row a) of the two-sided log-rank test on steps to the target, a seed
    that never reached it censored at its last step (never counted as if the cap were its time).

    A positive second value means row a reaches the target sooner than the null expects; NaN p when a row has no
    runs or no seed of either row reached it.
    """
    ta, tb = np.asarray(steps_a, float), np.asarray(steps_b, float)
    ea, eb = np.asarray(reached_a, bool), np.asarray(reached_b, bool)
    if not len(ta) or not len(tb) or not (ea.any() or eb.any()):
        return math.nan, math.nan
    from scipy.stats import CensoredData, logrank

    res = logrank(CensoredData(uncensored=ta[ea], right=ta[~ea]), CensoredData(uncensored=tb[eb], right=tb[~eb]))
    return float(res.pvalue), _observed_minus_expected(ta, ea, tb, eb)


def _observed_minus_expected(ta: np.ndarray, ea: np.ndarray, tb: np.ndarray, eb: np.ndarray) -> float:
    """Σ over event times of (events in a) - (at risk in a) * (events) / (at risk): the log-rank statistic's
    numerator, whose sign says which row reaches first."""
    t = np.concatenate([ta, tb])
    e = np.concatenate([ea, eb])
    in_a = np.concatenate([np.ones(len(ta), bool), np.zeros(len(tb), bool)])
    total = 0.0
    for time in np.unique(t[e]):
        at_risk = t >= time
        events = (t == time) & e
        total += float((events & in_a).sum()) - float((at_risk & in_a).sum()) * events.sum() / at_risk.sum()
    return total


def fmt_p(p: Optional[float]) -> str:
    """A p-value as a reader wants it: 'p = 0.012', 'p < 0.001', '–' when there is none."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "–"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}" if p < 0.1 else f"p = {p:.2f}"
