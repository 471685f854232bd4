"""The report's figures (seaborn, PNG + PDF), one per question.

Each function returns a Figure; when the data for it is missing the Figure says
why (skipped) instead of failing, and the page shows that sentence.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import matplotlib
import matplotlib.text
import matplotlib.ticker
import matplotlib.transforms

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from ablate.report.facets import MAX_LEGEND, baseline_hue, label_runs, ordered, short_names  # noqa: E402
from ablate.report.figures import DPI, Figure, save  # noqa: E402,F401 - DPI: the page reads it here
from ablate.report.lengths import AXIS, SHORT, axis_of, regroup  # noqa: E402
from ablate.report.tables import Summary, better, fmt_count, key_name, metric_name  # noqa: E402

BAND = ("pi", 100)  # the band around a mean over seeds: from the lowest seed to the highest
LENGTH_KEYS = ("task.max_len", "task.test_max_len", "task.min_len", "task.test_min_len")


def pretty_label(label: str) -> str:
    """'no_pe, model.n_heads=2' -> 'no_pe, heads=2'."""
    parts = []
    for part in str(label).split(", "):
        key, eq, value = part.partition("=")
        parts.append(f"{key_name(key)}={value}" if eq and "." in key else part)
    return ", ".join(parts)


def _palette(n: int) -> list:
    return sns.color_palette("tab10" if n <= 10 else "husl", n)


# One colour and one place per architecture in every figure of every report, so a reader who learned that the
# Transformer is blue on one page finds it blue on the next.
ARCH_COLORS = {"mlp": "tab:gray", "cnn": "tab:brown", "rnn": "tab:olive", "gru": "tab:orange", "lstm": "tab:red",
               "seq2seq": "tab:purple", "seq2seq_attention": "tab:green", "transformer": "tab:blue", "ssm": "tab:pink"}


def arch_of(hue: str) -> Optional[str]:
    """The architecture a line's name names ('lstm', 'reverse, lstm', 'lstm, lr=0.003'), if exactly one."""
    found = [p for p in str(hue).split(", ") if p in ARCH_COLORS]
    return found[0] if len(found) == 1 else None


def arch_ordered(hues: list[str]) -> list[str]:
    """hues in the architectures' fixed order when every hue names one; else as given (the table's order)."""
    order = list(ARCH_COLORS)
    if hues and all(arch_of(h) for h in hues):
        return sorted(hues, key=lambda h: order.index(arch_of(h)))  # stable: one arch's settings keep their order
    return hues


def hue_colors(hues: list[str]) -> dict[str, Any]:
    """Each hue's colour: its architecture's fixed one where it names a single architecture not named by another
    hue, else the next palette colour no architecture uses."""
    archs = [arch_of(h) for h in hues]
    fixed = {h: ARCH_COLORS[a] for h, a in zip(hues, archs, strict=True) if a and archs.count(a) == 1}
    taken = {matplotlib.colors.to_hex(c) for c in fixed.values()}
    spare = [c for c in sns.color_palette("tab10", 10).as_hex() if c not in taken]
    rest = [h for h in hues if h not in fixed]
    extra = spare[: len(rest)] if len(rest) <= len(spare) else _palette(len(rest))
    return {**fixed, **dict(zip(rest, extra, strict=True))}


def _acc_axis(ax: Any, metric: str) -> None:
    """Accuracies on their whole range, [0, 1]: comparable across panels, never below 0."""
    if "acc" in metric.split("/")[-1]:
        ax.set_ylim(0, 1)
        for artist in [*ax.lines, *ax.collections]:  # a point at exactly 0 or 1 is drawn whole, not cut in half
            artist.set_clip_on(False)


def _finished(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["status"] == "finished"]


# ------------------------------------------------------------------ lines: one panel per task, one colour per row
def whole_number_axis(axis: Any) -> None:
    """Steps and lengths are whole; at most 6 ticks, thousands as '2k', so that labels of a 7,000-step run do
    not run into each other in a panel a third of the page wide (they did: '3200400048005600')."""
    axis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=6, integer=True, steps=[1, 2, 2.5, 5, 10]))
    count_ticks(axis)


def count_ticks(axis: Any) -> None:
    """Tick labels as counts: 30411 -> '30.4k'."""
    axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: fmt_count(v)))


