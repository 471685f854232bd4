"""The report's figures (seaborn, PNG + PDF), one per question.

Each function returns a Figure; when the data for it is missing the Figure says
why (skipped) instead of failing, and the page shows that sentence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from ablate.report.tables import Summary, better, fmt_count, key_name, metric_name, row_names  # noqa: E402

DPI = 100  # PNG resolution (the page shows figures at 96 px per inch); keeps sample reports small
BAND = ("pi", 100)  # the band around a mean over seeds: from the lowest seed to the highest
LENGTH_KEYS = ("task.max_len", "task.test_max_len", "task.min_len", "task.test_min_len")


@dataclass
class Figure:
    name: str  # file stem under plots/
    title: str  # the question it answers
    files: list[Path] = field(default_factory=list)  # PNG first, then PDF
    caption: str = ""
    skipped: str = ""  # why there is no figure (empty when there is one)


def pretty_label(label: str) -> str:
    """'no_pe, model.n_heads=2' -> 'no_pe, heads=2'."""
    parts = []
    for part in str(label).split(", "):
        key, eq, value = part.partition("=")
        parts.append(f"{key_name(key)}={value}" if eq and "." in key else part)
    return ", ".join(parts)


def save(fig: Any, out: Path, name: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=DPI, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    plt.close(fig)
    shrink_png(paths[0])
    return paths


def shrink_png(path: Path) -> None:
    """Re-save a plot with a 256-colour palette: a third of the bytes, no visible change for charts."""
    from PIL import Image  # pillow comes with matplotlib

    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def _palette(n: int) -> list:
    return sns.color_palette("tab10" if n <= 10 else "husl", n)


def _legend_outside(ax: Any, title: str = "") -> None:
    if ax.get_legend() is not None:
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1.02, 1), frameon=False, title=title or None)


def _acc_axis(ax: Any, metric: str) -> None:
    """Accuracies start at 0 (not centred on it when every value is 0)."""
    if "acc" in metric:
        ax.set_ylim(bottom=-0.02, top=max(ax.get_ylim()[1], 0.05))


def _finished(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["status"] == "finished"]


def _read_csvs(df: pd.DataFrame, root: Path, name: str, names: dict[str, str]) -> pd.DataFrame:
    """The per-run CSV `name` of every finished run, concatenated, with label and seed columns."""
    parts = []
    for _, r in _finished(df).iterrows():
        path = root / r["run_id"] / name
        if path.is_file():
            try:
                part = pd.read_csv(path)
            except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError):
                continue
            parts.append(part.assign(row=names.get(r["label"]) or pretty_label(r["label"]), seed=r["seed"]))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


# ------------------------------------------------------------------ learning curves
def learning_curves(df: pd.DataFrame, root: Path, out: Path, metric: str, names: dict[str, str]) -> Figure:
    """Validation metric (and loss) vs training step: mean over seeds with a min–max band, one colour per row."""
    fig_ = Figure("learning_curves", "How fast does each row learn?")
    curves = _read_csvs(df, root, "metrics.csv", names)
    if curves.empty or "step" not in curves:
        fig_.skipped = "no run has a metrics.csv (no finished runs with logged validation)"
        return fig_
    wanted = ["val/" + metric.split("/", 1)[-1], "val/seq_acc", "val/acc", "val/token_acc"]
    first = next((m for m in wanted if m in curves and curves[m].notna().any()), None)
    panels = [m for m in dict.fromkeys([first, "val/loss"]) if m and m in curves and curves[m].notna().any()]
    if not panels:
        fig_.skipped = "the runs' metrics.csv have no validation metrics (val/...)"
        return fig_
    hue_order = list(dict.fromkeys([*(h for h in names.values() if h in set(curves["row"])), *curves["row"]]))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels) + 2.5, 4), squeeze=False)
    for i, (ax, m) in enumerate(zip(axes[0], panels, strict=True)):
        data = curves[curves[m].notna()]
        sns.lineplot(data=data, x="step", y=m, hue="row", hue_order=hue_order, style="row", style_order=hue_order,
                     markers=True, dashes=True, markersize=6, errorbar=BAND, palette=_palette(len(hue_order)),
                     ax=ax, legend=i == len(panels) - 1)
        ax.set_xlabel("training step")
        ax.set_ylabel(f"validation {metric_name(m)}")
        _acc_axis(ax, m)
        ax.set_title(f"validation {metric_name(m)} ({'higher' if better(m) == 'max' else 'lower'} is better)")
        ax.grid(alpha=0.3)
    _legend_outside(axes[0][-1], "row")
    fig.tight_layout()
    n_seeds = int(curves.groupby("row")["seed"].nunique().max())
    fig_.files = save(fig, out, fig_.name)
    fig_.caption = (f"Validation {', '.join(metric_name(m) for m in panels)} after each validation epoch; line = "
                    f"mean over seeds, band = min–max over seeds (up to {n_seeds} seed{'s' * (n_seeds != 1)} a row).")
    return fig_


# ------------------------------------------------------------------ by length
def by_length(df: pd.DataFrame, root: Path, out: Path, metric: str, names: dict[str, str]) -> Figure:
    """Test accuracy per input length, one line per row (as Bahdanau et al. 2015, Fig. 2)."""
    fig_ = Figure("by_length", "How does accuracy fall with input length?")
    data = _read_csvs(df, root, "by_length.csv", names)
    if data.empty or "length" not in data:
        fig_.skipped = "no run has a by_length.csv (test metrics per input length)"
        return fig_
    first = metric.split("/", 1)[-1]
    panels = [m for m in dict.fromkeys([first, "seq_acc", "token_acc"]) if m in data and data[m].notna().any()]
    if not panels:
        fig_.skipped = "by_length.csv has neither seq_acc nor token_acc"
        return fig_
    hue_order = list(dict.fromkeys([*(h for h in names.values() if h in set(data["row"])), *data["row"]]))
    train_max = _constant(_finished(df), "task.max_len")
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels) + 2.5, 4), squeeze=False)
    for i, (ax, m) in enumerate(zip(axes[0], panels, strict=True)):
        sns.lineplot(data=data, x="length", y=m, hue="row", hue_order=hue_order, style="row", style_order=hue_order,
                     markers=True, dashes=True, markersize=7, errorbar=BAND, palette=_palette(len(hue_order)),
                     ax=ax, legend=i == len(panels) - 1)
        if train_max is not None and data["length"].max() > train_max:
            ax.axvspan(train_max + 0.5, data["length"].max() + 0.5, color="0.9", zorder=0)
            ax.text(train_max + 0.6, ax.get_ylim()[1], "longer than\nany training input", va="top", fontsize=8,
                    color="0.35")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_xlabel("input length (tokens)")
        ax.set_ylabel(f"test {metric_name(m)}")
        _acc_axis(ax, m)
        ax.set_title(f"test {metric_name(m)} by input length")
        ax.grid(alpha=0.3)
    _legend_outside(axes[0][-1], "row")
    fig.tight_layout()
    fig_.files = save(fig, out, fig_.name)
    fig_.caption = (f"Test {' and '.join(metric_name(m) for m in panels)} of the test examples of each input "
                    "length; line = mean over seeds, band = min–max over seeds.")
    return fig_


def _constant(df: pd.DataFrame, key: str) -> Optional[float]:
    if key not in df or df[key].isna().all():
        return None
    vals = pd.to_numeric(df[key], errors="coerce").dropna().unique()
    return float(vals[0]) if len(vals) == 1 else None


# ------------------------------------------------------------------ throughput
def throughput(df: pd.DataFrame, out: Path, keys: list[str]) -> Figure:
    """Training tokens/s against the sequence length the experiment varies, one line per architecture."""
    fig_ = Figure("throughput", "How does training speed scale with sequence length?")
    length = next((k for k in LENGTH_KEYS if k in keys), None) or next(
        (k for k in keys if k.startswith("task.") and "len" in k), None)
    if length is None:
        fig_.skipped = ("the experiment does not vary a sequence length (e.g. grid: {task.max_len: [...]}), "
                        "so there is no throughput-by-length curve; tokens/s per row is in the table")
        return fig_
    data = _finished(df)
    data = data[pd.to_numeric(data.get("tokens_per_s"), errors="coerce").notna()] if "tokens_per_s" in data else data
    if data.empty or "tokens_per_s" not in data:
        fig_.skipped = "no finished run recorded tokens_per_s"
        return fig_
    others = [k for k in keys if not (k.startswith("task.") and "len" in k)]
    show_variant = data["variant"].astype(str).nunique() > 1 if "variant" in data else False
    line = [_line(r, others, show_variant) for _, r in data.iterrows()]
    data = data.assign(x=pd.to_numeric(data[length], errors="coerce"), y=data["tokens_per_s"].astype(float), line=line)
    lines = list(dict.fromkeys(data["line"]))
    fig, ax = plt.subplots(figsize=(8, 4.5))
    sns.lineplot(data=data, x="x", y="y", hue="line", hue_order=lines, style="line", style_order=lines,
                 markers=True, dashes=True, errorbar=BAND, palette=_palette(len(lines)), ax=ax,
                 legend=len(lines) > 1)
    if data["y"].max() > 10 * max(data["y"].min(), 1e-9):
        ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: fmt_count(v)))
    xs = sorted(data["x"].dropna().unique())
    if xs and xs[0] > 0 and xs[-1] >= 8 * xs[0]:  # lengths that double: a log-2 axis, ticks at the lengths
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs)
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    else:
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel(f"{key_name(length)} ({length}, tokens)")
    ax.set_ylabel("training throughput (tokens/s)")
    ax.set_title("training throughput by sequence length")
    ax.grid(alpha=0.3)
    _legend_outside(ax, ", ".join((["variant"] if show_variant else []) + [key_name(k) for k in others]) or "row")
    fig.tight_layout()
    fig_.files = save(fig, out, fig_.name)
    fig_.caption = (f"Source + target tokens per second of training steps, against {length}; mean over seeds, "
                    "band = min–max. Runs that shared a machine have noisy timings.")
    return fig_


def _line(r: pd.Series, others: list[str], show_variant: bool) -> str:
    """A throughput line's name: the row's settings other than length (the arch by its name alone)."""
    parts = [str(r["variant"])] if show_variant else []
    parts += [str(r[k]) if k == "model.arch" else f"{key_name(k)}={r[k]}" for k in others]
    return ", ".join(parts) or str(r.get("model.arch", "all runs"))


# ------------------------------------------------------------------ params vs metric
def params_vs_metric(s: Summary, out: Path) -> Figure:
    """Each row's mean metric (± std over seeds) against its parameter count."""
    fig_ = Figure("params_vs_metric", f"Does a better {metric_name(s.primary)} just cost more parameters?")
    f = s.frame.dropna(subset=[f"{s.primary}/mean", "params/mean"]) if f"{s.primary}/mean" in s.frame else None
    if f is None or f.empty:
        fig_.skipped = f"no finished row has both params and {s.primary}"
        return fig_
    if f["params/mean"].nunique() < 2:
        fig_.skipped = (f"every row has the same parameter count ({fmt_count(f['params/mean'].iloc[0])}), "
                        "so there is nothing to plot against it")
        return fig_
    colors, markers, names = _palette(len(f)), "osD^vPX*<>ph", row_names(s)
    log = f["params/mean"].max() > 10 * f["params/mean"].min()
    x = _dodge(f["params/mean"].to_numpy(float), log)
    fig, ax = plt.subplots(figsize=(5.5 + 0.08 * max(len(n) for n in names.values()), 4.5))
    for k, (_, r) in enumerate(f.iterrows()):
        std = r[f"{s.primary}/std"]
        ax.errorbar(x[k], r[f"{s.primary}/mean"], yerr=None if math.isnan(std) else std, fmt=markers[k % 12],
                    capsize=3, color=colors[k], label=names.get(r["label"], r["label"]), markersize=7, alpha=0.9)
    if log:
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # minor labels collide at 2x..9x
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: fmt_count(x)))
    ax.set_xlabel("parameters")
    ax.set_ylabel(f"test {metric_name(s.primary)}")
    _acc_axis(ax, s.primary)
    ax.set_title(f"test {metric_name(s.primary)} vs parameter count")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False, title="row")
    fig.tight_layout()
    fig_.files = save(fig, out, fig_.name)
    fig_.caption = (f"One point per row: mean test {metric_name(s.primary)} over seeds, error bar = ±1 std. Rows "
                    "with the same parameter count are drawn slightly apart so that none hides another.")
    return fig_


