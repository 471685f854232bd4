"""manifest.json in a report folder: which experiment (a hash of what decides its runs) and which runs it shows.

`ablate run` and `ablate report` read it before writing a report into the default folder, so that a run of a
changed experiment (other overrides, other grid) never overwrites a committed report by accident (ablate/api.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Optional

from ablate.config import config_hash
from ablate.experiment.store import write_json

MANIFEST = "manifest.json"
# What decides an experiment's runs and their numbers; its notes, hypotheses, logger and slurm do not.
RUN_KEYS = ("name", "task", "model", "train", "eval", "seeds", "grid", "variants", "tune")


def experiment_hash(raw: dict[str, Any]) -> str:
    """The hash of an experiment as stored in runs/<name>/experiment.yaml (overrides applied)."""
    return config_hash({k: raw.get(k) for k in RUN_KEYS if raw.get(k) not in (None, {}, [])})


def write_manifest(out: Path, raw: dict[str, Any], run_ids: Iterable[str]) -> None:
    write_json(Path(out) / MANIFEST, {"experiment": raw.get("name"), "experiment_hash": experiment_hash(raw),
                                      "run_ids": sorted({str(r) for r in run_ids})})


def read_manifest(out: Path) -> Optional[dict[str, Any]]:
    """The folder's manifest; None when it has none (or an unreadable one)."""
    try:
        m = json.loads((Path(out) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return m if isinstance(m, dict) else None
