"""Resume inside a run: a full-state `checkpoints/last.ckpt` at a validation (at most one write per
`train.resume_every_s`, 30 s by default: each write serialises the model and optimiser, 12 ms of a 2.6 s fit in
the harness benchmark's profile), and the data order to match.

`last.ckpt` holds what Lightning saves (model, optimiser, scheduler, loop
counters, the best-checkpoint bookkeeping) plus, in ResumeCheckpoint's own
state, the RNG states, the train sampler's position, the training timer and
token count, and metrics.csv so far. A rerun of the unfinished run restores
it and continues as if never stopped: the same seed gives the same test
metrics as an uninterrupted run. It is written atomically (a kill mid-save
leaves the previous one) and deleted when the run finishes.
"""

from __future__ import annotations

import csv
import io
import os
import random
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from torch.utils.data import BatchSampler, Sampler

from ablate.train.run_files import RESUME_CKPT

warnings.filterwarnings("ignore", ".*dataloader is not resumable.*")  # ResumableBatchSampler is, by our callback


class ResumableBatchSampler(BatchSampler):
    """BatchSampler over a seeded sampler whose position in the epoch can be saved and restored.

    The order is exactly the wrapped sampler's (a RandomSampler with its own generator): on resume the
    generator goes back to its state at the start of the interrupted epoch and the batches already trained
    are skipped. (Lightning reads a sized loader without prefetching, so yielded = trained.)
    """

    def __init__(self, sampler: Sampler, batch_size: int, drop_last: bool = False):
        super().__init__(sampler, batch_size, drop_last)
        self.yielded = 0
        self._started = False
        self._epoch_start: Optional[torch.Tensor] = None
        self._resume: Optional[dict[str, Any]] = None

    @property
    def generator(self) -> Optional[torch.Generator]:
        return getattr(self.sampler, "generator", None)

    def __iter__(self):
        gen, resume, self._resume = self.generator, self._resume, None
        if resume is not None and gen is not None and resume.get("generator") is not None:
            gen.set_state(resume["generator"])
        if resume is not None and resume.get("epoch") is not None and hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(resume["epoch"])  # a DistributedSampler's order is a function of its epoch
        self._epoch_start = gen.get_state() if gen is not None else None
        self._started = True
        skip = resume["skip"] if resume else 0
        self.yielded = skip
        for i, batch in enumerate(self._batches()):
            if i >= skip:
                self.yielded = i + 1
                yield batch

    def _batches(self) -> Iterator[list[int]]:
        """This epoch's batches, drawn now (a subclass may plan them otherwise: ablate.train.batching)."""
        return BatchSampler.__iter__(self)

    def _epoch_len(self) -> int:
        """Batches in the epoch under way (or the next one, between epochs)."""
        return len(self)

    def state_dict(self) -> dict[str, Any]:
        gen = self.generator
        if not self._started or self.yielded >= self._epoch_len():  # between epochs: the next one starts here
            return {"generator": gen.get_state() if gen is not None else None, "skip": 0, "epoch": None}
        return {"generator": self._epoch_start, "skip": self.yielded, "epoch": getattr(self.sampler, "epoch", None)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._resume = state


def rng_states() -> dict[str, Any]:
    """Every RNG a step may draw from, as tensors and plain values (Lightning loads with weights_only=True)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)],
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_states(s: dict[str, Any]) -> None:
    torch.set_rng_state(s["torch"])
    random.setstate(s["python"])
    kind, keys, pos, has_gauss, gauss = s["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    if s.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


def all_ranks(obj: Any) -> list[Any]:
    """obj from every rank of a multi-device run (a collective: every rank calls it), [obj] in one process."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def training_ends_here(trainer: Any) -> bool:
    """This validation is the fit's last, by its budget (max_steps reached, or the end of the last epoch): a
    resume checkpoint saved now would only be deleted when the run finishes (finish_resume), so it is not
    written (issue 28: the harness's own cost). A stop by a rule (early stopping, a target) still saves."""
    if trainer.max_steps is not None and trainer.max_steps > 0 and trainer.global_step >= trainer.max_steps:
        return True
    last_epoch = trainer.max_epochs is not None and 0 < trainer.max_epochs <= trainer.current_epoch + 1
    return last_epoch and bool(trainer.fit_loop.epoch_loop.batch_progress.is_last_batch)


class ResumeCheckpoint(ModelCheckpoint):
    """Saves the full training state to checkpoints/last.ckpt after a validation, atomically: the first
    validation once `every_s` seconds have passed since the last write or the fit's start (0: every one).

    A ModelCheckpoint so that Lightning runs it after the best-checkpoint callback (the saved bookkeeping
    then includes this validation's score). `extras` are objects whose counters must survive a resume:
    the datamodule (its train sampler), the timer (seconds), the LightningModule (train_tokens).
    """

    def __init__(self, run_dir: str | Path, datamodule: Any, timer: Any, every_s: float = 0.0):
        super().__init__(dirpath=str(Path(run_dir) / Path(RESUME_CKPT).parent), save_top_k=0, save_last=False,
                         save_on_train_epoch_end=False, enable_version_counter=False)
        self.path = Path(run_dir) / RESUME_CKPT
        self.dm, self.timer = datamodule, timer
        self.every_s = float(every_s)  # train.resume_every_s: at most one write per this many seconds
        self._written_at = 0.0  # monotonic time of the last write, or of the fit's start
        self._pending: Optional[dict[str, Any]] = None
        self._trainer: Any = None
        self.resumed_at_step: Optional[int] = None  # set when the run resumed from last.ckpt

    @property
    def state_key(self) -> str:
        return "ResumeCheckpoint"

    def due(self, trainer) -> bool:
        """Write now? train.resume_every_s since the last write (rank 0's clock decides for every rank: the
        save is a collective)."""
        if self.every_s <= 0:
            return True
        elapsed = time.monotonic() - self._written_at  # set at the fit's start (on_train_start)
        return bool(trainer.strategy.broadcast(elapsed >= self.every_s, src=0))

    def on_train_start(self, trainer, pl_module) -> None:
        self._written_at = time.monotonic()
        self._restore(trainer, pl_module)

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit" or training_ends_here(trainer):
            return
        if not self.due(trainer):
            return
        for lg in trainer.loggers:  # metrics.csv up to this point goes into the checkpoint
            lg.save()
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        trainer.save_checkpoint(str(tmp))
        if trainer.is_global_zero:
            os.replace(tmp, self.path)
        self._written_at = time.monotonic()

    def state_dict(self) -> dict[str, Any]:
        sampler = getattr(self.dm, "train_sampler", None)
        metrics = self.path.parent.parent / "metrics.csv"
        # should_stop: a stopping rule (early stopping, a reached target) fired at this validation; a resume
        # must stop here too rather than train on.
        # Each rank of a multi-device run draws its own random numbers and counts its own tokens: all of them go
        # into the checkpoint (rank 0 writes it), and each rank takes back its own.
        ranks = all_ranks({"rng": rng_states(), "timer_s": self.timer.seconds,
                           "train_tokens": getattr(self._module, "train_tokens", 0),
                           "train_slots": getattr(self._module, "train_slots", 0)})
        return {"ranks": ranks, "sampler": sampler.state_dict() if sampler is not None else None,
                "should_stop": bool(self._trainer.should_stop) if self._trainer is not None else False,
                "metrics_csv": metrics.read_text() if metrics.is_file() else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._pending = state
        if state.get("sampler") is not None:
            self.dm.resume_sampler = state["sampler"]  # read when the datamodule builds the train loader

    def setup(self, trainer, pl_module, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        self._module, self._trainer = pl_module, trainer

    def _restore(self, trainer, pl_module) -> None:
        s, self._pending = self._pending, None
        if s is None:
            return
        self.resumed_at_step = trainer.global_step
        trainer.should_stop = trainer.should_stop or bool(s.get("should_stop"))
        mine = s["ranks"][trainer.global_rank if trainer.global_rank < len(s["ranks"]) else 0]
        set_rng_states(mine["rng"])
        self.timer.seconds = mine["timer_s"]
        pl_module.train_tokens = mine["train_tokens"]
        pl_module.train_slots = mine.get("train_slots", 0)
        if s.get("metrics_csv") and trainer.is_global_zero:
            restore_metrics(trainer, s["metrics_csv"])


def restore_metrics(trainer: Any, text: str) -> None:
    """Put back metrics.csv as it was at the checkpoint (Lightning's CSVLogger deletes it on start)."""
    from pytorch_lightning.loggers import CSVLogger

    for lg in trainer.loggers:
        if isinstance(lg, CSVLogger):
            writer = lg.experiment  # created now, so its clean-up of old files is done before we write
            Path(writer.metrics_file_path).write_text(text)
            writer.metrics_keys = sorted(next(csv.reader(io.StringIO(text)), []))


def resume_path(run_dir: str | Path) -> Optional[str]:
    """checkpoints/last.ckpt when it is a loadable checkpoint; a torn one is removed (the run starts over)."""
    p = Path(run_dir) / RESUME_CKPT
    for tmp in p.parent.glob(f".{p.name}.*.tmp"):  # a save cut short by a kill
        tmp.unlink(missing_ok=True)
    if not p.is_file():
        return None
    try:
        torch.load(p, map_location="cpu", weights_only=False, mmap=True)
    except Exception:  # noqa: BLE001 - truncated or foreign: unusable either way
        p.unlink(missing_ok=True)
        return None
    return str(p)


def finish_resume(run_dir: str | Path, trainer: Any, keep_last_weights: bool) -> None:
    """The run is done: the resume checkpoint goes; with train.test_on=last its weights stay (for `attend`)."""
    p = Path(run_dir) / RESUME_CKPT
    if keep_last_weights:
        trainer.save_checkpoint(str(p), weights_only=True)
    elif trainer.is_global_zero:
        p.unlink(missing_ok=True)
