"""Which table columns earn their place: a column equal in every row is stated once above the table, and a
metric that repeats another (a classification task's acc is its seq acc) is shown once."""

from __future__ import annotations

from typing import Any

import numpy as np

# what changes the question: the experiment (a report over several), the task / dataset
FACET_KEYS = ("experiment", "task.name", "task.split", "task.path")


def same_values(a: Any, b: Any) -> bool:
    """Two per-row series of numbers equal (NaN where the other is NaN)."""
    x, y = np.asarray(a, float), np.asarray(b, float)
    return x.shape == y.shape and bool(np.all((np.isnan(x) & np.isnan(y)) | np.isclose(x, y, rtol=0, atol=1e-12)))


def duplicate_metrics(frame: Any, metrics: list[str], primary: str) -> dict[str, str]:
    """{metric: the metric it repeats} for metrics whose mean and std equal an earlier one's in every row."""
    out: dict[str, str] = {}
    kept: list[str] = []
    for m in sorted(metrics, key=lambda m: m != primary):  # the primary metric is the one kept
        twin = next((k for k in kept if same_values(frame[f"{m}/mean"], frame[f"{k}/mean"])
                     and same_values(frame[f"{m}/std"], frame[f"{k}/std"])), None)
        if twin is None:
            kept.append(m)
        else:
            out[m] = twin
    return out


def constant_columns(head: list[str], body: list[list[Any]], keep: set[int]) -> list[int]:
    """Indices of columns whose cell text is the same in every row (two rows or more), except those in keep."""
    if len(body) < 2:
        return []
    return [i for i in range(len(head)) if i not in keep and len({row[i].text for row in body}) == 1]
