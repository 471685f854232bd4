"""by_length.csv regrouped by the length each run's task tells its story in.

A run records its test metrics per (src_len, tgt_len) pair and, in result.json, which of the two its task's split
is defined by (length_by: SCAN's length split by output length, most synthetic tasks by input length). Runs made
before that carry one `length` column, the source length: they are drawn by it, as before.
"""

from __future__ import annotations

from typing import Optional

import pandas as pd

# by_length.csv column -> the axis's words
AXIS = {"src_len": "input length (tokens)", "tgt_len": "output length (tokens, <eos> not counted)",
        "length": "input length (tokens)"}
SHORT = {"src_len": "input length", "tgt_len": "output length", "length": "input length"}
IDS = ["facet", "hue", "order", "seed", "run_id"]


def column_of(declared: object, part: pd.DataFrame) -> Optional[str]:
    """The column a run's rows are grouped by: the one its result.json declares, else the source length (the
    old `length` column of runs made before both were recorded)."""
    for col in ([declared] if isinstance(declared, str) else []) + ["src_len", "length"]:
        if col in part and part[col].notna().all():
            return col
    return None


def regroup(data: pd.DataFrame, declared: dict[str, object]) -> pd.DataFrame:
    """One row per run and length: `length` (the run's split-defining length), `length_by` (its column), n, and
    seq_acc / token_acc pooled over the rows of that length (weighted by examples / scored tokens)."""
    parts = []
    for rid, part in data.groupby("run_id", sort=False):
        col = column_of(declared.get(rid), part)
        if col is None:
            continue
        n = part["n"].astype(float)
        pooled = {"n": n.groupby(part[col]).sum()}
        if "seq_acc" in part:
            pooled["seq_acc"] = (part["seq_acc"] * n).groupby(part[col]).sum(min_count=1) / pooled["n"]
        if "token_acc" in part:
            w = part["tokens"].astype(float) if "tokens" in part and part["tokens"].notna().all() else n
            pooled["token_acc"] = (part["token_acc"] * w).groupby(part[col]).sum(min_count=1) / w.groupby(
                part[col]).sum()
        rows = pd.DataFrame(pooled).rename_axis("length").reset_index()
        first = part.iloc[0]
        parts.append(rows.assign(length_by=col, **{k: first[k] for k in IDS if k in part}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def axis_of(data: pd.DataFrame) -> dict[str, str]:
    """Per facet, the column its runs were grouped by (the most common one, should runs differ)."""
    return {f: part["length_by"].mode().iloc[0] for f, part in data.groupby("facet", sort=False)}
