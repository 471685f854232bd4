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

from ablate.report.figures import Figure, save
from ablate.report.plots import ARCH_COLORS, _finished, _runs_data, _safely, at_steps, count_ticks, hue_colors
from ablate.report.powerlaw import MIN_POINTS, SeedFit, fit_over_seeds
from ablate.report.tables import Summary, better, fmt_count, metric_name

ARCH_KEY = "model.arch"


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


def compute_vs_metric(df: pd.DataFrame, s: Summary, out: Path) -> Figure:
    """Final test metric of each run against its cumulative training FLOPs, the Pareto front marked."""
    m = s.primary
    fig_ = Figure("compute_vs_metric", f"Which architecture is ahead at each training compute ({metric_name(m)})?")
    runs = _finished(df)
    if "train_flops" not in runs or m not in runs:
        fig_.skipped = "the runs do not record their training FLOPs (train_flops: runs made before it was recorded)"
        return fig_
    runs = runs.assign(C=pd.to_numeric(runs["train_flops"], errors="coerce"),
                       y=pd.to_numeric(runs[m], errors="coerce"), arch=_arch(runs)).dropna(subset=["C", "y"])
    runs = runs[runs["C"] > 0]
    if runs.empty or runs["C"].nunique() < 2:
        fig_.skipped = "fewer than two runs with both training FLOPs and the metric: nothing to compare"
        return fig_
    front = pareto_front(runs["C"], runs["y"], minimize=better(m) == "min")
    colors = _colors(list(runs["arch"].unique()))
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for arch, part in runs.groupby("arch", sort=False):
        ax.scatter(part["C"], part["y"], color=colors[arch], label=arch, s=28, alpha=0.85, zorder=3)
    on = runs[front].sort_values("C")
    ax.step(on["C"], on["y"], where="post", color="black", lw=1, alpha=0.6, zorder=2)
    ax.scatter(on["C"], on["y"], facecolors="none", edgecolors="black", s=90, lw=1.2, zorder=4,
               label="Pareto front")
    ax.set_xscale("log")
    ax.set_xlabel("training FLOPs (cumulative)")
    ax.set_ylabel(f"test {metric_name(m)}")
    ax.grid(alpha=0.3)
    ax.set_title(f"test {metric_name(m)} vs training compute", fontsize=11)
    ax.legend(frameon=False, fontsize=8, loc="best")
    fig.tight_layout()
    fig_.files = save(fig, out, fig_.name, fig_)
    ahead = "; ".join(f"{r['arch']} from {fmt_count(r['C'])}" for _, r in on.iterrows())
    fig_.caption = (f"One point per run: its test {metric_name(m)} against the training FLOPs it used (forward + "
                    "backward, padding included). Ringed: the Pareto front, runs that no run with at most their "
                    f"compute beat; in order of compute: {ahead}.")
    return fig_


def size_grid(runs: pd.DataFrame) -> bool:
    """Whether some architecture was trained at more than one size (parameter count)."""
    if "params" not in runs or runs.empty:
        return False
    return bool(runs.assign(arch=_arch(runs)).groupby("arch")["params"].nunique().max() > 1)


def frontier_points(curves: pd.DataFrame) -> pd.DataFrame:
    """The lower envelope of (compute C, loss) over all curves' points given (a seed's runs of every size)."""
    return curves[pareto_front(curves["C"], curves["loss"])].sort_values("C")


def scaling_laws(df: pd.DataFrame, root: Path, out: Path, s: Summary) -> list[Figure]:
    """L(C) on the compute-efficient frontier and L(N) against parameters, per architecture, fitted per seed."""
    title_c = "How does each architecture's loss fall with training compute (compute-efficient frontier)?"
    title_n = "How does each architecture's final loss fall with its parameter count?"
    runs = _finished(df)
    if not size_grid(runs):
        why = "no architecture was trained at more than one size, so there is no scaling curve"
        return [Figure("scaling_compute", title_c, skipped=why), Figure("scaling_params", title_n, skipped=why)]
    runs = runs.assign(arch=_arch(runs))
    return [_frontier_figure(runs, root, out, s, Figure("scaling_compute", title_c)),
            _params_figure(runs, out, Figure("scaling_params", title_n))]


def _fits_text(fits: dict[str, SeedFit], what: str) -> str:
    return " ".join(f"{arch}: {fit.text()}." for arch, fit in fits.items()) + (
        f" {what} fitted by least squares in log–log, then the exponent's 95% t interval "
        "over the seeds (n − 1 degrees of freedom); a fit is refused, with the reason, where a seed has fewer "
        f"than {MIN_POINTS} points, fewer than 2 seeds fit, or the interval includes 0.")


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
    fig, ax = plt.subplots(figsize=(7.0, 4.4))
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
    _draw_fits(ax, fits, xs, colors)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training FLOPs (cumulative)")
    ax.set_ylabel("validation loss")
    ax.grid(alpha=0.3, which="both")
    ax.set_title("compute-efficient frontier", fontsize=11)
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig_.files = save(fig, out, fig_.name, fig_)
    fig_.caption = ("Faint: every run's validation loss against its cumulative training FLOPs; bold: each "
                    "architecture's compute-efficient frontier, the lower envelope across its sizes (the best "
                    "loss any size reached with at most that compute; Kaplan et al. 2020); dashed: L = a·C^(−b). "
                    + _fits_text(fits, "Each seed's frontier (its runs of every size) is"))
    return fig_


def _params_figure(runs: pd.DataFrame, out: Path, fig_: Figure) -> Figure:
    loss = "test/loss"
    if loss not in runs:
        fig_.skipped = "the runs record no test/loss"
        return fig_
    pts = runs.assign(N=pd.to_numeric(runs["params"], errors="coerce"),
                      L=pd.to_numeric(runs[loss], errors="coerce")).dropna(subset=["N", "L"])
    archs = list(dict.fromkeys(pts["arch"]))
    colors = _colors(archs)
    fig, ax = plt.subplots(figsize=(7.0, 4.4))
    fits, xs = {}, {}
    for arch in archs:
        mine = pts[pts["arch"] == arch]
        ax.scatter(mine["N"], mine["L"], color=colors[arch], s=24, alpha=0.85, label=arch)
        fits[arch] = fit_over_seeds({seed: (p["N"], p["L"]) for seed, p in mine.groupby("seed")})
        xs[arch] = mine["N"].to_numpy(float)
    _draw_fits(ax, fits, xs, colors)
    ax.set_xscale("log")
    ax.set_yscale("log")
    count_ticks(ax.xaxis)
    ax.set_xlabel("parameters")
    ax.set_ylabel("test loss")
    ax.grid(alpha=0.3, which="both")
    ax.set_title("final loss vs parameters", fontsize=11)
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig_.files = save(fig, out, fig_.name, fig_)
    fig_.caption = ("One point per run: its test loss (at the tested checkpoint) against its parameter count; "
                    "dashed: L = a·N^(−b). " + _fits_text(fits, "Each seed's points are"))
    return fig_


def with_compute_figures(figures: list[Figure], df: pd.DataFrame, root: Path, out: Path, s: Summary) -> list[Figure]:
    """The report's figures with this module's inserted after the parameter-count figure (else at the end)."""
    extra = [*_safely(compute_vs_metric, "compute_vs_metric", "Which architecture is ahead at each training compute?",
                      df, s, out),
             *_safely(scaling_laws, "scaling_compute", "How does each architecture scale?", df, root, out, s)]
    at = next((i + 1 for i, f in enumerate(figures) if f.name == "params_vs_metric"), len(figures))
    return [*figures[:at], *extra, *figures[at:]]