def _lines(fig_: Figure, data: pd.DataFrame, x: str, metrics: list[str], out: Path, xlabel: str | dict[str, str],
           ylabel: Any, baseline: Optional[str], shade: Optional[dict[str, float]] = None) -> list[str]:
    """Mean over seeds with a min–max band: rows = metrics, columns = tasks, one shared legend; with more than
    MAX_LEGEND rows, small multiples of the first metric instead (each row in colour over the others in grey).
    shade: per facet, the x beyond which the panel is shaded grey (lengths never seen in training); xlabel: one
    for every panel, or one per facet."""
    facets = ordered(data["facet"], data["order"])
    hues = arch_ordered(ordered(data["hue"], data["order"]))
    colors = hue_colors(hues)
    if len(hues) <= MAX_LEGEND and len(facets) == 1:  # one task: its metrics side by side
        panels = [(m, facets[0], None) for m in metrics]
        ncol, nrow = len(metrics), 1
    elif len(hues) <= MAX_LEGEND:  # at most 3 tasks across, so that a panel keeps its size on a 1280 px page
        ncol = across(len(facets))
        per_metric = math.ceil(len(facets) / ncol)
        panels = [(m, f, None) for m in metrics for f in facets + [None] * (per_metric * ncol - len(facets))]
        nrow = len(metrics) * per_metric
    else:
        metrics = metrics[:1]
        panels = [(metrics[0], f, h) for f in facets for h in hues if ((data["facet"] == f) & (data["hue"] == h)).any()]
        ncol = min(4, len(panels))
        nrow = math.ceil(len(panels) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.0 * ncol + (2.4 if len(hues) <= MAX_LEGEND else 0), 3.2 * nrow),
                             squeeze=False)
    for ax, (m, f, only) in zip(axes.ravel(), panels, strict=False):
        if f is None:  # the empty end of a row of tasks
            ax.set_visible(False)
            continue
        d = data[(data["facet"] == f) & data[m].notna()]
        if only is not None:  # the other rows as grey context, the baseline dashed, this row in colour
            for h, part in d.groupby("hue", sort=False):
                if h != only:
                    mean = part.groupby(x)[m].mean()
                    ax.plot(mean.index, mean.values, color="0.2" if h == baseline else "0.8",
                            ls="--" if h == baseline else "-", lw=1.2 if h == baseline else 0.8, zorder=1)
            d = d[d["hue"] == only]
        present = [h for h in hues if h in set(d["hue"])]
        sns.lineplot(data=d, x=x, y=m, hue="hue", hue_order=present, palette=colors, errorbar=BAND, marker="o",
                     markersize=5, ax=ax, legend=False)
        fig_.targets += hover_columns(ax, d, x, m, present, f"{f}: " if f else "",
                                      (xlabel.get(f, "") if isinstance(xlabel, dict) else xlabel).split(" (")[0])
        edge = (shade or {}).get(f)
        if edge is not None and len(d) and d[x].max() > edge:
            ax.axvspan(edge + 0.5, d[x].max() + 0.5, color="0.92", zorder=0)
        ax.set_xlabel(xlabel.get(f, "") if isinstance(xlabel, dict) else xlabel)
        ax.set_ylabel(ylabel(m))
        whole_number_axis(ax.xaxis) if x in ("step", "length") else count_ticks(ax.xaxis)
        if m.endswith("tokens_per_s"):
            count_ticks(ax.yaxis)
        _acc_axis(ax, m)
        title = only if only is not None else (f or ylabel(m))
        if only is not None and f:
            title = f"{f}: {only}"
        ax.set_title(title, fontsize=11)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    if len(hues) <= MAX_LEGEND and len(hues) > 1:
        handles = [plt.Line2D([], [], color=colors[h], marker="o", label=h) for h in hues]
        fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 0.97), frameon=False, title="row")
    fig.tight_layout()
    fig_.files = save(fig, out, fig_.name, fig_)
    if len(hues) > MAX_LEGEND:
        fig_.caption = (f"One panel per row ({len(hues)} rows: too many for one legend): the row in colour, "
                        + ("the baseline dashed, " if baseline else "") + "the other rows in grey. ")
    return metrics


def hover_columns(ax: Any, d: pd.DataFrame, x: str, m: str, hues: list[str], where: str, xname: str) -> list:
    """Hover boxes, one per x column of a panel (at most MAX_COLUMNS: every k-th x of a long curve), each
    listing the rows' means there with their seeds' range, as the lines and bands draw them."""
    from matplotlib.transforms import blended_transform_factory

    from ablate.report.hover import MAX_COLUMNS, num

    if d.empty:
        return []
    stats = d.groupby(["hue", x])[m].agg(["mean", "min", "max", "count"])
    xs = sorted(d[x].unique())
    k = math.ceil(len(xs) / MAX_COLUMNS)
    xs = xs[::-1][::k][::-1]  # every k-th, the last one kept
    edges = [xs[0] - (xs[1] - xs[0]) / 2 if len(xs) > 1 else xs[0] - 0.5]
    edges += [(a + b) / 2 for a, b in zip(xs, xs[1:])] + [xs[-1] + (xs[-1] - xs[-2]) / 2 if len(xs) > 1
                                                           else xs[0] + 0.5]
    lo, hi = ax.get_xlim()
    blend = blended_transform_factory(ax.transData, ax.transAxes)
    targets = []
    for i, at in enumerate(xs):
        lines = []
        for h in hues:
            if (h, at) in stats.index:
                st = stats.loc[(h, at)]
                spread = f" (seeds {num(st['min'])} to {num(st['max'])})" if st["count"] > 1 and st["max"] > st[
                    "min"] else ""
                lines.append(f"{h}: {num(st['mean'])}{spread}")
        if lines:
            at_text = fmt_count(at) if float(at).is_integer() else num(at)
            targets.append((blend, (max(edges[i], lo), 0, min(edges[i + 1], hi), 1),
                            f"{where}{xname} {at_text}, {metric_name(m)}\n" + "\n".join(lines)))
    return targets


