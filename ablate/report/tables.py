"""The results table: one row per variant / grid point, metrics as mean ± std over seeds.

summarize() turns the run table (ablate.experiment.results.results_frame) into a
Summary of raw numbers (the CSV); to_markdown / to_latex / to_html render it
with the best value per metric in bold and, given a baseline, a Δ column with a
significance mark from Welch's t-test across seeds.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd

from ablate.report import stats, stops, target
from ablate.report.signatures import signature_notes

DEFAULT_METRICS = ["test/seq_acc", "test/token_acc", "test/loss"]
STATS = [("params", "params"), ("train_time_s", "train time (s)"), ("tokens_per_s", "tokens/s")]
OPTIONAL_STATS = [("decode_tokens_per_s", "decode tokens/s"), ("eval_time_s", "eval s"),  # shown when recorded
                  ("train_flops_per_token", "train FLOPs/token"), ("decode_flops_per_token", "decode FLOPs/token"),
                  ("flops_to_target", "FLOPs to target")]
COUNT_STATS = ("params", "tokens_per_s", "decode_tokens_per_s", "train_flops_per_token", "decode_flops_per_token")
# (steps to target: ablate.report.target)
NAMES = {  # readable column names for config keys, by their last part
    "arch": "arch", "n_heads": "heads", "n_layers": "layers", "d_model": "d_model", "d_ff": "d_ff",
    "d_k": "d_k", "d_v": "d_v", "tie_embeddings": "tied emb.",
    "pos_encoding": "pos. enc.", "causal_mask": "causal mask", "bidirectional": "bidir.",
    "kernel_size": "kernel", "match_params": "params target", "max_len": "max len", "min_len": "min len",
    "test_max_len": "test max len", "test_min_len": "test min len", "vocab_size": "vocab", "n_train": "train size",
    "batch_size": "batch", "max_epochs": "epochs", "lr": "lr", "label_smoothing": "label smoothing",
}
METRIC_NAMES = {"seq_acc": "seq acc", "token_acc": "token acc", "loss": "loss", "bleu": "BLEU", "chrf": "chrF",
                "acc": "acc"}
TEST_NAME = "Welch's two-sided t-test over seeds (scipy.stats.ttest_ind, equal_var=False)"


def key_name(key: str) -> str:
    """'model.n_heads' -> 'heads'; unknown keys keep their last part, underscores as spaces."""
    last = key.split(".")[-1]
    return NAMES.get(last, last.replace("_", " "))


def metric_name(metric: str) -> str:
    """'test/seq_acc' -> 'seq acc'."""
    last = metric.split("/")[-1]
    return METRIC_NAMES.get(last, last.replace("_", " "))


def better(metric: str) -> str:
    """'min' for losses, errors and perplexities, 'max' for everything else (accuracy, BLEU)."""
    low = metric.lower()
    return "min" if any(w in low for w in ("loss", "error", "ppl", "perplexity", "wer", "cer")) else "max"


def welch_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p-value of Welch's t-test; NaN with fewer than 2 values on a side.

    When both sides have zero variance the test is undefined: p = 1 for equal means, 0 otherwise.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if len(a) < 2 or len(b) < 2:
        return math.nan
    # "zero" up to float noise: seeds that all score 1.0 average to 0.9999999999999999 and would make scipy
    # warn about catastrophic cancellation on the user's terminal
    flat = lambda x: np.ptp(x) <= 1e-12 * max(1.0, float(np.abs(x).max()))  # noqa: E731
    if flat(a) and flat(b):
        return 1.0 if flat(np.concatenate([a, b])) else 0.0
    import warnings

    from scipy.stats import ttest_ind

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nearly-equal values: the p-value stands, the note goes
        return float(ttest_ind(a, b, equal_var=False).pvalue)


def family_text(s: Summary) -> str:
    """What the correction was and over which comparisons: 'p Holm-adjusted over the 13 comparisons ...'."""
    sizes = {k: v for k, v in s.family.items() if v}
    if not sizes:
        return "no comparison to correct"
    where = (" per panel (" + "; ".join(f"{k}: {v}" for k, v in sizes.items()) + ")" if len(sizes) > 1 or
             next(iter(sizes)) else f" ({next(iter(sizes.values()))} comparisons)")
    return (f"p Holm-adjusted over the comparisons of each row with the baseline on {metric_name(s.primary)}"
            f"{where}")


def stars(p: float) -> str:
    if p is None or math.isnan(p):
        return ""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""


@dataclass
class Summary:
    frame: pd.DataFrame  # one row per table row, raw numbers: what table.csv holds
    keys: list[str]  # config keys that vary between rows, in column order
    metrics: list[str]
    primary: str
    baseline: Optional[str] = None  # as given in report.baseline
    notes: list[str] = field(default_factory=list)  # things a reader should know (baseline not found, ...)
    failed: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per failed run
    family: dict[str, int] = field(default_factory=dict)  # panel -> comparisons in its Holm family
    clipped: bool = False  # some Δ interval was clipped to the metric's bounds
    bold: bool = True  # report.bold: false for an experiment that measures speed, where "best accuracy" means nothing

    @property
    def has_delta(self) -> bool:
        return f"delta/{self.primary}" in self.frame and self.frame[f"delta/{self.primary}"].notna().any()

    def best(self, metric: str) -> set[str]:
        """Labels of the rows with the best mean of metric among the rows they can be compared with: those of the
        same panel (task and split; ties all count; none in a panel where every row ties, none without bold)."""
        col = self.frame.get(f"{metric}/mean")
        if col is None or not self.bold:
            return set()
        out: set[str] = set()
        for _, idx in col.groupby(panels(self), sort=False).groups.items():
            c = col.loc[idx]
            if c.dropna().nunique() < 2:
                continue
            target = c.min() if better(metric) == "min" else c.max()
            out |= set(self.frame.loc[c.index[np.isclose(c, target, rtol=0, atol=1e-12)], "label"])
        return out

    def best_steps(self) -> set[str]:
        """target.best_labels within each panel."""
        if not self.bold:
            return set()
        return set().union(*(target.best_labels(self.frame.loc[idx])
                             for _, idx in self.frame.groupby(panels(self), sort=False).groups.items()))


def _hashable(v: Any) -> Any:
    return v if isinstance(v, (str, int, float, bool, type(None))) else str(v)


def varying_keys(df: pd.DataFrame, candidates: Optional[list[str]] = None) -> list[str]:
    """Config columns (task.* model.* train.*) whose values differ between runs; candidates first if given."""
    cols = []
    for c in candidates or []:  # a mapping-valued axis (grid: {task: [{...}, ...]}) stands for the keys under it
        cols += [c] if c in df.columns else [k for k in df.columns if k.startswith(c + ".")]
    cols = list(dict.fromkeys(cols))
    if not cols and not candidates:
        cols = [c for c in df.columns if c.split(".")[0] in ("task", "model", "train", "eval") and c != "task.seed"]
    return [c for c in cols if df[c].map(_hashable).astype(str).nunique(dropna=False) > 1]


def default_metrics(df: pd.DataFrame, primary: str) -> list[str]:
    extra = sorted(c for c in df.columns if c.startswith("test/") and c not in DEFAULT_METRICS
                   and c not in stops.COUNTS)
    out = [m for m in [primary, *DEFAULT_METRICS, *extra] if m in df.columns]
    return list(dict.fromkeys(out))


def summarize(df: pd.DataFrame, primary: str = "test/seq_acc", metrics: Optional[list[str]] = None,
              baseline: Optional[str] = None, keys: Optional[list[str]] = None,
              order: Optional[list[str]] = None) -> Summary:
    """Aggregate runs (one row each) into table rows (one per label): mean, std, n, Δ and p per metric.

    keys: the config keys that vary (default: found in df); order: labels in table order (default: as found).
    Failed runs are counted per row (n_failed) and returned apart, never averaged in.
    """
    df = df.copy()
    if "label" not in df or df["label"].isna().all():
        df["label"] = df.get("variant", pd.Series("base", index=df.index)).fillna("base")
    df["label"] = df["label"].fillna("").replace("", "base")
    if "variant" not in df:
        df["variant"] = ""
    df["variant"] = df["variant"].fillna("")
    keys = varying_keys(df, keys) if keys is None or keys else []
    missing = [m for m in metrics or [] if m not in df.columns]
    metrics = [m for m in (metrics or default_metrics(df, primary)) if m in df.columns]
    ok = df[df["status"] == "finished"]
    labels = list(dict.fromkeys([*(order or []), *df["label"]]))
    labels = [lab for lab in labels if lab in set(df["label"])]
    rows = []
    for label in labels:
        runs, good = df[df["label"] == label], ok[ok["label"] == label]
        row: dict[str, Any] = {"label": label, "variant": runs["variant"].iloc[0]}
        for k in keys:
            row[k] = runs[k].iloc[0]
        row["n"], row["n_failed"] = len(good), int((runs["status"] != "finished").sum())
        for m in [*metrics, *(s for s, _ in STATS + OPTIONAL_STATS)]:
            vals = pd.to_numeric(good[m], errors="coerce").dropna() if m in good else pd.Series(dtype=float)
            row[f"{m}/mean"] = vals.mean() if len(vals) else math.nan
            row[f"{m}/std"] = vals.std(ddof=1) if len(vals) > 1 else math.nan
            row[f"{m}/n"] = len(vals)
        if target.has_target(df):
            row.update(target.target_stats(good))
        row.update(stops.row_stats(good))
        rows.append(row)
    frame = pd.DataFrame(rows)
    summary = Summary(frame, keys, metrics, primary, baseline)
    if missing:
        summary.notes.append(f"report.metrics not recorded by these runs, left out: {', '.join(missing)}")
    summary.notes += signature_notes(ok)
    if baseline and not frame.empty:
        _add_deltas(summary, ok)
    failed = df[df["status"] != "finished"]
    summary.failed = failed[[c for c in ("label", "seed", "run_id", "status", "error") if c in failed]].reset_index(
        drop=True)
    return summary


def merge_summaries(parts: list[tuple[str, Summary]]) -> Summary:
    """One table of several experiments' summaries (each computed on its own: its rows, baseline and Holm
    families stay its own); rows are labelled '<experiment>: <label>' and an 'experiment' column leads."""
    frames, failed, keys, metrics, family, notes = [], [], ["experiment"], [], {}, []
    for name, s in parts:
        f = s.frame.copy()
        f.insert(0, "experiment", name)
        f["label"] = name + ": " + f["label"].astype(str)
        if "baseline" in f:
            f["baseline"] = [f"{name}: {b}" if isinstance(b, str) else b for b in f["baseline"]]
        frames.append(f)
        failed.append(s.failed.assign(label=name + ": " + s.failed["label"].astype(str)) if len(s.failed)
                      else s.failed)
        keys += [k for k in s.keys if k not in keys]
        metrics += [m for m in s.metrics if m not in metrics]
        family.update({f"{name}{', ' + k if k else ''}": v for k, v in s.family.items()})
        notes += [f"{name}: {n}" for n in s.notes]
    primaries = list(dict.fromkeys(s.primary for _, s in parts))
    if len(primaries) > 1:
        notes.append(f"the experiments' report.metric differ ({', '.join(primaries)}): Δ and bold follow "
                     f"{primaries[0]}")
    baselines = "; ".join(f"{n}: {s.baseline}" for n, s in parts if s.baseline)
    out = Summary(pd.concat(frames, ignore_index=True), keys, metrics, primaries[0], baselines or None, notes,
                  pd.concat(failed, ignore_index=True), family, any(s.clipped for _, s in parts),
                  all(s.bold for _, s in parts))
    return out


def _add_deltas(s: Summary, ok: pd.DataFrame) -> None:
    """delta/<m> and p/<m> columns against the baseline row: the row labelled `baseline`, or else the row of
    variant `baseline` at the same grid point (the keys that vary within that variant's rows)."""
    f, b = s.frame, s.baseline
    exact = f.index[f["label"] == b].tolist()
    of_b = f[f["variant"] == b]
    if not exact and of_b.empty:
        s.notes.append(f"report.baseline {b!r} matches no row (rows: {', '.join(f['label'])}); no Δ column")
        return
    match = [k for k in s.keys if of_b[k].map(_hashable).astype(str).nunique() > 1]
    base_of: dict[int, Optional[int]] = {}
    for i, row in f.iterrows():
        if exact:
            base_of[i] = exact[0]
            continue
        same = of_b[np.logical_and.reduce([of_b[k].astype(str) == str(row[k]) for k in match])] if match else of_b
        base_of[i] = same.index[0] if len(same) else None
    f["baseline"] = [f.at[j, "label"] if j is not None else None for j in base_of.values()]
    runs_of = {lab: ok[ok["label"] == lab] for lab in f["label"]}
    for m in s.metrics:
        cols: dict[str, list[Any]] = {k: [] for k in ("delta", "p", "ci_low", "ci_high", "seeds_80")}
        for i, j in base_of.items():
            if j is None or i == j:
                for v in cols.values():
                    v.append(math.nan)
                continue
            a = pd.to_numeric(runs_of[f.at[i, "label"]][m], errors="coerce").to_numpy(float)
            c = pd.to_numeric(runs_of[f.at[j, "label"]][m], errors="coerce").to_numpy(float)
            d, lo, hi = stats.welch_ci(a, c)
            lo, hi, moved = stats.clip_interval(lo, hi, stats.delta_bounds(m, f.at[j, f"{m}/mean"]))
            s.clipped |= moved
            cols["delta"].append(f.at[i, f"{m}/mean"] - f.at[j, f"{m}/mean"])
            cols["p"].append(welch_p(a, c))
            cols["ci_low"].append(lo)
            cols["ci_high"].append(hi)
            cols["seeds_80"].append(stats.seeds_for_power(d, stats.pooled_sd(a, c)))
        for k, v in cols.items():
            f[f"{k}/{m}"] = v
    _correct(s)
    if target.has_target(ok):
        _target_tests(s, ok, base_of)
    if not exact and match:
        s.notes.append(f"Δ compares each row with variant {b!r} at the same {', '.join(key_name(k) for k in match)}.")


def panels(s: Summary) -> pd.Series:
    """Each table row's panel: the task and split it answers (the keys columns.FACET_KEYS that vary), '' when one."""
    from ablate.report.columns import FACET_KEYS

    keys = [k for k in FACET_KEYS if k in s.keys]
    if not keys:
        return pd.Series("", index=s.frame.index)
    return pd.Series([", ".join(_value(v) for v in row) for row in s.frame[keys].itertuples(index=False)],
                     index=s.frame.index, dtype=object)


def _correct(s: Summary) -> None:
    """p_adj/<primary>: the primary metric's p-values Holm-adjusted within each panel's family of comparisons
    against the baseline; the marks follow it. Other metrics keep raw p only (exploratory)."""
    f, m = s.frame, s.primary
    f[f"p_adj/{m}"] = math.nan
    for _, idx in f.groupby(panels(s), sort=False).groups.items():
        f.loc[idx, f"p_adj/{m}"] = stats.holm(f.loc[idx, f"p/{m}"].to_numpy(float))
    s.family = {str(k): int(f.loc[idx, f"p/{m}"].notna().sum())
                for k, idx in f.groupby(panels(s), sort=False).groups.items()}


def _target_tests(s: Summary, ok: pd.DataFrame, base_of: dict[int, Optional[int]]) -> None:
    """p/reached (Fisher's exact test on k of n reached) and p/steps_to_target (log-rank, seeds that never
    reached censored at their last step) against the baseline; raw, exploratory."""
    f = s.frame
    fisher, logrank = [], []
    for i, j in base_of.items():
        if j is None or i == j:
            fisher.append(math.nan)
            logrank.append(math.nan)
            continue
        (ta, ea), (tb, eb) = (target.times(ok[ok["label"] == f.at[k, "label"]]) for k in (i, j))
        fisher.append(stats.fisher_reached(int(ea.sum()), len(ea), int(eb.sum()), len(eb)))
        logrank.append(stats.logrank_steps(ta, ea, tb, eb)[0])
    f["p/reached"], f[f"p/{target.COL}"] = fisher, logrank


# ------------------------------------------------------------------ formatting
def fmt(x: float) -> str:
    """A metric value: 3 decimals below 100, 1 above."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.1f}" if abs(x) >= 100 else f"{x:.3f}"


def fmt_count(x: float) -> str:
    """30411 -> '30.4k', 1.2e6 -> '1.20M'."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    for div, unit in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            v = x / div
            return f"{v:.3g}{unit}" if v < 100 else f"{v:.0f}{unit}"
    return f"{x:.0f}" if abs(x) >= 10 or x == int(x) else f"{x:.2g}"


def fmt_time(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}" if x >= 1 else f"{x:.2f}"


def _pm(mean: float, std: float, f=fmt) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    return f(mean) if std is None or math.isnan(std) else f"{f(mean)} ± {f(std)}"


@dataclass
class Cell:
    text: str
    bold: bool = False
    mark: str = ""  # significance stars, rendered as a superscript


def _value(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


@dataclass
class Grid:
    head: list[str]
    body: list[list[Cell]]
    n_lead: int  # leading label columns (left-aligned); the rest are numbers
    constant: list[tuple[str, str]] = field(default_factory=list)  # (column, value) equal in every row, dropped
    repeats: dict[str, str] = field(default_factory=dict)  # dropped metric column -> the column it repeats

    def above(self) -> str:
        """The sentence stated once above the table for the columns it leaves out."""
        parts = []
        if self.constant:
            parts.append("Same in every row: " + "; ".join(f"{h} {v}" for h, v in self.constant) + ".")
        if self.repeats:
            parts.append(" ".join(f"{a} equals {b} in every row (not repeated)." for a, b in self.repeats.items()))
        return " ".join(parts)


def grid(s: Summary) -> Grid:
    """Header and cells of the rendered table (plain text; renderers escape and style), without the columns
    that are equal in every row or repeat another metric (Grid.above states them)."""
    from ablate.report.columns import constant_columns, duplicate_metrics

    f = s.frame
    show_variant = f["variant"].astype(str).nunique() > 1 or (not s.keys and (f["variant"] != "").all())
    sources = lead_sources(s, show_variant)
    lead = [key_name(k) if k != VARIANT else "variant" for k in sources] or ["run"]
    repeats = duplicate_metrics(f, s.metrics, s.primary) if len(f) else {}
    metrics = [m for m in s.metrics if m not in repeats]
    stats = STATS + [(m, t) for m, t in OPTIONAL_STATS if f"{m}/mean" in f and f[f"{m}/mean"].notna().any()]
    arrows = {"max": " ↑", "min": " ↓"}
    # Δ and its mark sit right after the metric they are about (a paper's reader looks there, not at the far end)
    delta_at = metrics.index(s.primary) + 1 if s.has_delta and s.primary in metrics else len(metrics)
    head = lead + [metric_name(m) + arrows[better(m)] for m in metrics[:delta_at]]
    head += [f"Δ {metric_name(s.primary)}"] if s.has_delta else []
    head += [metric_name(m) + arrows[better(m)] for m in metrics[delta_at:]]
    steps_col = f"{target.COL}/median" in f
    head += [target.TITLE] if steps_col else []
    head += ["n", *(title for _, title in stats)]
    best = {m: s.best(m) for m in metrics}
    best_steps = s.best_steps()
    body = []
    for _, r in f.iterrows():
        cells = [Cell(_value(r["variant" if k == VARIANT else k])) for k in sources] or [Cell(r["label"])]
        cells[0].text += f" {stops.row_mark(r)}" if stops.row_mark(r) else ""
        for m in metrics[:delta_at]:
            cells.append(Cell(_pm(r[f"{m}/mean"], r[f"{m}/std"]), bold=r["label"] in best[m]))
        if s.has_delta:
            d, p = r.get(f"delta/{s.primary}"), r.get(f"p_adj/{s.primary}")  # marks follow the corrected p
            if r.get("baseline") == r["label"]:
                cells.append(Cell("baseline"))
            elif d is None or math.isnan(d):
                cells.append(Cell("–"))
            else:
                cells.append(Cell(f"{d:+.3f}" if abs(d) < 100 else f"{d:+.1f}", mark=stars(p)))
        for m in metrics[delta_at:]:
            cells.append(Cell(_pm(r[f"{m}/mean"], r[f"{m}/std"]), bold=r["label"] in best[m]))
        if steps_col:
            cells.append(Cell(target.cell_text(r), bold=r["label"] in best_steps))
        cells.append(Cell(f"{r['n']}" + (f" (+{r['n_failed']} failed)" if r["n_failed"] else "")))
        for m, _ in stats:
            if m in COUNT_STATS:
                cells.append(Cell(fmt_count(r[f"{m}/mean"])))
            elif m == "flops_to_target":  # the mean over the seeds that reached it, and how many did
                k = int(r.get("flops_to_target/n") or 0)
                cells.append(Cell(fmt_count(r[f"{m}/mean"]) + (f" ({k}/{r['n']} reached)" if 0 < k < r["n"]
                                                                 else "")))
            else:
                cells.append(Cell(_pm(r[f"{m}/mean"], r[f"{m}/std"], fmt_time)))
        body.append(cells)
    n_lead = len(lead)
    # The first label column and the primary metric stay: a table needs a row name and the answer.
    keep = {0, n_lead + metrics.index(s.primary) if s.primary in metrics else 0}
    drop = constant_columns(head, body, keep)
    constant = [(head[i].replace(" ↑", "").replace(" ↓", ""), body[0][i].text) for i in drop
                if body[0][i].text != "–"]  # a column empty in every row just goes
    _blank_unchanged(s, body, sources, drop)
    cols = [i for i in range(len(head)) if i not in drop]
    return Grid([head[i] for i in cols], [[row[i] for i in cols] for row in body],
                n_lead - sum(i < n_lead for i in drop), constant,
                {metric_name(a): metric_name(b) for a, b in repeats.items()})


VARIANT = "@variant"  # the variant column among the leading columns' sources


def lead_sources(s: Summary, show_variant: bool) -> list[str]:
    """What the leading columns show, in order: the experiment first (a report over several), the variant, then
    the config keys that vary."""
    keys = ([VARIANT] if show_variant else []) + list(s.keys)
    return sorted(keys, key=lambda k: k != "experiment")


def _blank_unchanged(s: Summary, body: list[list[Cell]], sources: list[str], drop: list[int]) -> None:
    """Config cells equal to the row's baseline's go blank, as in a paper's ablation table (Vaswani et al. 2017,
    Table 3): a row shows what it changes. The row-name column and the task/split columns always show, and so
    does a grid axis crossed with the variants (a key that varies within a variant): each row is compared
    with the baseline at the same value of it, so blanking it would blank it in every row."""
    from ablate.report.columns import FACET_KEYS

    f = s.frame
    if "baseline" not in f:
        return
    axes = set(within_variants(f, s.keys)) if "variant" in f else set()
    at = {lab: i for i, lab in enumerate(f["label"])}
    for i, (_, r) in enumerate(f.iterrows()):
        j = at.get(r["baseline"]) if isinstance(r["baseline"], str) else None
        if j is None or j == i:
            continue
        for c in range(1, len(sources)):  # column 0 names the row
            if (c not in drop and sources[c] not in (*FACET_KEYS, VARIANT, *axes)
                    and body[i][c].text == body[j][c].text):
                body[i][c].text = ""


def within_variants(f: pd.DataFrame, keys: list[str]) -> list[str]:
    """The keys that vary within some variant (a grid axis crossed with the variants), in order."""
    return [k for k in keys if k in f and f.groupby("variant")[k].nunique(dropna=False).max() > 1]


def row_names(s: Summary) -> dict[str, str]:
    """Each row's label -> a short readable name ('no_pe, heads=2'), in table order."""
    f = s.frame
    show_variant = f["variant"].astype(str).nunique() > 1
    keys = s.keys
    if show_variant:  # a variant's name says what it changes: name only the keys that vary within a variant
        keys = within_variants(f, keys)
    names = {}
    for _, r in f.iterrows():
        parts = [str(r["variant"])] if show_variant else []
        for k in keys:
            text = _value(r[k]) if k == "model.arch" else f"{key_name(k)}={_value(r[k])}"
            if text not in parts:
                parts.append(text)
        names[r["label"]] = ", ".join(parts) or str(r["label"])
    return names


def footnotes(s: Summary) -> list[str]:
    per = " among rows of the same task and split" if panels(s).nunique() > 1 else ""
    notes = ["Mean ± sample standard deviation over seeds (n = finished seeds); "
             + (f"bold = best mean per metric{per} (↑ higher is better, ↓ lower is better; nothing bold when all "
                "rows tie)." if s.bold else "nothing bold: this experiment measures speed, not which row is best.")]
    if "baseline" in s.frame and s.keys:
        notes.append("A blank config cell is the same as in the row's baseline.")
    if s.has_delta:
        notes.append(f"Δ = difference in mean {s.primary} from the baseline ({s.baseline}); "
                     f"* p < 0.05, ** p < 0.01, *** p < 0.001, {TEST_NAME}, {family_text(s)}; no mark = not "
                     "significant after the correction, or fewer than 2 seeds on a side.")
        notes.append("table.csv has, per comparison: Δ with its 95% Welch interval (ci_low/, ci_high/), the raw p "
                     f"(p/) and, for {s.primary}, the Holm-adjusted p (p_adj/); the other metrics' p-values are raw, "
                     "exploratory. seeds_80/ = seeds a row a two-sided two-sample t-test at α = 0.05 would need for "
                     "80% power at the observed Δ and pooled spread (noncentral t; 'any' when the spread is 0).")
        if s.clipped:
            notes.append("Intervals of bounded metrics are clipped to the metric's bounds (an accuracy stays in "
                         "[0, 1]); a bootstrap over 3 seeds has too few distinct resamples to help.")
    if s.has_delta and "p/reached" in s.frame:
        notes.append("Reached counts k/n are compared with Fisher's exact test (p/reached in table.csv) and steps to "
                     f"target with the log-rank test, seeds that never reached censored at their last step "
                     f"(p/{target.COL}); both raw, exploratory.")
    notes += [target.NOTE] if f"{target.COL}/median" in s.frame else []
    notes += [n for n in [stops.interval_note(s.frame)] if n and f"{target.COL}/median" in s.frame]
    notes += stops.footnotes(s.frame, row_names(s))
    notes += s.notes
    if s.frame["n_failed"].sum():
        notes.append(f"{int(s.frame['n_failed'].sum())} failed run(s) are listed apart and not averaged in.")
    notes.append("Train time: seconds in training steps; tokens/s: source + target tokens per training second.")
    return notes


# ------------------------------------------------------------------ renderers
def to_markdown(s: Summary) -> str:
    g = grid(s)

    def md(c: Cell) -> str:
        t = c.text.replace("|", "\\|")
        t = f"**{t}**" if c.bold else t
        return t + "".join("\\*" for _ in c.mark)

    lines = [g.above(), ""] if g.above() else []
    lines += ["| " + " | ".join(g.head) + " |",
             "|" + "|".join(":---" if i < g.n_lead else "---:" for i in range(len(g.head))) + "|"]
    lines += ["| " + " | ".join(md(c) for c in row) + " |" for row in g.body]
    lines += [""] + [f"{note}  " for note in footnotes(s)]
    return "\n".join(lines) + "\n"


LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                 "±": r"$\pm$", "Δ": r"$\Delta$", "↑": r"$\uparrow$", "↓": r"$\downarrow$", "–": "--",
                 "<": r"\textless{}", ">": r"\textgreater{}", "α": r"$\alpha$", "≥": r"$\geq$", "≤": r"$\leq$",
                 "−": r"$-$", "×": r"$\times$", "—": "---", "…": r"\dots{}", "·": r"$\cdot$", "→": r"$\to$",
                 "≈": r"$\approx$", "’": "'", "‘": "`", "“": "``", "”": "''", "|": r"\textbar{}", "\u00a0": "~",
                 "β": r"$\beta$", "χ": r"$\chi$", "σ": r"$\sigma$",
                 "μ": r"$\mu$", "²": r"$^2$", "[": "{[}", "]": "{]}"}  # a cell opening with [ after \\ is no length
# Characters pdflatex's default (utf8 input, Latin letters) cannot set: written as their code point, so a table
# with, say, a CJK variant name still compiles in the documented preamble.
UNSET = set("ĦħĸĿŀŉŦŧſ")  # in Latin Extended-A, yet not set up for pdflatex


def _settable(ch: str) -> bool:
    return ch in "\n\t" or ((0x20 <= ord(ch) < 0x7F or 0xA0 <= ord(ch) < 0x180) and ch not in UNSET)


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters (and the few symbols the tables use) in plain text; characters outside
    Latin-1/Latin Extended-A that are not mapped become [U+XXXX]."""
    return "".join(LATEX_SPECIAL.get(ch) or (ch if _settable(ch) else f"{{[}}U+{ord(ch):04X}{{]}}")
                   for ch in str(text))


def latex_number(text: str) -> str:
    """A number cell: a sign before a number set in math (a real minus, not a hyphen), the rest escaped."""
    parts = re.split(r"(?<![\w.])([-+−])(?=[\d.])", text)
    return "".join(("$+$" if p == "+" else "$-$") if i % 2 else latex_escape(p) for i, p in enumerate(parts))


def _column_id(head: str) -> str:
    return head.replace(" ↑", "").replace(" ↓", "").strip().lower()


def pick_columns(g: Grid, s: Summary, names: Optional[list[str]]) -> list[int]:
    """Indexes of the grid columns named (their heading, arrows left out, or a metric key such as test/seq_acc;
    'delta' for the Δ column), the leading label columns always first. Raises ConfigErrors naming the valid ones."""
    if not names:
        return list(range(len(g.head)))
    ids = [_column_id(h) for h in g.head]
    alias = {metric_name(m): metric_name(m) for m in s.metrics} | {"delta": f"δ {metric_name(s.primary)}"}
    picked = list(range(g.n_lead))
    for name in names:
        want = _column_id(metric_name(name) if "/" in name else name)
        want = alias.get(want, want).lower()
        if want not in ids:
            from ablate.errors import ConfigError, ConfigErrors

            raise ConfigErrors([ConfigError("--tex-columns", name, "names no column of this table; columns: "
                                            + ", ".join(_column_id(h) for h in g.head[g.n_lead:])
                                            + " (or a metric key such as test/seq_acc, or delta)")])
        if ids.index(want) not in picked:
            picked.append(ids.index(want))
    return picked


# A table wider than this many characters (cells plus padding) is scaled to the line width: \small booktabs
# sets about 80 characters in a one-column article's text width.
TEX_CHARS = 80


def to_latex(s: Summary, caption: str = "", label: str = "tab:results", columns: Optional[list[str]] = None) -> str:
    """A booktabs table that compiles as it is with \\usepackage{booktabs} and \\usepackage{graphicx} (the README's
    preamble); best values in \\textbf, marks as superscripts; columns: the columns to keep (pick_columns)."""
    g = grid(s)
    keep = pick_columns(g, s, columns)
    head = [g.head[i] for i in keep]
    body = [[row[i] for i in keep] for row in g.body]
    n_lead = sum(i < g.n_lead for i in keep)

    def tex(c: Cell, lead: bool) -> str:
        t = latex_escape(c.text) if lead else latex_number(c.text)
        t = rf"\textbf{{{t}}}" if c.bold else t
        return t + (rf"$^{{{c.mark}}}$" if c.mark else "")

    cols = "l" * n_lead + "r" * (len(head) - n_lead)
    width = sum(max(len(h), *(len(r[i].text) + len(r[i].mark) for r in body)) + 2 for i, h in enumerate(head)) \
        if body else 0
    tabular = [rf"\begin{{tabular}}{{{cols}}}", r"\toprule", " & ".join(latex_escape(h) for h in head) + r" \\",
               r"\midrule", *(" & ".join(tex(c, i < n_lead) for i, c in enumerate(row)) + r" \\" for row in body),
               r"\bottomrule", r"\end{tabular}"]
    if width > TEX_CHARS:  # too wide for the text block: scaled down rather than running into the margin
        tabular = [r"\resizebox{\linewidth}{!}{%", *tabular, "}"]
    out = [r"\begin{table}[t]", r"\centering", r"\small", *tabular]
    cap = " ".join([caption, g.above(), *footnotes(s)]).strip()
    out += [rf"\caption{{{latex_escape(cap)}}}", rf"\label{{{label}}}", r"\end{table}"]
    return "\n".join(out) + "\n"


def to_html(s: Summary) -> str:
    g = grid(s)

    def cell(c: Cell) -> str:
        t = html.escape(c.text)
        t = f"<b>{t}</b>" if c.bold else t
        return t + (f"<sup>{c.mark}</sup>" if c.mark else "")

    def align(i: int) -> str:
        return "l" if i < g.n_lead else "r"

    th = "".join(f'<th class="{align(i)}">{html.escape(h)}</th>' for i, h in enumerate(g.head))
    rows = "".join("<tr>" + "".join(f'<td class="{align(i)}">{cell(c)}</td>' for i, c in enumerate(row))
                   + "</tr>\n" for row in g.body)
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in footnotes(s))
    above = f'<p class="meta">{html.escape(g.above())}</p>\n' if g.above() else ""
    # Long tables scroll sideways inside the page rather than overflowing it.
    return (f'{above}<div class="scroll"><table class="results sortable"><thead><tr>{th}</tr></thead>\n<tbody>\n{rows}'
            f'</tbody></table></div>\n<ul class="notes">{notes}</ul>\n')


def to_csv(s: Summary) -> str:
    return s.frame.to_csv(index=False)


def write_tables(s: Summary, out_dir: str | Path, caption: str = "",
                 tex_columns: Optional[list[str]] = None) -> dict[str, Path]:
    """table.md, table.tex, table.csv in out_dir; returns {'md': path, 'tex': path, 'csv': path}."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"md": out / "table.md", "tex": out / "table.tex", "csv": out / "table.csv"}
    paths["md"].write_text(to_markdown(s))
    paths["tex"].write_text(to_latex(s, caption, columns=tex_columns))
    paths["csv"].write_text(to_csv(s))
    return paths
