"""Dropout at its real cost on CPU.

torch's CPU dropout draws its mask with bernoulli_ (about 6 ns an element, most of the op's cost; the multiply
is 0.1 ns); a float32 uniform compared with p in place is the same Bernoulli(1 - p) mask (to the 2^-24
resolution of the uniform) for about a third less, forward and backward (benchmarks/dropout.py measures what
that does to a training step per architecture). Other devices keep torch's fused kernel;
p = 0 or eval mode returns the input untouched. Attention-weight dropout is not done here: it is the fused
attention kernel's own dropout_p (ablate.models.attention).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """F.dropout(x, p, training): zero each element with probability p, scale the rest by 1 / (1 - p)."""
    if not training or p == 0:
        return x
    if x.device.type != "cpu" or p >= 1:
        return F.dropout(x, p, True)
    # float32 draws whatever x's dtype (bf16 has 8 bits); compared and scaled in place: 1/(1-p) kept, 0 dropped
    mask = torch.rand(x.shape).ge_(p).mul_(1.0 / (1.0 - p))
    return x * (mask if x.dtype == torch.float32 else mask.to(x.dtype))


class Dropout(nn.Dropout):
    """nn.Dropout (same p, same state, same repr) through dropout() above."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)
