"""The run store: one directory per run, the run directories are the source of truth.

    runs/<name>/experiment.yaml        the experiment as given, plus overrides
    runs/<name>/<run_id>/config.yaml   fully resolved config of the run
    runs/<name>/<run_id>/result.json   status, metrics, timing, reproduction info (written last, atomically)
    runs/<name>/results.csv            one row per run, rebuilt from the run directories
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

RESULT = "result.json"
FINISHED, FAILED = "finished", "failed"


def atomic_write(path: str | Path, text: str) -> None:
    """Write text so a reader (or a kill) sees the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_yaml(path: str | Path, obj: Any) -> None:
    atomic_write(path, yaml.safe_dump(obj, sort_keys=False))


def read_result(run_dir: str | Path) -> dict[str, Any] | None:
    p = Path(run_dir) / RESULT
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def status(run_dir: str | Path) -> str:
    """finished | failed | new (never run, or killed before it wrote its result)."""
    r = read_result(run_dir)
    return r["status"] if r and r.get("status") in (FINISHED, FAILED) else "new"


class Store:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def run_dir(self, run_id: str) -> Path:
        return self.root / run_id

    def status(self, run_id: str) -> str:
        return status(self.run_dir(run_id))

    def reset(self) -> None:
        """--fresh: forget every run of this experiment."""
        if self.root.exists():
            shutil.rmtree(self.root)

    def prepare_run(self, run_id: str) -> Path:
        """An empty directory for a (re)started run; leftovers of a killed or failed attempt go."""
        d = self.run_dir(run_id)
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        return d

    def rebuild_results(self) -> Path:
        """results.csv from every run directory (finished and failed)."""
        from ablate.experiment.results import results_frame

        df = results_frame(self.root)
        path = self.root / "results.csv"
        atomic_write(path, df.to_csv(index=False))
        return path