def across(n: int) -> int:
    """Panels per row for n tasks: at most 3 (legible on a 1280 px page), 2 x 2 for four."""
    return 2 if n == 4 else min(n, 3)


def facet_axes(n: int, legend_width: float = 0.0) -> tuple[Any, list[Any]]:
    """A figure of n task panels, across(n) a row at 4.2 x 3.6 inches each (plus legend_width on the right for a
    legend), the unused end of the last row hidden; its n axes in order."""
    ncol = across(n)
    nrow = math.ceil(n / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol + legend_width, 3.6 * nrow), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, list(axes.ravel()[:n])


def decade_ticks(axis: Any) -> None:
    """A log axis's labels at 1, 2 and 5 per decade, no minor labels (they collide at 2x..9x), as counts. Call it
    once the data is drawn: on an axis spanning under a decade 1-2-5 can leave one label, and matplotlib then
    falls back to linear ticks that crowd the axis's right end ('350G 400G450G'), so 3 is added there."""
    lo, hi = sorted(axis.get_view_interval())
    subs = (1.0, 2.0, 5.0) if lo > 0 and hi / lo >= 10 else (1.0, 2.0, 3.0, 5.0)
    axis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=subs))
    axis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    count_ticks(axis)


def _runs_data(df: pd.DataFrame, root: Path, name: str, s: Summary) -> pd.DataFrame:
    """The per-run CSV `name` of every finished run, with facet, hue, order and seed columns."""
    runs = label_runs(_finished(df), s)
    parts = []
    for _, r in runs.iterrows():
        path = root / str(r["run_id"]) / name
        if path.is_file():
            try:
                part = pd.read_csv(path)
            except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError):
                continue
            parts.append(part.assign(facet=r["facet"], hue=r["hue"], order=r["order"], seed=r["seed"],
                                     run_id=r["run_id"]))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


# report.x -> (metrics.csv column, axis label)
X_AXES = {"step": ("step", "training step"), "flops": ("train/flops", "training FLOPs (cumulative)"),
          "seconds": ("train/seconds", "training seconds (cumulative)")}


def at_steps(logged: pd.DataFrame, val: pd.DataFrame, col: str) -> pd.Series:
    """Each row of val's cumulative `col` at its step, per run (run_id) from the training rows of `logged` that
    record it: interpolated between logged steps (0 before the first step; metrics.csv's step s is after s + 1
    optimizer steps), and beyond the last logged step at its mean rate per step. NaN for a run without any."""
    out = pd.Series(np.nan, index=val.index, dtype=float)
    if col not in logged:
        return out
    for rid, rows in val.groupby("run_id"):
        mine = logged[(logged["run_id"] == rid) & logged[col].notna()].sort_values("step")
        if mine.empty:
            continue
        steps = np.r_[-1.0, mine["step"].to_numpy(float)]
        values = np.r_[0.0, mine[col].to_numpy(float)]
        at = rows["step"].to_numpy(float)
        got = np.interp(at, steps, values)
        beyond = at > steps[-1]
        got[beyond] = values[-1] * (at[beyond] + 1) / (steps[-1] + 1)
        out[rows.index] = got
    return out


