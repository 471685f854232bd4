"""The steps_to_target column: how many optimizer steps each row needed to reach train.target.

Per row: the median over finished seeds, a seed that never reached the target
counted as its last step (so the median is then a lower bound, marked ≥), and
k/n reached. Lower is better; only a row whose every seed reached the target
can be bold (a lower bound cannot be claimed the best).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ablate.report import stops

COL = "steps_to_target"
TARGET_KEY = "train.target.value"  # results.csv column: present (not empty) when the run had a target
TITLE = "steps to target ↓"
NOTE = ("Steps to target: median optimizer steps over seeds to reach train.target on validation; a seed that never "
        "reached it counts as its last step and the median is marked ≥ (a lower bound); k/n = seeds that reached it. "
        "Bold = fewest among rows where every seed reached it.")


def has_target(df: pd.DataFrame) -> bool:
    return TARGET_KEY in df and df[TARGET_KEY].notna().any()


def target_stats(good: pd.DataFrame) -> dict[str, Any]:
    """steps_to_target/median, /reached, /n of one row's finished runs (those that had a target)."""
    runs = good[good[TARGET_KEY].notna()] if TARGET_KEY in good else good.iloc[0:0]
    if runs.empty:
        return {f"{COL}/median": math.nan, f"{COL}/reached": 0, f"{COL}/n": 0}
    steps = pd.to_numeric(runs[COL], errors="coerce") if COL in runs else pd.Series(math.nan, index=runs.index)
    last = pd.to_numeric(runs["steps"], errors="coerce") if "steps" in runs else pd.Series(math.nan, index=runs.index)
    hit = steps.notna()
    return {f"{COL}/median": float(steps.where(hit, last).median()), f"{COL}/reached": int(hit.sum()),
            f"{COL}/n": len(runs)}


def times(runs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(steps, reached) of one row's finished runs that had a target: the step it reached the target at, or
    the last step of a seed that never did (for a test that censors it there)."""
    runs = runs[runs[TARGET_KEY].notna()] if TARGET_KEY in runs else runs.iloc[0:0]
    steps = pd.to_numeric(runs[COL], errors="coerce") if COL in runs else pd.Series(math.nan, index=runs.index)
    last = pd.to_numeric(runs["steps"], errors="coerce") if "steps" in runs else pd.Series(math.nan, index=runs.index)
    hit = steps.notna()
    when = steps.where(hit, last)
    keep = when.notna()
    return when[keep].to_numpy(float), hit[keep].to_numpy(bool)


def best_labels(frame: pd.DataFrame) -> set[str]:
    """Rows with the fewest median steps among rows whose every seed reached the target (none if all tie)."""
    if f"{COL}/median" not in frame:
        return set()
    full = frame[(frame[f"{COL}/n"] > 0) & (frame[f"{COL}/reached"] == frame[f"{COL}/n"])]
    col = full[f"{COL}/median"].dropna()
    if col.empty or frame[f"{COL}/median"].dropna().nunique() < 2:
        return set()
    return set(full.loc[col[col == col.min()].index, "label"])


def _count(v: Any) -> int:
    """A count of the row's runs; 0 where the row has none (missing, or NaN: a row of an experiment without a
    target in a table merged with one that has it)."""
    return 0 if v is None or pd.isna(v) else int(v)


def cell_text(row: pd.Series) -> str:
    median, reached, n = row.get(f"{COL}/median"), _count(row.get(f"{COL}/reached")), _count(row.get(f"{COL}/n"))
    if not n or median is None or math.isnan(median):
        return "–"
    every = row.get("stops/interval")
    every = None if every is None or (isinstance(every, float) and math.isnan(every)) else int(every)
    return f"{stops.steps_text(median, reached, n, every)} ({reached}/{n} reached)"
