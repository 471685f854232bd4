"""How a figure scales with the experiment: one panel per task (dataset), one colour per row label built only
from the keys that vary within the panel (`arch=lstm` -> `lstm`, `heads=4`), and never more than MAX_LEGEND
legend entries (more rows become small multiples instead)."""

from __future__ import annotations

from typing import Any, Optional

import pandas as pd

from ablate.report.columns import FACET_KEYS
from ablate.report.tables import Summary, key_name

MAX_LEGEND = 10


def _text(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return "–" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v)


def facet_keys(runs: pd.DataFrame) -> list[str]:
    return [k for k in FACET_KEYS if k in runs and runs[k].map(_text).nunique() > 1]


def label_runs(runs: pd.DataFrame, s: Summary, exclude: tuple[str, ...] = ()) -> pd.DataFrame:
    """runs (one row per run, finished) with 'facet' and 'hue' columns, and 'order' (the table's row order);
    exclude: keys left out of the hue (the one on the x axis)."""
    runs = runs.copy()
    runs["label"] = runs["label"].fillna("").replace("", "base") if "label" in runs else "base"
    fkeys = facet_keys(runs)
    if fkeys:
        runs["facet"] = [", ".join(_text(r[k]) if k in ("experiment", "task.name") else f"{key_name(k)}={_text(r[k])}"
                                   for k in fkeys if _text(r[k]) != "–") for _, r in runs.iterrows()]
    else:
        runs["facet"] = ""
    keys = [k for k in s.keys if k not in fkeys and k not in exclude and k in runs]
    hue = pd.Series("", index=runs.index, dtype=object)
    for _, part in runs.groupby("facet", sort=False):
        varying = [k for k in keys if part[k].map(_text).nunique() > 1]
        show_variant = "variant" in part and part["variant"].fillna("").astype(str).nunique() > 1
        if show_variant:  # a variant's name says what it changes; name the other keys only where they vary
            varying = [k for k in varying if part.groupby("variant")[k].apply(lambda c: c.map(_text).nunique())
                       .max() > 1]
        for i, r in part.iterrows():
            parts = [str(r["variant"])] if show_variant else []
            parts += [_text(r[k]) if k == "model.arch" else f"{key_name(k)}={_text(r[k])}" for k in varying]
            hue[i] = ", ".join(parts) or "all runs"
    runs["hue"] = hue
    order = {label: i for i, label in enumerate(s.frame["label"])} if not s.frame.empty else {}
    runs["order"] = runs["label"].map(lambda x: order.get(x, len(order)))
    return runs


def ordered(values: pd.Series, by: Optional[pd.Series] = None) -> list[str]:
    """Unique values in the order of `by` (the table's row order), else as found."""
    if by is not None:
        values = values.iloc[by.argsort(kind="stable").to_numpy()]
    return list(dict.fromkeys(values.astype(str)))


def baseline_hue(runs: pd.DataFrame, s: Summary) -> Optional[str]:
    """The hue of the baseline row (report.baseline), when there is one row for it."""
    if not s.baseline:
        return None
    hit = runs[(runs["label"] == s.baseline) | (runs.get("variant", pd.Series(dtype=str)) == s.baseline)]
    hues = set(hit["hue"]) if not hit.empty else set()
    return next(iter(hues)) if len(hues) == 1 else None


def short_names(runs: pd.DataFrame, s: Summary) -> dict[str, str]:
    """Each row label -> 'task: keys varying within the task' ('reverse, lstm'), for captions and run lists."""
    from ablate.report.tables import row_names

    done = runs[runs["status"] == "finished"] if "status" in runs else runs
    lr = label_runs(done, s) if not done.empty else done
    names = dict(row_names(s)) if not s.frame.empty else {}
    for _, r in lr.iterrows():
        names[r["label"]] = ", ".join(x for x in (r["facet"], r["hue"]) if x and x != "all runs") or r["label"]
    return names