def _dodge(x: np.ndarray, log: bool) -> np.ndarray:
    """Spread points that share an x value by a few percent of the axis, so none hides behind another."""
    t = np.log10(x) if log else x.copy()
    span = (t.max() - t.min()) or 1.0
    out = t.copy()
    for v in np.unique(t):
        idx = np.flatnonzero(t == v)
        if len(idx) > 1:
            out[idx] = v + (np.arange(len(idx)) - (len(idx) - 1) / 2) * 0.02 * span
    return 10**out if log else out


# ------------------------------------------------------------------ attention
def attention(df: pd.DataFrame, root: Path, out: Path, metric: str, names: Optional[dict[str, str]] = None,
              samples: Optional[list[str]] = None) -> list[Figure]:
    """Encoder self- and decoder cross-attention per layer and head, for the best run of each attention arch,
    on each of samples (report.samples; default: a test input of the run's task)."""
    from ablate.report.attend import AttendError, compute

    ok = _finished(df)
    if "model.attention" in ok:
        ok = ok[ok["model.attention"].notna() & (ok["model.attention"].astype(str) != "none")]
    else:
        ok = ok.iloc[0:0]
    if ok.empty:
        archs = ", ".join(sorted(set(_finished(df).get("model.arch", pd.Series(dtype=str)).astype(str)))) or "none"
        return [Figure("attention", "Where does the model look?",
                       skipped=f"no finished run has attention (archs here: {archs})")]
    figures = []
    names = names or {}
    rank = {label: i for i, label in enumerate(names)}
    ok = ok.assign(_rank=ok["label"].map(lambda x: rank.get(x, len(rank)))).sort_values("_rank")
    for arch, runs in ok.groupby("model.arch", sort=False):
        best = _best_run(runs, metric)
        for i, text in enumerate(samples or [None]):
            name = f"attention_{arch}" + (f"_{i + 1}" if i else "")
            fig_ = Figure(name, f"Where does the best {arch} look?" + (f" (sample {i + 1})" if samples else ""))
            figures.append(fig_)
            try:
                att = compute(root / best["run_id"], text.split() if text is not None else None)
            except (AttendError, OSError, RuntimeError, KeyError, ValueError) as e:
                fig_.skipped = f"could not compute attention for run {best['run_id']}: {e}"
                continue
            _attention_figure(fig_, att, out, best, metric, root, names.get(best["label"]) or best["label"])
    return figures


