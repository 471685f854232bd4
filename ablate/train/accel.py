"""Ready for an accelerator: torch.compile of a model, and a non-finite-loss check that seldom syncs.

Reading a loss on the host (`if not torch.isfinite(loss)`) waits for the device
every step; FiniteWatch keeps a flag on the device and reads it only every
`every` steps (and when asked: before validation, at the end of training).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

FINITE_EVERY = 50  # steps between host reads of the non-finite flag


def compile_model(model: nn.Module, backend: str = "inductor") -> nn.Module:
    """Compile each direct sub-module in place (encoder, decoder, embeddings, head), so that both the
    teacher-forced forward and free-running `generate` (which calls them, not forward) run compiled; the
    parameters and state-dict keys stay those of the eager model."""
    for child in model.children():
        child.compile(dynamic=True, backend=backend)  # lengths vary from batch to batch: one graph, not one per shape
    return model


class FiniteWatch:
    """Remembers, on the loss's device, whether any training loss so far was nan/inf; check() raises then."""

    def __init__(self, every: int = FINITE_EVERY):
        self.every = every
        self.bad: Optional[torch.Tensor] = None
        self.first_step: Optional[int] = None  # the first step since the last check

    def update(self, loss: torch.Tensor, step: int) -> None:
        bad = ~torch.isfinite(loss.detach())
        self.bad = bad if self.bad is None else self.bad | bad
        self.first_step = step if self.first_step is None else self.first_step
        if step % self.every == 0:
            self.check(step)

    def check(self, step: int) -> None:
        if self.bad is not None and bool(self.bad):
            raise FloatingPointError(f"training loss became nan or inf between steps {self.first_step} and {step} "
                                     f"(checked every {self.every} steps); lower train.lr or set train.grad_clip")
        self.bad, self.first_step = None, None