def learning_curves(df: pd.DataFrame, root: Path, out: Path, s: Summary, x: str = "step") -> Figure:
    """Validation metric (and loss) vs training step, or cumulative training FLOPs or seconds (report.x): one
    panel per task, one colour per row."""
    fig_ = Figure("learning_curves", "How fast does each row learn?")
    curves = _runs_data(df, root, "metrics.csv", s)
    logged = curves
    if curves.empty or "step" not in curves:
        fig_.skipped = "no run has a metrics.csv (no finished runs with logged validation)"
        return fig_
    metric = s.primary
    wanted = ["val/" + metric.split("/", 1)[-1], "val/seq_acc", "val/acc", "val/token_acc"]
    first = next((m for m in wanted if m in curves and curves[m].notna().any()), None)
    panels = [m for m in dict.fromkeys([first, "val/loss"]) if m and m in curves and curves[m].notna().any()]
    if not panels:
        fig_.skipped = "the runs' metrics.csv have no validation metrics (val/...)"
        return fig_
    points = curves[curves[panels[0]].notna()].groupby("run_id")["step"].nunique()
    if points.max() < 2:
        fig_.skipped = ("every run was validated once only, so there is no curve to draw (validate more often: "
                        "train.val_every, or more train.max_epochs); the final numbers are in the table")
        return fig_
    runs = label_runs(_finished(df), s)
    curves, held = hold_last(curves[curves[panels].notna().any(axis=1)], panels)
    column, xlabel = X_AXES[x]
    xcol, note = "step", ""
    if x != "step":
        curves = curves.assign(compute=at_steps(logged, curves, column))
        if curves["compute"].isna().any():  # runs from before train/flops was recorded
            note = f" Drawn against training steps: not every run records {column}."
            xlabel = "training step"
        else:  # seeds of a row differ a little (seconds): each step at the row's mean, so the seeds line up
            curves["compute"] = curves.groupby(["facet", "hue", "step"])["compute"].transform("mean")
            xcol = "compute"
    else:
        xlabel = "training step"
    panels = _lines(fig_, curves, xcol, panels, out, xlabel,
           lambda m: f"validation {metric_name(m)} ({'higher' if better(m) == 'max' else 'lower'} is better)",
           baseline_hue(runs, s))
    n_seeds = int(curves.groupby("hue")["seed"].nunique().max())
    fig_.caption += (f"Validation {', '.join(metric_name(m) for m in panels)} after each validation; line = mean "
                    f"over seeds, band = min–max over seeds (up to {n_seeds} seed{'s' * (n_seeds != 1)} a row)"
                    + ("; a seed that stopped sooner (at its target or a plateau) holds its last value to the end "
                       "of its row's longest run, so the mean does not jump when it stops" if held else "")
                    + ("; one panel per task." if curves["facet"].nunique() > 1 else ".") + note)
    return fig_


def hold_last(val: pd.DataFrame, cols: list[str]) -> tuple[pd.DataFrame, bool]:
    """Each run's validations extended, at its last values, to every later step its row (facet, hue) has: a
    row's mean over seeds then averages the same seeds at every step (without it, a seed that stopped at
    its target drops out and the mean falls to the slower seeds' — a drop no model made). True if any."""
    parts, held = [], False
    for _, row in val.groupby(["facet", "hue"], sort=False):
        steps = sorted(row["step"].unique())
        for _, run in row.groupby("run_id", sort=False):
            last = run.sort_values("step").iloc[-1]
            later = [st for st in steps if st > last["step"]]
            parts.append(run)
            if later:
                held = True
                parts.append(pd.DataFrame([last] * len(later)).assign(step=later))
    return (pd.concat(parts, ignore_index=True) if parts else val), held


# ------------------------------------------------------------------ by length
def by_length(df: pd.DataFrame, root: Path, out: Path, s: Summary) -> Figure:
    """Test accuracy per length, one line per row (as Bahdanau et al. 2015, Fig. 2): the length each task's split
    is defined by (input length; SCAN's length split: output length), said on the axis."""
    fig_ = Figure("by_length", "How does accuracy fall with input length?")
    raw = _runs_data(df, root, "by_length.csv", s)
    if raw.empty or not ({"length", "src_len"} & set(raw)):
        fig_.skipped = "no run has a by_length.csv (test metrics per input length)"
        fig_.inputs_missing = True
        return fig_
    runs = label_runs(_finished(df), s)
    declared = dict(zip(runs["run_id"], runs["length_by"], strict=True)) if "length_by" in runs else {}
    data = regroup(raw, declared)
    if data.empty:
        fig_.skipped = "no run's by_length.csv has a length column (src_len, or length in older runs)"
        return fig_
    axes = axis_of(data)
    words = {SHORT[c] for c in axes.values()}
    fig_.title = f"How does accuracy fall with {words.pop() if len(words) == 1 else 'length'}?"
    first = s.primary.split("/", 1)[-1]
    panels = [m for m in dict.fromkeys([first, "seq_acc", "token_acc"]) if m in data and data[m].notna().any()]
    if not panels:
        fig_.skipped = "by_length.csv has neither seq_acc nor token_acc"
        return fig_
    if data.groupby("facet")["length"].nunique().max() < 2:
        fig_.skipped = (f"every test example has the same {_words(axes)} ({_lengths(data)}), so accuracy cannot "
                        "vary with it")
        return fig_
    if data.groupby(["facet", "hue"])["length"].nunique().max() < 2:  # e.g. throughput: a length per row
        fig_.skipped = (f"each row's test examples have a single {_words(axes)} ({_lengths(data)} across rows), so "
                        "no row has a curve; the table compares the rows")
        return fig_
    train_max = _train_lengths(runs, axes)
    if len(panels) > 1 and all(_same(data[panels[0]], data[m]) for m in panels[1:]):
        panels = panels[:1]  # e.g. a one-token target: seq acc is token acc
    panels = _lines(fig_, data, "length", panels, out, {f: AXIS[c] for f, c in axes.items()},
                    lambda m: f"test {metric_name(m)}", baseline_hue(runs, s), shade=train_max)
    told = " (the length this task's split is defined by)" if "tgt_len" in axes.values() else ""
    fig_.caption += (f"Test {' and '.join(metric_name(m) for m in panels)} of the test examples of each "
                     f"{_words(axes)}{told}; line = mean over seeds, band = min–max over seeds"
                     + (f"; grey = longer than any training {_words(axes).replace(' length', '')}" if any(
                         data.loc[data["facet"] == f, "length"].max() > m for f, m in train_max.items()) else "")
                     + ".")
    return fig_