def _attention_figure(fig_: Figure, att: Any, out: Path, best: pd.Series, metric: str, root: Path,
                      row: str) -> None:
    from ablate.report.attend import axis_names, draw, module_title

    arch = att.arch
    names = [n for n in att.maps if (n.startswith("encoder") and n.endswith("self")) or "cross" in n]
    if not names:
        fig_.skipped = f"run {best['run_id']} has no encoder self- or decoder cross-attention"
        return
    heads = max(att.maps[n].shape[0] for n in names)
    size = {n: [0.3 * len(t) + 1.5 for t in att.axes(n)] for n in names}  # inches: (height, width)
    width = max(w for _, w in size.values())
    across = heads == 1  # one head: the modules side by side, else one row of heads per module
    shape = (1, len(names)) if across else (len(names), heads)
    heights = [max(h for h, _ in size.values())] if across else [size[n][0] for n in names]
    fig, axes = plt.subplots(*shape, figsize=(width * shape[1] + 1.2, sum(heights) + 0.4), squeeze=False,
                             layout="constrained", gridspec_kw={"height_ratios": heights})
    for i, name in enumerate(names):
        rows, cols = att.axes(name)
        ylab, xlab = axis_names(name)
        for h in range(heads):
            ax = axes[0][i] if across else axes[i][h]
            if h >= att.maps[name].shape[0]:
                ax.axis("off")
                continue
            draw(ax, att.maps[name][h], rows, cols, f"{module_title(name)}\nhead {h + 1}", colorbar=False)
            ax.set_xlabel(xlab, fontsize=8)
            ax.set_ylabel(ylab if h == 0 else "", fontsize=8)
    fig.colorbar(axes[0][0].collections[0], ax=axes.ravel().tolist(), shrink=0.6, label="attention weight")
    fig_.files = save(fig, out, fig_.name)
    score = best.get(metric)
    fig_.caption = (f"Run {best['run_id']} ({row}, seed {best['seed']}), the best "
                    f"{arch} run by {metric}" + (f" ({score:.3f})" if _num(score) else "")
                    + f". Input: “{' '.join(att.src)}”; its own output: “{' '.join(att.out)}”. Rows: queries, "
                    "columns: keys; each row sums to 1. Another input: "
                    f"`ablate attend {root / best['run_id']} \"{' '.join(att.src)}\"`.")


