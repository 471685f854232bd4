"""Why a run stopped, for runs recorded before result.json said so: inferred from its config, result and
metrics.csv (`stop_source: inferred`). No torch: the report reads committed runs with it."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Optional

from ablate.stopping import still_improving
from ablate.structured import lookup

STOP_FIELDS = ("stop_reason", "still_improving", "stop_source", "tested_step")


def _mode(metric: str) -> str:
    return "min" if metric.split("/")[-1].endswith("loss") else "max"


def _number(text: Any) -> Optional[float]:
    try:
        x = float(text)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def validations(metrics_csv: str | Path, metric: str) -> list[tuple[int, float]]:
    """(optimizer step, value) of every validation row of metrics.csv that logged `metric`, in order. Lightning
    writes the step index of the last batch (step - 1); the optimizer step count is one more."""
    p = Path(metrics_csv)
    if not p.is_file():
        return []
    out = []
    with p.open(newline="") as f:
        for row in csv.DictReader(f):
            value, step = _number(row.get(metric)), _number(row.get("step"))
            if value is not None and step is not None:
                out.append((int(step) + 1, value))
    return out


def infer_stop(config: dict[str, Any], result: dict[str, Any], metrics_csv: str | Path) -> dict[str, Any]:
    """stop_reason and still_improving of a finished run from what it recorded (no fields for a failed one).
    Order of the reasons: a reached target, the step cap, the epoch cap, then early stopping's plateau;
    a run that stopped otherwise was interrupted."""
    if result.get("status") not in (None, "finished"):
        return {}
    monitor = lookup(config, "train.monitor") or "val/loss"
    es = lookup(config, "train.early_stopping")
    min_delta = float(es.get("min_delta") or 0.0) if isinstance(es, dict) else 0.0
    checks = validations(metrics_csv, monitor)
    values = [v for _, v in checks]
    max_steps = lookup(config, "train.max_steps") or -1
    max_epochs = lookup(config, "train.max_epochs") or -1
    steps, epochs = result.get("steps"), result.get("epochs")
    if result.get("steps_to_target") is not None:
        reason = "target"
    elif max_steps > 0 and steps is not None and steps >= max_steps:
        reason = "max_steps"
    elif max_epochs > 0 and epochs is not None and epochs >= max_epochs:
        reason = "max_epochs"
    elif isinstance(es, dict):
        reason = "plateau"
    else:
        reason = "interrupted"
    return {"stop_reason": reason, "still_improving": still_improving(values, _mode(monitor), min_delta),
            "stop_source": "inferred", "tested_step": _tested_step(config, result, checks, _mode(monitor))}


def _tested_step(config: dict[str, Any], result: dict[str, Any], checks: list[tuple[int, float]],
                 mode: str) -> Optional[int]:
    """The step of the weights tested: the last step (test_on last), else the first validation with the best
    monitored value (the rule these runs were made with: a tie kept the earliest)."""
    if (lookup(config, "train.test_on") or "best") == "last":
        return result.get("steps")
    if not checks:
        return None
    best = (min if mode == "min" else max)(v for _, v in checks)
    return next(step for step, v in checks if v == best)