def _words(axes: dict[str, str]) -> str:
    """'input length', 'output length', or both in panel order."""
    return " / ".join(dict.fromkeys(SHORT[c] for c in axes.values()))


def _train_lengths(runs: pd.DataFrame, axes: Optional[dict[str, str]] = None) -> dict[str, float]:
    """Per facet, the longest training example of its runs in the unit drawn: result.json's max_train_length
    (in its length_by's unit) where the facet is drawn by that column, else max_train_src_len (by_length.csv's
    old length), or for run stores older than that key the task's max_len."""
    out: dict[str, float] = {}
    for f, part in runs.groupby("facet", sort=False):
        col = (axes or {}).get(f, "src_len")
        mine = part[part["length_by"] == col] if "length_by" in part else part.iloc[0:0]
        keys = [("max_train_length", mine)] + ([("max_train_src_len", part), ("task.max_len", part)]
                                               if col != "tgt_len" else [])
        for key, rows in keys:
            vals = pd.to_numeric(rows[key], errors="coerce").dropna() if key in rows else pd.Series(dtype=float)
            if len(vals):
                out[f] = float(vals.max())
                break
    return out


def _lengths(data: pd.DataFrame) -> str:
    return ", ".join(str(int(v)) for v in sorted(data["length"].dropna().unique()))


def _same(a: pd.Series, b: pd.Series) -> bool:
    x, y = a.to_numpy(float), b.to_numpy(float)
    return bool(np.allclose(x, y, equal_nan=True))


# ------------------------------------------------------------------ throughput
def throughput(df: pd.DataFrame, out: Path, s: Summary) -> Figure:
    """Training tokens/s and greedy decoding tokens/s against the sequence length the experiment varies within a
    task, one line per row: both sides of Vaswani et al.'s Table 1 (parallel training, sequential decoding)."""
    fig_ = Figure("throughput", "How do training and decoding speed scale with sequence length?")
    keys = s.keys
    length = next((k for k in LENGTH_KEYS if k in keys), None) or next(
        (k for k in keys if k.startswith("task.") and "len" in k), None)
    no_axis = ("the experiment does not vary a sequence length within a task (e.g. grid: {task.max_len: [...]}), "
               "so there is no throughput-by-length curve; tokens/s per row is in the table")
    if length is None:
        fig_.skipped = no_axis
        return fig_
    data = _finished(df)
    data = data[pd.to_numeric(data.get("tokens_per_s"), errors="coerce").notna()] if "tokens_per_s" in data else data
    if data.empty or "tokens_per_s" not in data:
        fig_.skipped = "no finished run recorded tokens_per_s"
        return fig_
    runs = label_runs(data, s, exclude=tuple(k for k in keys if k.startswith("task.") and "len" in k))
    speeds = ["tokens_per_s"] + (["decode_tokens_per_s"] if "decode_tokens_per_s" in runs
                                 and pd.to_numeric(runs["decode_tokens_per_s"], errors="coerce").notna().any() else [])
    runs = runs.assign(length=pd.to_numeric(runs[length], errors="coerce"),
                       **{m: pd.to_numeric(runs[m], errors="coerce").astype(float) for m in speeds})
    if runs.groupby("facet")["length"].nunique().max() < 2:
        fig_.skipped = no_axis
        return fig_
    labels = {"tokens_per_s": "training throughput (tokens/s)", "decode_tokens_per_s": "greedy decoding (tokens/s)"}
    _lines(fig_, runs, "length", speeds, out, f"{key_name(length)} ({length}, tokens)", labels.__getitem__,
           baseline_hue(runs, s))
    fig_.caption += (f"Against {length}: source + target tokens per second of training steps"
                     + (" (left), and tokens per second of greedy free-running decoding of the test split (right; "
                        "each new token waits for the one before)" if len(speeds) > 1 else "")
                     + "; mean over seeds, band = min–max. Runs that shared a machine have noisy timings.")
    return fig_