def _num(x: Any) -> bool:
    return isinstance(x, (int, float, np.floating)) and not math.isnan(x)


def _best_run(runs: pd.DataFrame, metric: str) -> pd.Series:
    if metric not in runs or runs[metric].isna().all():
        return runs.iloc[0]
    vals = pd.to_numeric(runs[metric], errors="coerce")
    return runs.loc[vals.idxmin() if better(metric) == "min" else vals.idxmax()]


def _safely(fn: Any, name: str, title: str, *args: Any) -> list[Figure]:
    """fn(*args) as a list of Figures; an unexpected error becomes a skipped figure, never a failed report."""
    try:
        result = fn(*args)
    except Exception as e:  # noqa: BLE001 - a broken plot must not lose the rest of the report
        plt.close("all")
        return [Figure(name, title, skipped=f"failed to draw ({type(e).__name__}: {e})")]
    return result if isinstance(result, list) else [result]


def all_plots(df: pd.DataFrame, root: Path, out: Path, s: Summary,
              samples: Optional[list[str]] = None) -> list[Figure]:
    """Every figure of the report, in page order (rows named and ordered as in the table)."""
    sns.set_theme(style="whitegrid", context="notebook")
    names = row_names(s)
    return [
        *_safely(learning_curves, "learning_curves", "How fast does each row learn?", df, root, out, s.primary, names),
        *_safely(by_length, "by_length", "How does accuracy fall with input length?", df, root, out, s.primary, names),
        *_safely(throughput, "throughput", "How does training speed scale with sequence length?", df, out, s.keys),
        *_safely(params_vs_metric, "params_vs_metric", "Does a better score cost more parameters?", s, out),
        *_safely(attention, "attention", "Where does the model look?", df, root, out, s.primary, names, samples),
    ]
