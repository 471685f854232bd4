"""Loggers of one run: CSV always; wandb when asked for (quietly); TensorBoard when logger.tensorboard is true.

wandb follows its users' habits: the WANDB_MODE environment variable picks the mode when the experiment does
not (and WANDB_MODE=disabled turns it off whatever the file says, as it does for wandb itself). Its terminal
chatter goes to the run's wandb.log instead of the terminal, where a grid's progress lines must stay readable.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from pathlib import Path
from typing import Any, Optional

from pytorch_lightning.loggers import CSVLogger

from ablate.train.relog import wandb_mode  # there: the driver reads it without Lightning


def capture_wandb_output(run_dir: Path) -> None:
    """wandb's terminal messages -> run_dir/wandb.log (WANDB_SILENT routes them to its 'wandb' logger)."""
    os.environ["WANDB_SILENT"] = "true"
    os.environ.setdefault("WANDB_CONSOLE", "off")  # no wrapping of this process's stdout/stderr
    log = logging.getLogger("wandb")
    path = str((run_dir / "wandb.log").resolve())
    if not any(getattr(h, "baseFilename", None) == path for h in log.handlers):
        for h in [h for h in log.handlers if isinstance(h, logging.FileHandler)]:  # an earlier run's file
            log.removeHandler(h)
            h.close()
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False  # not to the root logger's terminal handler


def make_loggers(cfg: Any, run_dir: Path, meta: dict[str, Any]) -> list:
    loggers: list = [CSVLogger(save_dir=str(run_dir), name="", version="")]
    wb = cfg.logger.wandb
    mode = wandb_mode(wb.mode)
    if mode != "disabled":
        from pytorch_lightning.loggers import WandbLogger

        capture_wandb_output(run_dir)
        with into_log(run_dir):  # the run starts here, not lazily inside fit, so its messages land in the log
            logger = WandbLogger(
                project=wb.project, entity=wb.entity, mode=mode, save_dir=str(run_dir.resolve()),
                group=meta.get("experiment"), name=run_name(meta, cfg.seed), id=wandb_id(run_dir, meta.get("run_id")),
                tags=[t for t in (meta.get("variant"), meta.get("label")) if t][:2], config=cfg.to_dict(),
                reinit=True)
            logger.experiment  # noqa: B018 - starts the wandb run
        loggers.append(logger)
    if getattr(cfg.logger, "tensorboard", False):
        from pytorch_lightning.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version=""))
    return loggers


def run_name(meta: dict[str, Any], seed: int) -> str:
    """The W&B run's name: its row's readable label and seed ('no_pe, model.n_heads=2, seed 1')."""
    return f"{meta.get('label') or meta.get('run_id') or 'run'}, seed {seed}"


def wandb_id(run_dir: Path, run_id: Optional[str]) -> Optional[str]:
    """The run's wandb id: its run id plus a tag of its store, so the same config trained in two stores (two
    runs dirs, or a notebook running an experiment twice) never collides into one wandb run."""
    if run_id is None:
        return None
    return f"{run_id}-{hashlib.sha1(str(run_dir.resolve()).encode()).hexdigest()[:6]}"


@contextlib.contextmanager
def into_log(run_dir: Path):
    """This process's Python-level stdout/stderr appended to run_dir/wandb.log for the duration."""
    with open(run_dir / "wandb.log", "a") as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
        yield


def finish(loggers: list, run_dir: Optional[Path] = None) -> None:
    """Close what needs closing (wandb runs, quietly); the CSV and TensorBoard loggers flush themselves."""
    for lg in loggers:
        if type(lg).__name__ == "WandbLogger":
            with into_log(Path(lg.save_dir)) if run_dir is None else into_log(run_dir):
                lg.experiment.finish()
