"""Logging after the fact: a logger turned on for an experiment whose runs already finished.

A finished run is not trained again, so its TensorBoard events are filled from its metrics.csv (every logged
value at its step, as the live logger writes them); W&B is not re-logged (an upload would need the live run),
and each such run is named. No Lightning here: the driver calls it.
"""

from __future__ import annotations

import csv
import importlib.util
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

ENV_MODES = {"offline": "offline", "dryrun": "offline", "online": "online", "run": "online", "disabled": "disabled"}
TENSORBOARD_EXTRA = "pip install 'ablate[tensorboard]'"


def wandb_mode(configured: Optional[str], env: Mapping[str, str] = os.environ) -> str:
    """The mode a run logs to wandb in: disabled | offline | online."""
    from_env = ENV_MODES.get(env.get("WANDB_MODE", "").strip().lower())
    if from_env == "disabled" or (configured is None and from_env is None):
        return "disabled"
    return configured if configured is not None else from_env


def has_tensorboard() -> bool:
    """Whether TensorBoard itself (its viewer, `tensorboard --logdir`) is installed: the extra."""
    return importlib.util.find_spec("tensorboard") is not None


def relog(run_dir: Path, logger: Any) -> list[str]:
    """Fill the loggers a finished run's config asks for but it never had; returns what was not (re-)logged."""
    missing = []
    if getattr(logger, "tensorboard", False) and not list((run_dir / "tensorboard").glob("events.out.tfevents.*")):
        if not fill_tensorboard(run_dir):
            missing.append("TensorBoard (no metrics.csv)")
    if wandb_mode(logger.wandb.mode) != "disabled" and not (run_dir / "wandb").is_dir():
        missing.append("W&B")
    return missing


def relog_finished(runs: list[tuple[Path, Any, str]], out: Any) -> None:
    """relog() each finished run (its directory, its config's logger section, its name); a note for each run a
    logger now asked for could not be filled."""
    for run_dir, logger, name in runs:
        for what in relog(run_dir, logger):
            print(f"note: {name}: finished before {what} logging was on; not re-logged (its curves are in "
                  f"{run_dir / 'metrics.csv'}; --fresh retrains it with the logger)", file=out)


def fill_tensorboard(run_dir: Path) -> bool:
    """run_dir/tensorboard/ events from run_dir/metrics.csv, each value at its row's step; False: no metrics."""
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return False
    from tensorboardX import SummaryWriter  # a dependency of ablate; TensorBoard reads its files

    with path.open(newline="") as f, SummaryWriter(str(run_dir / "tensorboard")) as writer:
        for row in csv.DictReader(f):
            step = int(float(row.get("step") or 0))
            for key, value in row.items():
                if key in ("step", "epoch") or value in ("", None):
                    continue
                try:
                    number = float(value)
                except ValueError:
                    continue
                if math.isfinite(number):
                    writer.add_scalar(key, number, step)
            if row.get("epoch") not in ("", None):
                writer.add_scalar("epoch", float(row["epoch"]), step)
    return True


def wandb_sync_hint(root: Path) -> Optional[str]:
    """The command that uploads this experiment's offline W&B runs, when there are any."""
    if not any(root.glob("*/wandb/offline-run-*")):
        return None
    return f"wandb: offline runs saved; upload them with: wandb sync {root}/*/wandb/offline-run-*"
