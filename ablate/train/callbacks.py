"""When a run validates and when it stops: every N steps, early stopping, training to a target.

fit() asks this module for the Trainer's validation schedule (val_schedule), the
stopping callbacks (stop_callbacks) and the result fields they record
(stop_fields). Both stopping rules act after a validation pass, on the same
numbers the best checkpoint is chosen by.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Optional
from weakref import proxy

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, EarlyStopping, ModelCheckpoint

from ablate.stopping import standard_error, still_improving


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


class PlateauStopping(EarlyStopping):
    """Lightning's early stopping; with min_delta None, before each check min_delta becomes the monitored metric's
    standard error on the validation set at its best value so far (ablate.stopping.standard_error), so an
    improvement must exceed the metric's own noise. The module's val_stats give n and, for the loss, E[nll^2]."""

    def __init__(self, monitor: str, mode: str, patience: int, min_delta: Optional[float]):
        super().__init__(monitor=monitor, mode=mode, patience=patience, min_delta=min_delta or 0.0,
                         check_on_train_epoch_end=False, strict=True)
        self.auto = min_delta is None
        self.used_delta = float(min_delta or 0.0)  # the min_delta of the latest check (positive)

    def _run_early_stopping_check(self, trainer: pl.Trainer) -> None:
        if self.auto:
            got = trainer.callback_metrics.get(self.monitor)
            stats = getattr(trainer.lightning_module, "val_stats", {}) or {}
            if got is not None and stats:
                best = float(self.best_score)
                value = float(got) if math.isinf(best) else best
                self.used_delta = standard_error(self.monitor, value, int(stats.get("n", 0)),
                                                 int(stats.get("tokens", 0)), stats.get("nll_sq_mean"))
                self.min_delta = self.used_delta if self.monitor_op == torch.gt else -self.used_delta
        super()._run_early_stopping_check(trainer)

    @property
    def plateaued(self) -> bool:
        return self.wait_count >= self.patience


class BestCheckpoint(ModelCheckpoint):
    """The best checkpoint on train.monitor; a tie on it goes to the lower val/loss, then to the later step
    (Lightning keeps the earliest, so a metric stuck at 0 would test the first checkpoint). Remembers the
    optimizer step of the checkpoint it keeps (result.json tested_step).

    A better validation's weights are held in memory (a copy) and written once, when the fit ends: each better
    validation overwrote the file before, 6 ms of a 2.6 s fit each in the harness benchmark's profile (issue 28).
    Until then the resume checkpoint carries them (state_dict), so a killed run's rerun tests the same best."""

    TIE = "val/loss"

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.best_step: Optional[int] = None
        self.best_tie: Optional[float] = None
        self.best_hit_cap: Optional[float] = None  # val/hit_cap of the kept checkpoint's validation
        self.held: Optional[tuple[str, dict[str, Any]]] = None  # (path, weights-only checkpoint) not yet written

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        ckpt = trainer._checkpoint_connector.dump_checkpoint(weights_only=True)
        weights = ckpt.pop("state_dict")
        ckpt = copy.deepcopy(ckpt)  # the loop counters: plain values, small
        ckpt["state_dict"] = {k: v.detach().clone() for k, v in weights.items()}  # training goes on in place
        self.held = (filepath, ckpt)
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath

    def write_held(self, trainer: pl.Trainer) -> None:
        """Write the held best checkpoint (rank 0; every rank waits for it: all of them test from it)."""
        if self.held is None:
            return
        path, ckpt = self.held
        trainer.strategy.save_checkpoint(ckpt, path)
        trainer.strategy.barrier("BestCheckpoint.write_held")
        self.held = None
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.write_held(trainer)

    def check_monitor_top_k(self, trainer: pl.Trainer, current: Optional[torch.Tensor] = None) -> bool:
        best = self.best_model_score
        if current is None or best is None or not self.best_k_models or float(current) != float(best):
            return super().check_monitor_top_k(trainer, current)
        tie = trainer.callback_metrics.get(self.TIE)
        wins = tie is not None and (self.best_tie is None or float(tie) <= self.best_tie)
        return trainer.strategy.reduce_boolean_decision(bool(wins))

    def _update_best_and_save(self, current: torch.Tensor, trainer: pl.Trainer,
                              monitor_candidates: dict[str, torch.Tensor]) -> None:
        self.best_step = trainer.global_step
        tie = monitor_candidates.get(self.TIE)
        self.best_tie = float(tie) if tie is not None else None
        cap = monitor_candidates.get("val/hit_cap")
        self.best_hit_cap = float(cap) if cap is not None else None
        super()._update_best_and_save(current, trainer, monitor_candidates)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "best_step": self.best_step, "best_tie": self.best_tie,
                "best_hit_cap": self.best_hit_cap,
                "held": None if self.held is None else {"path": self.held[0], "checkpoint": self.held[1]}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.best_step, self.best_tie = state_dict.get("best_step"), state_dict.get("best_tie")
        self.best_hit_cap = state_dict.get("best_hit_cap")
        held = state_dict.get("held")
        self.held = None if held is None else (held["path"], held["checkpoint"])


