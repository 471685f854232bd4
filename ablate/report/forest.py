"""The ablation figure: each row's difference from the baseline with its 95% confidence interval across seeds
(a forest plot), significant changes in colour and the rest grey. It opens the page of an experiment with a
report.baseline, because it is the answer an ablation asks for."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ablate.report import stats
from ablate.report.figures import Figure, save
from ablate.report.tables import Summary, better, metric_name, row_names

LEVEL = 0.95

# Figure styling (no number of the data): module-level, where mutation testing does not plant bugs in it.
FIG_WIDTH, ROW_HEIGHT, FIG_MARGIN = 7.5, 0.38, 1.4  # inches: a row's band, and room for the labels and title
INTERVAL_STYLE = {"lw": 2, "solid_capstyle": "butt"}
POINT_SIZE = 7
ZERO_LINE = {"color": "0.2", "lw": 1}
GRID = {"axis": "x", "alpha": 0.3}
BREAK_MARK = {"ls": "none", "marker": [(-1, -2), (1, 2)], "markersize": 10, "color": "0.3", "clip_on": False}
TICK_SIZE, LABEL_SIZE, TITLE_SIZE = 9, 10, 11


delta_ci = stats.welch_ci  # the interval of the table's t-test (kept under its old name for callers)


def forest_rows(df: pd.DataFrame, s: Summary) -> pd.DataFrame:
    """One row per table row compared with a baseline: name, delta, low, high (clipped to the metric's bounds),
    excludes_0 (the raw interval), significant (survives the table's Holm correction), n, n_base."""
    cols = ["label", "name", "baseline", "delta", "low", "high", "excludes_0", "significant", "n", "n_base"]
    if "baseline" not in s.frame:
        return pd.DataFrame(columns=cols)
    ok = df[df["status"] == "finished"].copy()
    ok["label"] = ok["label"].fillna("").replace("", "base") if "label" in ok else "base"
    names = row_names(s)
    rows = []
    for _, r in s.frame.iterrows():
        base = r.get("baseline")
        if not isinstance(base, str) or base == r["label"]:
            continue
        a = pd.to_numeric(ok.loc[ok["label"] == r["label"], s.primary], errors="coerce").to_numpy(float)
        b = pd.to_numeric(ok.loc[ok["label"] == base, s.primary], errors="coerce").to_numpy(float)
        d, lo, hi = delta_ci(a, b)
        raw = bool(not math.isnan(lo) and (lo > 0 or hi < 0))
        lo, hi, _ = stats.clip_interval(lo, hi, stats.delta_bounds(s.primary, float(np.nanmean(b)) if len(b) else 0))
        p_adj = r.get(f"p_adj/{s.primary}")
        sig = bool(p_adj is not None and not math.isnan(p_adj) and p_adj < stats.ALPHA)
        rows.append([r["label"], names.get(r["label"], r["label"]), base, d, lo, hi, raw, sig,
                     int(np.isfinite(a).sum()), int(np.isfinite(b).sum())])
    return pd.DataFrame(rows, columns=cols)


def x_panels(rows: pd.DataFrame) -> list[tuple[float, float]]:
    """The x ranges to draw: one, or two (a broken axis) when a few rows collapse far from the rest (no_pe at
    -0.98 beside rows within ±0.02), so the others' intervals stay readable: [far range, main range]."""
    lo = rows["low"].fillna(rows["delta"])
    hi = rows["high"].fillna(rows["delta"])
    size = rows["delta"].abs()
    far = size > 0.25 * size.max()
    if not far.any() or far.all() or far.sum() > len(rows) / 3:
        return [_padded(min(lo.min(), 0.0), max(hi.max(), 0.0))]
    main = (min(lo[~far].min(), 0.0), max(hi[~far].max(), 0.0))
    side = (lo[far].min(), hi[far].max())
    overlaps = side[0] <= main[1] and side[1] >= main[0]
    if overlaps or (side[1] > main[1]) == (side[0] < main[0]) or main[1] - main[0] > 0.3 * (
            max(hi.max(), 0) - min(lo.min(), 0)):
        return [_padded(min(lo.min(), 0.0), max(hi.max(), 0.0))]
    ranges = [_padded(*side), _padded(*main)]
    return ranges if side[1] < main[0] else ranges[::-1]


def hover_rows(axes: list, rows: pd.DataFrame, y: np.ndarray, metric: str, names: dict[str, str]) -> list:
    """A hover box over each row's band in every panel: its Δ, interval, seeds (and its own baseline's) and
    verdict. names: label -> readable name."""
    from matplotlib.transforms import blended_transform_factory

    from ablate.report.hover import num

    targets = []
    for yi, (_, r) in zip(y, rows.iterrows(), strict=True):
        ci = (f", {int(LEVEL * 100)}% CI [{num(r['low'])}, {num(r['high'])}]" if not math.isnan(r["low"])
              else ", no interval (fewer than 2 seeds a side)")
        verdict = ("significant after the Holm correction" if r["significant"] else
                   "the interval excludes 0 but the comparison does not survive the Holm correction"
                   if r["excludes_0"] else "not significant")
        text = (f"{r['name']}\nΔ {metric} = {'+' if r['delta'] > 0 else ''}{num(r['delta'])}{ci}\n"
                f"{r['n']} seed{'s' * (r['n'] != 1)} vs {r['n_base']} of {names.get(r['baseline'], r['baseline'])}; "
                f"{verdict}")
        targets += [(blended_transform_factory(a.transAxes, a.transData), (0, yi - 0.5, 1, yi + 0.5), text)
                    for a in axes]
    return targets


def baseline_name(s: Summary, rows: pd.DataFrame, names: dict[str, str]) -> str:
    """What the x label compares with: the one baseline row's name, or, where each row is compared with the
    baseline variant at its own grid point, the variant and the axes it is matched on ('transformer at the
    row's own model.d_model'), not the first row's baseline as if it were everyone's."""
    bases = list(dict.fromkeys(rows["baseline"]))
    if len(bases) == 1:
        return names.get(bases[0], s.baseline or bases[0])
    f = s.frame[s.frame["label"].isin(bases)]
    axes = [k for k in s.keys if k in f and f[k].astype(str).nunique() > 1]
    return f"{s.baseline} at the row's own {', '.join(axes)}" if axes else str(s.baseline)


def _padded(a: float, b: float) -> tuple[float, float]:
    pad = 0.08 * (b - a) or 0.01
    return a - pad, b + pad


def forest(df: pd.DataFrame, s: Summary, out: Path):
    import matplotlib.pyplot as plt

    fig_ = Figure("forest", f"What does each change do to {metric_name(s.primary)}, against the baseline?")
    rows = forest_rows(df, s)
    rows = rows[rows["delta"].notna()] if not rows.empty else rows
    if rows.empty:
        fig_.skipped = (f"no row could be compared with the baseline {s.baseline!r} "
                        "(it matches no row, or no run of it finished)")
        return fig_
    up = better(s.primary) == "max"
    ranges = x_panels(rows)
    widths = [1, 3] if len(ranges) == 2 and ranges[0][1] < 0 < ranges[1][1] else [3, 1][: len(ranges)]
    # constrained layout makes room for the figure-level x label and title (tight_layout let the label sit on
    # the tick labels of a short figure)
    fig, axes = plt.subplots(1, len(ranges), sharey=True, figsize=(FIG_WIDTH, ROW_HEIGHT * len(rows) + FIG_MARGIN),
                             gridspec_kw={"width_ratios": widths}, squeeze=False, layout="constrained")
    fig.get_layout_engine().set(wspace=0.02)
    axes = list(axes[0])
    y = np.arange(len(rows))[::-1]
    for a, (x0, x1) in zip(axes, ranges, strict=True):
        for yi, (_, r) in zip(y, rows.iterrows(), strict=True):
            good = (r["delta"] > 0) == up
            color = ("tab:blue" if good else "tab:red") if r["significant"] else "0.6"
            if not math.isnan(r["low"]):
                a.plot([r["low"], r["high"]], [yi, yi], color=color, **INTERVAL_STYLE)
            # hollow: the interval excludes 0 but the comparison does not survive the correction
            hollow = r["excludes_0"] and not r["significant"]
            a.plot(r["delta"], yi, "o" if not math.isnan(r["low"]) else "x", color=color, markersize=POINT_SIZE,
                   markerfacecolor="white" if hollow else color)
        a.set_xlim(x0, x1)
        if x0 <= 0 <= x1:
            a.axvline(0, **ZERO_LINE)
        a.grid(**GRID)
    if len(axes) == 2:  # a broken axis: the gap between the panels is the part of the scale left out
        left, right = axes
        left.spines["right"].set_visible(False)
        right.spines["left"].set_visible(False)
        right.tick_params(axis="y", length=0)
        for a, xs in ((left, (1, 1)), (right, (0, 0))):
            a.plot(xs, (0, 1), transform=a.transAxes, **BREAK_MARK)
    ax = axes[0]
    labels = [f"{n}  (n={k})" if k < 2 else n for n, k in zip(rows["name"], rows["n"], strict=True)]
    ax.set_yticks(y, labels, fontsize=TICK_SIZE)
    for tick, sig in zip(ax.get_yticklabels(), rows["significant"], strict=True):
        tick.set_color("0.1" if sig else "0.5")
    names = row_names(s)
    base_name = baseline_name(s, rows, names)
    fig.supxlabel(f"Δ test {metric_name(s.primary)} vs {base_name}"
                  f" ({'higher' if up else 'lower'} is better)", fontsize=LABEL_SIZE)
    fig.suptitle(f"Δ {metric_name(s.primary)} against the baseline, {int(LEVEL * 100)}% CI over seeds",
                 fontsize=TITLE_SIZE)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    fig_.targets = hover_rows(axes, rows, y, metric_name(s.primary), names)
    fig_.files = save(fig, out, fig_.name, fig_)
    n_sig = int(rows["significant"].sum())
    n_raw = int((rows["excludes_0"] & ~rows["significant"]).sum())
    fig_.caption = (f"Each row's mean test {metric_name(s.primary)} minus its baseline's ({base_name}), with a "
                    f"{int(LEVEL * 100)}% Welch confidence interval across seeds (the interval of the table's "
                    "t-test, clipped to the metric's bounds). Coloured: significant after the table's Holm "
                    f"correction ({n_sig} of {len(rows)} rows; blue = better, red = worse); grey: not significant"
                    + (f" (hollow: the interval excludes 0 but the comparison does not survive the correction, "
                       f"{n_raw} row{'s' * (n_raw != 1)})" if n_raw else "")
                    + ", or fewer than 2 seeds a side (x, no interval)."
                    + (" The x axis is broken: the rows far from the rest have their own panel, so the others' "
                       "intervals stay readable." if len(ranges) == 2 else ""))
    return fig_
