"""When a run validates and when it stops: every N steps, early stopping, training to a target.

fit() asks this module for the Trainer's validation schedule (val_schedule), the
stopping callbacks (stop_callbacks) and the result fields they record
(stop_fields). Both stopping rules act after a validation pass, on the same
numbers the best checkpoint is chosen by.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, EarlyStopping


def mode_of(metric: str) -> str:
    """'min' for losses, 'max' for everything else (accuracies, BLEU)."""
    return "min" if metric.split("/")[-1].endswith("loss") else "max"


def reached(value: float, target: float, mode: str) -> bool:
    return value <= target if mode == "min" else value >= target


class TrainToTarget(Callback):
    """Stops the run at the first validation where `metric` reaches `value`; steps_to_target is the optimizer
    step count at that validation (None while not reached)."""

    def __init__(self, metric: str, value: float):
        self.metric, self.value, self.mode = metric, float(value), mode_of(metric)
        self.steps_to_target: Optional[int] = None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self.steps_to_target is not None:
            return
        got = trainer.callback_metrics.get(self.metric)
        if got is None:
            logged = sorted(k for k in trainer.callback_metrics if k.startswith("val/"))
            raise KeyError(f"train.target.metric {self.metric!r} was not logged by validation "
                           f"(logged: {', '.join(logged)})")
        # Lightning keeps a logged float as a float32 tensor (90/100 -> 0.89999998): compared at that precision,
        # a validation landing exactly on the target reaches it.
        value = float(torch.as_tensor(self.value, dtype=got.dtype)) if torch.is_tensor(got) else self.value
        hit = not math.isnan(float(got)) and reached(float(got), value, self.mode)
        if trainer.strategy.reduce_boolean_decision(hit, all=False):
            self.steps_to_target = trainer.global_step
            trainer.should_stop = True

    def state_dict(self) -> dict[str, Any]:
        return {"steps_to_target": self.steps_to_target}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.steps_to_target = state_dict.get("steps_to_target")


def val_schedule(train_cfg: Any) -> dict[str, Any]:
    """Trainer kwargs: validate every val_every_n_steps optimizer steps (counted across epochs) when it is set,
    else every val_every epochs."""
    n = getattr(train_cfg, "val_every_n_steps", 0) or 0
    if n > 0:
        return {"val_check_interval": n, "check_val_every_n_epoch": None}
    return {"check_val_every_n_epoch": train_cfg.val_every}


def stop_callbacks(train_cfg: Any) -> list[Callback]:
    """Early stopping on train.monitor and/or training to train.target, as configured."""
    out: list[Callback] = []
    es = getattr(train_cfg, "early_stopping", None)
    if es is not None:
        # patience counts validation passes; the check runs after validation (also mid-epoch with
        # val_every_n_steps), never at the end of a training epoch without one.
        out.append(EarlyStopping(monitor=train_cfg.monitor, mode=mode_of(train_cfg.monitor), patience=es.patience,
                                 min_delta=es.min_delta, check_on_train_epoch_end=False, strict=True))
    target = getattr(train_cfg, "target", None)
    if target is not None:
        out.append(TrainToTarget(target.metric, target.value))
    return out


def stop_fields(callbacks: list[Callback]) -> dict[str, Any]:
    """result.json fields: steps_to_target (None if never reached) when a target is set."""
    hits = [cb.steps_to_target for cb in callbacks if isinstance(cb, TrainToTarget)]
    return {"steps_to_target": hits[0]} if hits else {}