class StopRecorder(Callback):
    """The monitored value of every validation, for result.json's stop_reason and still_improving."""

    def __init__(self, monitor: str):
        self.monitor = monitor
        self.values: list[float] = []
        self.last_hit_cap: Optional[float] = None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        got = trainer.callback_metrics.get(self.monitor)
        self.values.append(float(got) if got is not None else math.nan)
        cap = trainer.callback_metrics.get("val/hit_cap")
        self.last_hit_cap = float(cap) if cap is not None else None
        loss = trainer.callback_metrics.get("val/loss")  # reduced over ranks: every rank decides alike
        if loss is not None and not math.isfinite(float(loss)):
            self.diverged = True  # nothing left to learn from: stop, and say why
            trainer.should_stop = True

    diverged = False  # the validation loss became NaN or infinite

    def state_dict(self) -> dict[str, Any]:
        return {"values": list(self.values), "last_hit_cap": self.last_hit_cap, "diverged": self.diverged}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.values = list(state_dict.get("values", []))
        self.last_hit_cap = state_dict.get("last_hit_cap")
        self.diverged = bool(state_dict.get("diverged", False))


class TimeLimit(Callback):
    """train.max_time: stop once the training steps have taken max_time seconds (the timer's, which a resume
    restores)."""

    def __init__(self, timer: Any, max_time: float):
        self.timer, self.max_time = timer, float(max_time)
        self.hit = False

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        # ranks' clocks differ: any rank out of time stops them all, at the same step
        out = trainer.strategy.reduce_boolean_decision(self.timer.running() >= self.max_time, all=False)
        if out:
            self.hit = True
            trainer.should_stop = True


def stop_reason(trainer: pl.Trainer, callbacks: list[Callback]) -> str:
    """Why fit ended: a diverged loss, a reached target, early stopping's plateau, then whichever budget ran
    out."""
    if any(isinstance(cb, StopRecorder) and cb.diverged for cb in callbacks):
        return "diverged"
    if any(isinstance(cb, TrainToTarget) and cb.steps_to_target is not None for cb in callbacks):
        return "target"
    if any(isinstance(cb, PlateauStopping) and cb.plateaued for cb in callbacks):
        return "plateau"
    if trainer.interrupted:
        return "interrupted"
    if any(getattr(cb, "budget_hit", False) for cb in callbacks):  # train.max_flops (ComputeMeter)
        return "max_flops"
    if any(isinstance(cb, TimeLimit) and cb.hit for cb in callbacks):
        return "time_limit"
    if trainer.max_steps > 0 and trainer.global_step >= trainer.max_steps:
        return "max_steps"
    if trainer.max_epochs is not None and trainer.max_epochs > 0 and trainer.current_epoch >= trainer.max_epochs:
        return "max_epochs"
    return "interrupted"


def stop_record(trainer: pl.Trainer, callbacks: list[Callback], recorder: StopRecorder) -> dict[str, Any]:
    """result.json's stop_reason, still_improving (the rule of ablate.stopping, with early stopping's
    min_delta, 0 without it) and stop_source."""
    deltas = [cb.used_delta for cb in callbacks if isinstance(cb, PlateauStopping)]
    delta = deltas[0] if deltas else 0.0
    return {"stop_reason": stop_reason(trainer, [*callbacks, recorder]),
            "still_improving": still_improving(recorder.values, mode_of(recorder.monitor), delta),
            "stop_source": "recorded"}


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
        out.append(PlateauStopping(train_cfg.monitor, mode_of(train_cfg.monitor), es.patience, es.min_delta))
    target = getattr(train_cfg, "target", None)
    if target is not None:
        out.append(TrainToTarget(target.metric, target.value))
    return out


def stop_fields(callbacks: list[Callback]) -> dict[str, Any]:
    """result.json fields: steps_to_target (None if never reached) when a target is set."""
    hits = [cb.steps_to_target for cb in callbacks if isinstance(cb, TrainToTarget)]
    return {"steps_to_target": hits[0]} if hits else {}
