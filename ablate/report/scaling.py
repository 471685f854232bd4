"""Reports on a compute axis: which architecture is ahead at each training compute, and how each scales.

- compute_vs_metric: each run's final test metric against its cumulative training FLOPs, one colour per
  architecture, the Pareto front marked (no other run reached a better metric with as little compute).
- scaling_laws, for a grid over size per architecture: the compute-efficient frontier (the lower envelope of
  validation loss against cumulative training FLOPs across sizes, Kaplan et al. 2020, §3) with L = a·C^(−b)
  fitted to it, and L(N), final test loss against parameters. Each exponent is fitted per seed and given a
  t interval over the seeds (ablate.report.powerlaw.fit_over_seeds); a fit that cannot support a number says so.
The envelope and the front are small pure functions (pareto_front).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ablate.report.facets import label_runs, ordered
from ablate.report.figures import Figure, save
from ablate.report.plots import (
    ARCH_COLORS,
    _finished,
    _runs_data,
    _safely,
    at_steps,
    decade_ticks,
    facet_axes,
    hue_colors,
)
from ablate.report.powerlaw import MIN_POINTS, SeedFit, fit_over_seeds
from ablate.report.stops import capped_improving
from ablate.report.tables import Summary, better, fmt_count, metric_name

ARCH_KEY = "model.arch"
# The log-log figures' styling (no number of the data): module-level, where mutation testing plants no bugs.
GRID = {"alpha": 0.3, "which": "both"}
LEGEND = {"frameon": False, "fontsize": 8, "loc": "upper left", "bbox_to_anchor": (1.0, 1.0)}
TITLE_SIZE = 11
PARETO_SIZE = (6.4, 4.2)  # inches: the metric-vs-compute scatter
CURVES_SIZE = (7.0, 4.4)  # inches: the frontier and L(N) figures, their legend outside on the right


def pareto_front(cost: Sequence[float], value: Sequence[float], minimize: bool = True) -> np.ndarray:
    """Mask of the points on the front: no other point has at most their cost and a better-or-equal value
    (of points tied on both, the first). With minimize (a loss) this is the lower envelope of value against
    cost: the best value reached with at most that much compute."""
    c, v = np.asarray(cost, dtype=float), np.asarray(value, dtype=float)
    v = v if minimize else -v
    ok = np.isfinite(c) & np.isfinite(v)
    front = np.zeros(len(c), dtype=bool)
    best = math.inf
    for i in sorted(np.flatnonzero(ok), key=lambda i: (c[i], v[i])):  # cheapest first, better first at a tie
        if v[i] < best:
            front[i], best = True, v[i]
    return front


def _arch(runs: pd.DataFrame) -> pd.Series:
    """Each run's architecture: its model.arch ('model' where the runs do not record one), or its variant's name
    where variants split an arch (a Transformer with linear attention is an architecture of its own)."""
    arch = runs[ARCH_KEY].astype(str) if ARCH_KEY in runs else pd.Series("model", index=runs.index)
    if "variant" in runs:
        v = runs["variant"].fillna("").astype(str)
        if len(v) and (v != "").all() and v.groupby(arch).nunique().max() > 1:
            return v
    return arch


def _colors(archs: list[str]) -> dict[str, Any]:
    return hue_colors(sorted(archs, key=lambda a: list(ARCH_COLORS).index(a) if a in ARCH_COLORS else 99))


def compute_vs_metric(df: pd.DataFrame, s: Summary, out: Path) -> list[Figure]:
    """Final test metric of each run against its cumulative training FLOPs, the Pareto front marked; no figure
    where no run records its FLOPs (runs made before train_flops was: the report stays as it was)."""
    m = s.primary
    fig_ = Figure("compute_vs_metric", f"Which architecture is ahead at each training compute ({metric_name(m)})?")
    runs = _finished(df)
    if "train_flops" not in runs or m not in runs or pd.to_numeric(runs["train_flops"], errors="coerce").isna().all():
        return []
    runs = runs.assign(C=pd.to_numeric(runs["train_flops"], errors="coerce"),
                       y=pd.to_numeric(runs[m], errors="coerce"), arch=_arch(runs)).dropna(subset=["C", "y"])
    runs = runs[runs["C"] > 0]
    if runs.empty or runs["C"].nunique() < 2:
        fig_.skipped = "fewer than two runs with both training FLOPs and the metric: nothing to compare"
        return fig_
    runs = label_runs(runs, s)  # 'facet': the task and split a run answers ('' when one)
    facets = ordered(runs["facet"], runs["order"])
    many = len(facets) > 1
    colors = _colors(list(runs["arch"].unique()))
    if many:
        fig, axes = facet_axes(len(facets), legend_width=1.6)
    else:
        fig, ax = plt.subplots(figsize=PARETO_SIZE)
        axes = [ax]
    aheads, named = [], set()  # an architecture is named in the legend where it first appears, in any panel
    for i, (ax, facet) in enumerate(zip(axes, facets, strict=True)):
        part = runs[runs["facet"] == facet]
        for arch, pts in part.groupby("arch", sort=False):  # the front is drawn per panel: a split is its own task
            ax.scatter(pts["C"], pts["y"], color=colors[arch], label=None if arch in named else arch, s=28,
                       alpha=0.85, zorder=3)
            named.add(arch)
        on = part[pareto_front(part["C"], part["y"], minimize=better(m) == "min")].sort_values("C")
        ax.step(on["C"], on["y"], where="post", color="black", lw=1, alpha=0.6, zorder=2)
        ax.scatter(on["C"], on["y"], facecolors="none", edgecolors="black", s=90, lw=1.2, zorder=4,
                   label="Pareto front" if i == 0 else None)
        ax.set_xscale("log")
        decade_ticks(ax.xaxis)
        ax.set_xlabel("training FLOPs (cumulative)")
        ax.set_ylabel(f"test {metric_name(m)}")
        ax.grid(alpha=0.3)
        ax.set_title(facet or f"test {metric_name(m)} vs training compute", fontsize=11)
        leads = [(r["arch"], r["C"]) for _, r in on.iterrows()]
        leads = [(a, c) for j, (a, c) in enumerate(leads) if j == 0 or leads[j - 1][0] != a]  # where the lead changes
        ahead = "; ".join(f"{a} from {fmt_count(c)} FLOPs" for a, c in leads)
        aheads.append(f"{facet}: {ahead}" if facet else ahead)
    if many:
        handles = [h for ax in axes for h in zip(*ax.get_legend_handles_labels())]
        fig.legend(*zip(*handles), loc="upper left", bbox_to_anchor=(1.0, 0.95), frameon=False, fontsize=8)
    else:
        axes[0].legend(frameon=False, fontsize=8, loc="best")
    fig.tight_layout()
    fig_.files = save(fig, out, fig_.name, fig_)
    fig_.caption = (f"One point per run: its test {metric_name(m)} against the training FLOPs it used (forward + "
                    "backward, padding included)" + (", one panel per task and split" if many else "")
                    + ". Ringed: the Pareto front, runs that no run with at most their compute beat"
                    + (" in their panel" if many else "") + f". Ahead on the front: {' | '.join(aheads)}.")
    return [fig_]


# model keys a size grid varies (and those derived from them): rows differing in anything else are an ablation
SIZE_KEYS = {"model.d_model", "model.n_layers", "model.d_ff", "model.d_k", "model.d_v", "model.dt_rank",
             "model.match_params", "model.match_flops", "model.n_heads"}


def size_groups(runs: pd.DataFrame) -> list[str]:
    """The architectures (runs' 'arch' column, else _arch) trained at more than one size and otherwise alike:
    within each, the runs' model settings differ only in SIZE_KEYS."""
    if "params" not in runs or runs.empty:
        return []
    runs = runs if "arch" in runs else runs.assign(arch=_arch(runs))
    out = []
    for arch, part in runs.groupby("arch", sort=False):
        other = [c for c in part.columns if c.startswith("model.") and c not in SIZE_KEYS
                 and part[c].astype(str).nunique() > 1]
        if part["params"].nunique() > 1 and not other:
            out.append(str(arch))
    return out


def size_grid(runs: pd.DataFrame) -> bool:
    """Whether some architecture was trained at more than one size, all else alike."""
    return bool(size_groups(runs))


def frontier_points(curves: pd.DataFrame) -> pd.DataFrame:
    """The lower envelope of (compute C, loss) over all curves' points given (a seed's runs of every size)."""
    return curves[pareto_front(curves["C"], curves["loss"])].sort_values("C")


def scaling_laws(df: pd.DataFrame, root: Path, out: Path, s: Summary) -> list[Figure]:
    """L(C) on the compute-efficient frontier and L(N) against parameters, per architecture, fitted per seed."""
    title_c = "How does each architecture's loss fall with training compute (compute-efficient frontier)?"
    title_n = "How does each architecture's final loss fall with its parameter count?"
    runs = label_runs(_finished(df), s)
    arch = _arch(runs)
    runs = runs.assign(arch=(runs["facet"] + ", " + arch).where(runs["facet"] != "", arch))  # per task, if several
    grown = size_groups(runs)
    if not grown:  # not a size grid: no scaling figures (nor a sentence saying so on every other report)
        return []
    runs = runs[runs["arch"].isin(grown)]
    return [_frontier_figure(runs, root, out, s, Figure("scaling_compute", title_c)),
            _params_figure(runs, out, Figure("scaling_params", title_n))]


def _fits_text(fits: dict[str, SeedFit], what: str) -> str:
    return " ".join(f"{arch}: {fit.text()}." for arch, fit in fits.items()) + (
        f" {what} fitted by least squares in log–log, then the exponent's 95% t interval "
        "over the seeds (n − 1 degrees of freedom); a fit is refused, with the reason, where a seed has fewer "
        f"than {MIN_POINTS} points, fewer than 2 seeds fit, or the interval includes 0.")


def _log_y(ax: Any) -> None:
    """Plain tick labels on a log loss axis ('2.12', '0.01'), not '2.12×10⁰' at every minor one: under a decade,
    five ticks spread evenly; over one, round values (1, 2 and 5 per decade, or the powers of ten alone past
    three decades), not five evenly spread odd ones ('0.00515')."""
    import matplotlib.ticker as ticker

    lo, hi = ax.get_ylim()
    if hi / lo <= 10:
        ax.yaxis.set_major_locator(ticker.FixedLocator(np.geomspace(lo, hi, 5)))
    else:
        subs = (1.0, 2.0, 5.0) if hi / lo <= 1e3 else (1.0,)
        ax.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=subs))
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:.3g}"))
    ax.yaxis.set_minor_locator(ticker.NullLocator())