# ------------------------------------------------------------------ params vs metric
def params_vs_metric(df: pd.DataFrame, s: Summary, out: Path) -> Figure:
    """Each row's mean metric (± std over seeds) at its true parameter count, one panel per task."""
    fig_ = Figure("params_vs_metric", f"Does a better {metric_name(s.primary)} just cost more parameters?")
    f = s.frame.dropna(subset=[f"{s.primary}/mean", "params/mean"]) if f"{s.primary}/mean" in s.frame else None
    if f is None or f.empty:
        fig_.skipped = f"no finished row has both params and {s.primary}"
        return fig_
    runs = label_runs(_finished(df), s).drop_duplicates("label").set_index("label")
    f = f.assign(facet=f["label"].map(runs["facet"]).fillna(""), hue=f["label"].map(runs["hue"]).fillna(f["label"]))
    if f.groupby("facet")["label"].nunique().max() < 2:
        fig_.skipped = "each panel would hold a single row, so there is nothing to compare"
        return fig_
    if f["params/mean"].nunique() < 2:
        fig_.skipped = (f"every row has the same parameter count ({fmt_count(f['params/mean'].iloc[0])}), "
                        "so there is nothing to plot against it")
        return fig_
    facets, hues = ordered(f["facet"]), ordered(f["hue"])
    shared = int(f.groupby(["facet", "params/mean"]).size().max())
    if len(hues) > MAX_LEGEND and shared > 2:  # labels of many points at one x would cover each other
        fig_.skipped = (f"{shared} of {len(f)} rows share one parameter count "
                        f"({fmt_count(f['params/mean'].mode().iloc[0])}), so their points would sit on top of each "
                        "other; the table's params column compares them")
        return fig_
    hues = arch_ordered(hues)
    colors = hue_colors(hues)
    markers = dict(zip(hues, "osD^vPX*<>ph" * 4, strict=False))
    direct = len(hues) > MAX_LEGEND  # too many for a legend: each point is labelled where it is
    fig, axes = facet_axes(len(facets), legend_width=0 if direct else 2.4)
    for ax, facet in zip(axes, facets, strict=True):
        part = f[f["facet"] == facet]
        for _, r in part.iterrows():
            std = r[f"{s.primary}/std"]
            ax.errorbar(r["params/mean"], r[f"{s.primary}/mean"], yerr=None if math.isnan(std) else std,
                        fmt=markers[r["hue"]], capsize=3, color=colors[r["hue"]], markersize=7, alpha=0.85)
        if part["params/mean"].max() > 10 * part["params/mean"].min():
            ax.set_xscale("log")
            decade_ticks(ax.xaxis)
        else:
            count_ticks(ax.xaxis)
        ax.set_xlabel("parameters")
        ax.set_ylabel(f"test {metric_name(s.primary)}")
        _acc_axis(ax, s.primary)
        ax.set_title(facet or f"test {metric_name(s.primary)} vs parameter count", fontsize=11)
        ax.grid(alpha=0.3)
    if not direct:
        handles = [plt.Line2D([], [], color=colors[h], marker=markers[h], ls="", label=h) for h in hues]
        fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 0.95), frameon=False, title="row")
    fig.tight_layout()
    for ax, facet in zip(axes, facets, strict=True) if direct else []:  # measured in the final layout
        part = f[f["facet"] == facet]
        label_points(ax, [(r["params/mean"], r[f"{s.primary}/mean"], r["hue"]) for _, r in part.iterrows()])
    fig_.files = save(fig, out, fig_.name, fig_)
    fig_.caption = (f"One point per row at its parameter count: mean test {metric_name(s.primary)} over seeds, "
                    "error bar = ±1 std. Rows with the same parameter count share an x value (markers differ).")
    return fig_


def label_points(ax: Any, points: list[tuple[float, float, str]], fontsize: float = 7) -> list[Any]:
    """Label each (x, y) point where it is, never over another label (of any panel), a title, a tick or axis label
    or another point: each label, top point first, takes the free slot nearest its point (to its right, or left
    where it would leave the panel), stepping a line down or up, with a leader line once it has moved; a label
    wider than ~half the panel breaks at its commas. Call it once the layout is final (boxes are measured with
    the figure's renderer)."""
    from matplotlib.transforms import Bbox

    fig = ax.figure
    fig.canvas.draw()  # titles and tick labels take their final place at draw time
    renderer = fig.canvas.get_renderer()
    ppp = fig.dpi / 72  # display pixels per point
    gap = 2 * ppp
    # every text already in the figure (titles, ticks, axis labels, labels placed before in any panel: the text
    # alone, without an annotation's leader line) and every point of this panel
    taken = [matplotlib.text.Text.get_window_extent(t, renderer) for t in fig.findobj(matplotlib.text.Text)
             if t.get_visible() and t.get_text().strip() and t.figure is fig]
    where = ax.transData.transform([(x, y) for x, y, _ in points])
    dot = 3.5 * ppp
    taken += [Bbox.from_extents(px - dot, py - dot, px + dot, py + dot) for px, py in where]
    taken += [Bbox.from_extents(a - ppp, b, c + ppp, d) for a, b, c, d in _bar_extents(ax)]  # and error bars
    taken += [a.get_window_extent(renderer) for a in fig.axes if a is not ax and a.get_visible()]  # other panels
    frame = ax.get_window_extent(renderer)
    texts = []
    for i in sorted(range(len(points)), key=lambda i: (-where[i][1], where[i][0])):
        (x, y, text), (px, py) = points[i], where[i]
        text = _fit_width(str(text), fig, fontsize, 0.55 * frame.width, renderer)
        w, h = _size(fig, text, fontsize, renderer)
        left, bottom = _free_spot(px, py, w, h, h / (text.count("\n") + 1) + gap, frame, taken, 4 * ppp)
        taken.append(Bbox.from_bounds(left - gap / 2, bottom - gap / 2, w + gap, h + gap))
        right_side = left >= px
        dx, dy = ((left - px) if right_side else (left + w - px)) / ppp, (bottom - py) / ppp
        moved = abs(bottom - (py + 3 * ppp)) > 0.5 * h
        texts.append(ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize,
                                 va="bottom", ha="left" if right_side else "right", annotation_clip=False,
                                 arrowprops=dict(arrowstyle="-", lw=0.5, color="0.5") if moved else None))
    return texts


