"""Positional encodings: how (and whether) a model is told where each token is.

Additive ones (sinusoidal, learned) are added to the embeddings; rotary rotates
queries and keys inside attention (see attention.py); none leaves a bag of tokens.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ablate.registry import Registry

POSITIONAL = Registry("positional encoding")


@POSITIONAL.register("sinusoidal", help="fixed sin/cos of position, as Vaswani et al. 2017")
class Sinusoidal(nn.Module):
    rotary = False

    def __init__(self, d_model: int, max_len: int = 4096):
        super().__init__()
        pos = torch.arange(max_len).unsqueeze(1)
        div = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div)[:, : d_model // 2]
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, D) -> (B, L, D)
        if x.size(1) > self.pe.size(0):
            self.pe = Sinusoidal(x.size(-1), 2 * x.size(1)).pe.to(x.device)
        return x + self.pe[: x.size(1)]


@POSITIONAL.register("learned", help="a trained embedding per position (none for lengths beyond max_len)")
class Learned(nn.Module):
    rotary = False

    def __init__(self, d_model: int, max_len: int = 512):
        super().__init__()
        self.emb = nn.Embedding(max_len, d_model)
        nn.init.normal_(self.emb.weight, std=1.0)  # the tokens' scale once multiplied by sqrt(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        L = x.size(1)
        if L > self.emb.num_embeddings:
            raise ValueError(
                f"learned positional encoding has no embedding for position {L - 1}: it was built for "
                f"{self.emb.num_embeddings} positions (use sinusoidal or rotary to run on longer inputs)"
            )
        return x + self.emb.weight[:L]


@POSITIONAL.register("rotary", help="rotary position embedding (RoPE) applied to queries and keys")
class RotaryMarker(nn.Module):
    """Leaves embeddings alone; attention layers see .rotary and rotate q and k."""

    rotary = True

    def __init__(self, d_model: int, max_len: int = 0):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@POSITIONAL.register("none", help="no position information: self-attention is then permutation-equivariant")
class NoPosition(RotaryMarker):
    rotary = False


class Rotary(nn.Module):
    """RoPE (Su et al. 2021): rotate each pair of channels by a position-dependent angle."""

    def __init__(self, d_head: int, base: float = 10000.0):
        super().__init__()
        if d_head % 2:
            raise ValueError(f"rotary positional encoding needs an even head size, got d_head={d_head}")
        self.register_buffer("inv_freq", base ** (-torch.arange(0, d_head, 2).float() / d_head), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, H, L, dh) -> same
        L = x.size(-2)
        ang = torch.arange(L, device=x.device, dtype=self.inv_freq.dtype)[:, None] * self.inv_freq  # (L, dh/2)
        cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
        x1, x2 = x[..., 0::2], x[..., 1::2]
        return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)