def _draw_fits(ax: Any, fits: dict[str, SeedFit], xs: dict[str, np.ndarray], colors: dict[str, Any]) -> None:
    for arch, fit in fits.items():
        if fit.b is None or not len(xs[arch]):
            continue
        grid = np.geomspace(xs[arch].min(), xs[arch].max(), 50)
        ax.plot(grid, fit.a * grid ** (-fit.b), ls="--", lw=1.2, color=colors[arch],
                label=f"{arch}: b = {fit.b:.3f}")


def _frontier_figure(runs: pd.DataFrame, root: Path, out: Path, s: Summary, fig_: Figure) -> Figure:
    curves = _runs_data(runs, root, "metrics.csv", s)
    if curves.empty or "val/loss" not in curves or "train/flops" not in curves:
        fig_.skipped = "the runs' metrics.csv lack val/loss or train/flops (runs made before FLOPs were recorded)"
        return fig_
    val = curves[curves["val/loss"].notna()].copy()
    val["C"] = at_steps(curves, val, "train/flops").to_numpy()
    val = val.dropna(subset=["C"]).rename(columns={"val/loss": "loss"})
    val["arch"] = val["run_id"].map(runs.set_index("run_id")["arch"])
    if val.empty:
        fig_.skipped = "no validation has a training-FLOPs count"
        return fig_
    archs = list(dict.fromkeys(val["arch"]))
    colors = _colors(archs)
    fig, ax = plt.subplots(figsize=CURVES_SIZE)
    fits, xs = {}, {}
    for arch in archs:
        mine = val[val["arch"] == arch]
        for _, run in mine.groupby("run_id"):  # every run's curve, faint: the envelope is drawn over them
            ax.plot(run["C"], run["loss"], color=colors[arch], lw=0.6, alpha=0.25)
        per_seed = {seed: frontier_points(part) for seed, part in mine.groupby("seed")}
        fits[arch] = fit_over_seeds({k: (p["C"], p["loss"]) for k, p in per_seed.items()})
        pooled = frontier_points(mine)
        xs[arch] = pooled["C"].to_numpy(float)
        ax.plot(pooled["C"], pooled["loss"], color=colors[arch], lw=2, marker="o", ms=3, label=f"{arch} frontier")
    _finish_log_log(fig, ax, fits, xs, colors, "training FLOPs (cumulative)", "validation loss",
                    "compute-efficient frontier")
    fig_.files = save(fig, out, fig_.name, fig_)
    fig_.caption = ("Faint: every run's validation loss against its cumulative training FLOPs; bold: each "
                    "architecture's compute-efficient frontier, the lower envelope across its sizes (the best "
                    "loss any size reached with at most that compute; Kaplan et al. 2020); dashed: L = a·C^(−b). "
                    + _fits_text(fits, "Each seed's frontier (its runs of every size) is"))
    return fig_


