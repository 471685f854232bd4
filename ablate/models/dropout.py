"""Dropout at its real cost on CPU.

torch's CPU dropout draws its mask with bernoulli_ (about 6 ns an element, most of the op's cost; the multiply
is 0.1 ns). Here one 64-bit draw makes the mask of four elements: its 16-bit lanes, each cut to 15 random bits
(random_ leaves an int64's top bit 0), compared with p·2^15. That is a Bernoulli mask whose drop rate is p rounded
to a multiple of 2^-15 (within 1.6e-5 of p), the kept elements scaled by the exact inverse of that rate's
complement, so the expectation is preserved exactly; it costs about a quarter of bernoulli_ (benchmarks/dropout.py
measures what that does to a training step per architecture). Other devices keep torch's fused kernel; p = 0 or
eval mode returns the input untouched. Attention-weight dropout is the attention kernel's own dropout_p
(ablate.models.attention says why).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

BITS = 15  # random bits a lane: a drop rate is p rounded to a multiple of 2^-BITS
LEVELS = 1 << BITS


def keep_mask(shape: torch.Size, p: float) -> torch.Tensor:
    """float32 mask of `shape`: 1 / (1 - q) with probability 1 - q, else 0, where q = round(p·2^15) / 2^15.
    Four elements a draw from the global generator (seeds are honoured)."""
    n = shape.numel()
    lanes = torch.empty((n + 3) // 4, dtype=torch.int64).random_().view(torch.int16)[:n]
    dropped = round(p * LEVELS)
    return lanes.bitwise_and_(LEVELS - 1).ge_(dropped).view(shape).to(torch.float32).mul_(
        LEVELS / (LEVELS - dropped))


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """F.dropout(x, p, training): zero each element with probability p, scale the rest by 1 / (1 - p)."""
    if not training or p == 0:
        return x
    dropped = round(p * LEVELS)
    if x.device.type != "cpu" or dropped in (0, LEVELS):  # a rate the 15 bits cannot express: torch's own
        return F.dropout(x, p, True)
    mask = keep_mask(x.shape, p)
    return x * (mask if x.dtype == torch.float32 else mask.to(x.dtype))


class Dropout(nn.Dropout):
    """nn.Dropout (same p, same state, same repr) through dropout() above."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)