def _bar_extents(ax: Any) -> list[tuple[float, float, float, float]]:
    """(x0, y0, x1, y1) in display pixels of every error bar of a panel."""
    from matplotlib.container import ErrorbarContainer

    out = []
    for c in ax.containers:
        if isinstance(c, ErrorbarContainer):
            for coll in c.lines[2]:
                for seg in coll.get_segments():
                    (a, b), (x, y) = ax.transData.transform(seg[[0, -1]])
                    out.append((min(a, x), min(b, y), max(a, x), max(b, y)))
    return out


def _size(fig: Any, text: str, fontsize: float, renderer: Any) -> tuple[float, float]:
    """(width, height) in display pixels of text set at fontsize (measured off-data: a data position may be
    invalid on a log axis)."""
    probe = fig.text(0, 0, text, fontsize=fontsize)
    box = probe.get_window_extent(renderer)
    probe.remove()
    return box.width, box.height


def _fit_width(text: str, fig: Any, fontsize: float, width: float, renderer: Any) -> str:
    """text broken into lines at its ', ' where it is wider than width (display pixels)."""
    if _size(fig, text, fontsize, renderer)[0] <= width or ", " not in text:
        return text
    lines, line = [], ""
    for part in text.split(", "):
        trial = f"{line}, {part}" if line else part
        if line and _size(fig, trial + ",", fontsize, renderer)[0] > width:
            lines.append(line + ",")
            line = part
        else:
            line = trial
    return "\n".join(lines + [line])


def _free_spot(px: float, py: float, w: float, h: float, step: float, frame: Any, taken: list[Any],
               pad: float) -> tuple[float, float]:
    """(left, bottom) in display pixels of a w x h label for the point (px, py) that overlaps nothing taken:
    the nearest line (0, -1, +1, -2, ...) with the label inside the panel, to the point's right, else to its
    left; when the panel has no room left, the nearest free line below it."""
    def overlaps(left: float, bottom: float) -> bool:
        return any(left < b.x1 and b.x0 < left + w and bottom < b.y1 and b.y0 < bottom + h for b in taken)

    sides = [px + pad, px - pad - w]
    inside = [x for x in sides if frame.x0 <= x and x + w <= frame.x1] or [min(max(sides[0], frame.x0),
                                                                             frame.x1 - w)]
    base = py + pad * 0.75
    for k in range(400):
        bottom = base + (k + 1) // 2 * (-1 if k % 2 else 1) * step  # 0, -1, +1, -2, +2, ... lines
        if frame.y0 <= bottom and bottom + h <= frame.y1:
            for left in inside:
                if not overlaps(left, bottom):
                    return left, bottom
    bottom = min(base, frame.y0 - h)  # no room in the panel: the first free line below it
    while all(overlaps(left, bottom) for left in inside):
        bottom -= step
    return next(left for left in inside if not overlaps(left, bottom)), bottom


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
            score = pd.to_numeric(pd.Series([best.get(metric)]), errors="coerce").iloc[0]
            if "acc" in metric.split("/")[-1] and not score >= LEARNED:  # a map of a model that failed shows noise
                fig_.skipped = (f"the best {arch} run did not learn the task ({metric_name(metric)} {score:.3f} "
                                f"< {LEARNED}), so its attention shows no mechanism worth reading")
                continue
            try:
                att = compute(root / best["run_id"], text.split() if text is not None else None)
            except (AttendError, OSError, RuntimeError, KeyError, ValueError) as e:
                fig_.skipped = f"could not compute attention for run {best['run_id']}: {e}"
                fig_.inputs_missing = not (root / best["run_id"] / "checkpoints").is_dir()
                continue
            _attention_figure(fig_, att, out, best, metric, root, names.get(best["label"]) or best["label"])
    return figures


LEARNED = 0.5  # the accuracy from which an attention map is drawn: below it the model did not learn the task
LEGIBLE_CELL = 0.22  # inches: a cell from which 9-point token labels, one a cell, stay apart
ANNOTATED_CELL = 0.3  # inches: a cell wide enough for its weight written at 7 points ("0.00")
TALLEST = 20.0  # inches: the tallest attention panel (queries down)