def _finish_log_log(fig: Any, ax: Any, fits: dict, xs: dict, colors: dict, xlabel: str, ylabel: str,
                    title: str, counts: bool = False) -> None:
    """The fitted lines, log-log axes, labels, grid, title and the legend outside the axes; counts: x ticks as
    plain counts at 1, 2 and 5 per decade (parameters: '200k', '500k', '1M'), not powers of ten."""
    _draw_fits(ax, fits, xs, colors)
    ax.set_xscale("log")
    ax.set_yscale("log")
    if counts:  # labels at 1, 2 and 5 per decade as counts: matplotlib's minor labels ('3×10⁵') collided
        decade_ticks(ax.xaxis)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    _log_y(ax)
    ax.grid(**GRID)
    ax.set_title(title, fontsize=TITLE_SIZE)
    ax.legend(**LEGEND)
    fig.tight_layout()


def _params_figure(runs: pd.DataFrame, out: Path, fig_: Figure) -> Figure:
    loss = "test/loss"
    if loss not in runs:
        fig_.skipped = "the runs record no test/loss"
        return fig_
    pts = runs.assign(N=pd.to_numeric(runs["params"], errors="coerce"),
                      L=pd.to_numeric(runs[loss], errors="coerce")).dropna(subset=["N", "L"])
    archs = list(dict.fromkeys(pts["arch"]))
    colors = _colors(archs)
    fig, ax = plt.subplots(figsize=CURVES_SIZE)
    fits, xs = {}, {}
    capped = capped_improving(pts)  # their losses are upper bounds: drawn hollow, and the caption counts them
    for arch in archs:
        mine = pts[pts["arch"] == arch]
        ax.scatter(mine["N"], mine["L"], color=colors[arch], s=24, alpha=0.85, label=arch)
        hollow = mine[capped.loc[mine.index]]
        ax.scatter(hollow["N"], hollow["L"], facecolors="white", edgecolors=colors[arch], s=24, zorder=3)
        fits[arch] = fit_over_seeds({seed: (p["N"], p["L"]) for seed, p in mine.groupby("seed")})
        xs[arch] = mine["N"].to_numpy(float)
    _finish_log_log(fig, ax, fits, xs, colors, "parameters", "test loss", "final loss vs parameters", counts=True)
    fig_.files = save(fig, out, fig_.name, fig_)
    per_arch = capped.groupby(pts["arch"]).agg(["sum", "size"])
    counts = [f"{a} {int(per_arch.at[a, 'sum'])} of {int(per_arch.at[a, 'size'])}" for a in archs
              if per_arch.at[a, "sum"]]
    fig_.caption = ("One point per run: its test loss (at the tested checkpoint) against its parameter count; "
                    "dashed: L = a·N^(−b). "
                    + (f"Hollow: runs stopped at their cap while still improving ({'; '.join(counts)}), their "
                       "losses upper bounds: a fit through them is not a converged L(N). " if counts else "")
                    + _fits_text(fits, "Each seed's points are"))
    return fig_


def with_compute_figures(figures: list[Figure], df: pd.DataFrame, root: Path, out: Path, s: Summary) -> list[Figure]:
    """The report's figures with this module's inserted after the parameter-count figure (else at the end)."""
    extra = [*_safely(compute_vs_metric, "compute_vs_metric", "Which architecture is ahead at each training compute?",
                      df, s, out),
             *_safely(scaling_laws, "scaling_compute", "How does each architecture scale?", df, root, out, s)]
    at = next((i + 1 for i, f in enumerate(figures) if f.name == "params_vs_metric"), len(figures))
    return [*figures[:at], *extra, *figures[at:]]
