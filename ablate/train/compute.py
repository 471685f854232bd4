"""Training compute: cumulative FLOPs and seconds at every step, the train.max_flops budget, and the result fields.

A training step costs 3x its forward FLOPs (the backward pass computes gradients of activations and of weights,
each a forward's worth: Kaplan et al. 2020, §2.1). The forward is counted (ablate.models.flops) on the actual
batch shape, padding included (the cost paid): one row's count at the batch's padded lengths times its rows,
counted once per pair of lengths and cached. The count runs in eval mode under no_grad, outside the timed step,
so it neither draws random numbers nor shows in the seconds. Seconds are those of training steps only
(TrainTimer): validation decoding is not charged.

Several devices (DDP): each rank counts its own batch, whose shape may differ from the others' (bucketed or
token-budget batches), and a step's FLOPs and target tokens are the global batch's, summed over the ranks by one
all-reduce of two numbers per step. Every rank so holds the same total, and train.max_flops stops them all at
the same step (a rank stopping alone would leave the others waiting in DDP's gradient all-reduce).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback

from ablate.models.flops import count_forward
from ablate.tasks.vocab import Vocab
from ablate.train.module import writes_logs

BACKWARD_FACTOR = 3  # forward + backward (twice the forward) per training step


def global_counts(flops: int, tokens: torch.Tensor, reduce: Callable[..., torch.Tensor]) -> tuple[int, torch.Tensor]:
    """(FLOPs, real target tokens) of the global batch from this rank's: summed over the ranks with `reduce`
    (the strategy's all-reduce, reduce_op="sum"); int64, so the sum is exact."""
    both = torch.stack([torch.tensor(flops, dtype=torch.int64, device=tokens.device), tokens.to(torch.int64)])
    total = reduce(both, reduce_op="sum")
    return int(total[0]), total[1]  # the FLOPs on the host (max_flops and the log read them); tokens stay put


class ComputeMeter(Callback):
    """Counts training FLOPs step by step, logs `train/flops` and `train/seconds` at each step Lightning writes, stops
    the run once `max_flops` (> 0) is reached, and remembers FLOPs and seconds at each validation."""

    def __init__(self, timer: Any, max_flops: float = 0):
        self.timer, self.max_flops = timer, float(max_flops or 0)
        self.flops = 0  # cumulative training FLOPs
        self.target_tokens = 0  # real (unpadded) target tokens trained on
        self.at_validation: dict[int, tuple[int, float]] = {}  # optimizer step -> (flops, seconds)
        self.budget_hit = False
        self.lower_bound = False  # some component was counted by torch's counter alone
        self._per_row: dict[tuple[int, int], int] = {}  # (source, target length) -> one row's step FLOPs

    @property
    def target_tokens(self) -> int:
        """Real (unpadded) target tokens trained on."""
        return self._tokens_base + (int(self._tokens_acc) if self._tokens_acc is not None else 0)

    @target_tokens.setter
    def target_tokens(self, value: int) -> None:
        # summed on the batch's device and read when asked: no device sync per step
        self._tokens_base, self._tokens_acc = int(value), None

    def step_flops(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> int:
        """Training FLOPs of one step on this batch: the batch's rows times one row's count at the batch's padded
        lengths (every component's work is per example, tests/test_flops.py checks it), counted once per pair of
        lengths: token-budget batches vary their rows with their lengths, and a count costs a forward under
        torch's counter."""
        src, tgt_in = batch["src"], batch["tgt_in"]
        key = (src.size(1), tgt_in.size(1))
        if key not in self._per_row:
            row_src, row_tgt = src[:1], tgt_in[:1]
            full = torch.full((1,), src.size(1), dtype=torch.long, device=src.device)
            was = model.training
            model.eval()
            try:
                count = count_forward(model, lambda: model(row_src, full, row_tgt))
            finally:
                model.train(was)
            self.lower_bound = self.lower_bound or count.lower_bound
            self._per_row[key] = BACKWARD_FACTOR * count.total
        return src.size(0) * self._per_row[key]

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        flops, real = self.step_flops(pl_module.model, batch), (batch["tgt"] != Vocab.pad).sum()
        if trainer.world_size > 1:
            flops, real = global_counts(flops, real, trainer.strategy.reduce)
        self.flops += flops
        self._tokens_acc = real if self._tokens_acc is None else self._tokens_acc + real

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self.max_flops and self.flops >= self.max_flops:
            self.budget_hit = True
            trainer.should_stop = True
        # logged only where Lightning writes the step, as train/loss: decided after every stop at a step's end
        # (the budget above; train.max_time's TimeLimit comes before this callback)
        if writes_logs(trainer, trainer.global_step):
            # float64 so the running total keeps its digits in metrics.csv
            pl_module.log("train/flops", torch.tensor(float(self.flops), dtype=torch.float64), on_step=True,
                          on_epoch=False, batch_size=batch["src"].size(0))
            pl_module.log("train/seconds", float(self.timer.running()), on_step=True, on_epoch=False,
                          batch_size=batch["src"].size(0))

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking and trainer.state.fn == "fit":
            self.at_validation[trainer.global_step] = (self.flops, self.timer.seconds)

    def fields(self, stops: dict[str, Any]) -> dict[str, Any]:
        """result.json's compute fields; with the stop fields' steps_to_target (a target was set), FLOPs and
        seconds at that validation (None where it was not reached)."""
        seconds = self.timer.seconds
        out: dict[str, Any] = {
            "train_flops": self.flops,
            "train_flops_per_token": self.flops / self.target_tokens if self.target_tokens else None,
            "flops_per_s": self.flops / seconds if seconds else None,
            "flops_lower_bound": self.lower_bound,
        }
        if "steps_to_target" in stops:
            flops, secs = self.at_validation.get(stops["steps_to_target"], (None, None))
            out |= {"flops_to_target": flops, "seconds_to_target": secs}
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"flops": self.flops, "target_tokens": self.target_tokens, "budget_hit": self.budget_hit,
                "lower_bound": self.lower_bound, "at_validation": {str(k): list(v) for k, v in
                                                                   self.at_validation.items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.flops, self.target_tokens = int(state_dict.get("flops", 0)), int(state_dict.get("target_tokens", 0))
        self.budget_hit, self.lower_bound = state_dict.get("budget_hit", False), state_dict.get("lower_bound", False)
        self.at_validation = {int(k): (int(v[0]), float(v[1])) for k, v in state_dict.get("at_validation", {}).items()}