def _attention_figure(fig_: Figure, att: Any, out: Path, best: pd.Series, metric: str, root: Path,
                      row: str) -> None:
    from ablate.report.attend import axis_names, draw, module_title

    arch = att.arch
    names = [n for n in att.maps if (n.startswith("encoder") and n.endswith("self")) or "cross" in n]
    if not names:
        fig_.skipped = f"run {best['run_id']} has no encoder self- or decoder cross-attention"
        return
    # The last encoder self- and decoder cross-attention layer, every head: large enough to read the tokens
    # (every layer is one `ablate attend` away).
    last = {}
    for n in names:
        last[n.split(".")[0] + ("cross" if "cross" in n else "self")] = n
    names = list(last.values())
    heads = max(att.maps[n].shape[0] for n in names)
    # Inches per token: 9-point labels stay legible down to ~0.22 in (21 px at the page's 96 px per inch). The
    # page's ~10.8 in width limits the keys (columns) only: as many heads a row as fit, shrinking the cells (not
    # below that) to fit two a row; long inputs (no per-token labels then) shrink so that two panels fit a row.
    # Queries make a panel taller, not its cells smaller (sized by the longest of either, SCAN's 9x9 encoder
    # maps beside 25 output actions were printed at 0.13 in a cell), up to TALLEST a panel.
    keys = max(len(att.axes(n)[1]) for n in names)
    queries = max(len(att.axes(n)[0]) for n in names)
    page, margin, chrome = 10.8, 1.2, 1.6  # inches: content width, colorbar, a panel's labels
    cell = 0.36 if keys <= 24 else min(0.36, 3.2 / keys)
    if heads > 1 and 2 * (cell * keys + chrome) + margin > page:
        cell = max(min(cell, ((page - margin) / 2 - chrome) / keys), min(cell, 0.22))
    cell = min(cell, TALLEST / queries)
    width = cell * keys + chrome
    per_row = min(heads, 4, max(1, int((page - margin) // width)))
    rows_of = {n: math.ceil(att.maps[n].shape[0] / per_row) for n in names}
    heights = [cell * len(att.axes(n)[0]) + 1.4 for n in names for _ in range(rows_of[n])]
    fig, axes = plt.subplots(len(heights), per_row, figsize=(width * per_row + 1.2, sum(heights) + 0.4),
                             squeeze=False, layout="constrained", gridspec_kw={"height_ratios": heights})
    used = set()
    r0 = 0
    for name in names:
        rows, cols = att.axes(name)
        ylab, xlab = axis_names(name)
        for h in range(att.maps[name].shape[0]):
            ax = axes[r0 + h // per_row][h % per_row]
            used.add(id(ax))
            draw(ax, att.maps[name][h], rows, cols, f"{module_title(name)}\nhead {h + 1}", colorbar=False,
                 small=cell >= LEGIBLE_CELL and len(rows) <= 64, annotate=cell >= ANNOTATED_CELL and len(cols) <= 10)
            ax.tick_params(labelsize=9)
            ax.set_xlabel(xlab, fontsize=9)
            ax.set_ylabel(ylab if h % per_row == 0 else "", fontsize=9)
            if h % per_row:  # a module's heads share their query tokens: named once a row, not into the next panel
                ax.tick_params(labelleft=False)
        r0 += rows_of[name]
    for ax in axes.ravel():
        if id(ax) not in used:
            ax.axis("off")
    fig_.wide = True
    fig.colorbar(axes[0][0].collections[0], ax=axes.ravel().tolist(), shrink=0.6, label="attention weight")
    fig_.files = save(fig, out, fig_.name, fig_)
    score = best.get(metric)
    fig_.caption = (f"Run {best['run_id']} ({row}, seed {best['seed']}), the best "
                    f"{arch} run by {metric}" + (f" ({score:.3f})" if _num(score) else "")
                    + f". Input: “{' '.join(att.src)}”; its own output: “{' '.join(att.out)}”. Rows: queries, "
                    "columns: keys; each row sums to 1; the last layer of each kind (every layer and head: "
                    "`ablate attend`). "
                    f"Another input, once the runs exist (`ablate run experiments/{root.name}.yaml`): "
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
              samples: Optional[list[str]] = None, x: str = "step") -> list[Figure]:
    """Every figure of the report, in page order (rows named and ordered as in the table)."""
    sns.set_theme(style="whitegrid", context="notebook")
    from ablate.report.forest import forest

    names = short_names(df, s)  # short row names (task, keys varying within it) for captions
    return [
        *([] if not s.baseline else _safely(forest, "forest", "What does each change do against the baseline?",
                                            df, s, out)),
        *_safely(learning_curves, "learning_curves", "How fast does each row learn?", df, root, out, s, x),
        *_safely(by_length, "by_length", "How does accuracy fall with input length?", df, root, out, s),
        *_safely(throughput, "throughput", "How do training and decoding speed scale with sequence length?", df, out,
                 s),
        *_safely(params_vs_metric, "params_vs_metric", "Does a better score cost more parameters?", df, s, out),
        *_safely(attention, "attention", "Where does the model look?", df, root, out, s.primary, names, samples),
    ]
