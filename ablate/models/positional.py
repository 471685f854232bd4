"""Positional encodings: how (and whether) a model is told where each token is.

A PositionalEncoding has three hooks, each a no-op unless the encoding needs it:
    embed(x)                      add to the (scaled) token embeddings        sinusoidal, learned
    rotate(q, k)                  rotate queries and keys in self-attention   rotary
    score_bias(Lq, Lk, H, device) a (H|1, Lq, Lk) bias added to the scores    alibi
Attention layers call rotate and score_bias; stacks call embed. A new encoding is one subclass
registered in POSITIONAL (ablate.models.components); nothing else needs to know it.

Cached (incremental) decoding feeds blocks of tokens that are not the whole prefix, at absolute positions
that may differ per row (a prefix LM's target starts right after each row's own source). It calls the
position-aware forms below; their defaults derive from the three hooks, so an encoding that defines only
those (ALiBi, a plugin's) decodes with a cache unchanged:
    embed_at(x, positions (B, L))              additive encodings: rows of embed() over 0..max(positions)
    rotate_at(x, positions (B, L))             x (B, H, L, d) rotated as the keys at those positions
    score_bias_at(q_pos (B, Lq), Lk, H, device) (B, H|1, Lq, Lk): rows q_pos of the square score_bias(P, P)
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from ablate.models.components import POSITIONAL


class PositionalEncoding(nn.Module):
    """No position information; subclasses override the hooks they use."""

    def __init__(self, d_model: int, max_len: int = 4096):
        super().__init__()

    def embed(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, D) -> (B, L, D)
        return x

    def rotate(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, H, Lq, d_k), (B, H, Lk, d_k); the queries are the last Lq positions of the Lk keys."""
        return q, k

    def score_bias(self, Lq: int, Lk: int, n_heads: int, device: torch.device) -> Optional[torch.Tensor]:
        """(H|1, Lq, Lk) added to the scores, or None. As for rotate, the queries are the last Lq positions of
        the Lk keys (a KV cache's new block); an encoding may also accept LongTensors of absolute query and key
        positions in place of the counts (alibi does)."""
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(x)

    # ------------------------------------------------------------ at absolute positions (cached decoding)
    def embed_at(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """(B, L, D) tokens at positions (B, L): what embed adds to position p, added to each token."""
        if type(self).embed is PositionalEncoding.embed:
            return x
        P = int(positions.max()) + 1
        table = self.embed(x.new_zeros(1, P, x.size(-1)))[0]  # (P, D): the additive term of each position
        return x + table[positions]

    def rotate_at(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """(B, H, L, d) rotated as keys at positions (B, L); queries are rotated the same way at theirs."""
        if type(self).rotate is PositionalEncoding.rotate:
            return x
        # generic: place each vector at its position in a full-length block, rotate that block, read back
        B, H, L, d = x.shape
        P = int(positions.max()) + 1
        idx = positions[:, None, :, None].expand(B, H, L, d)
        block = x.new_zeros(B, H, P, d).scatter(2, idx, x)
        return self.rotate(block, block)[1].gather(2, idx)

    def score_bias_at(self, q_pos: torch.Tensor, Lk: int, n_heads: int,
                      device: torch.device) -> Optional[torch.Tensor]:
        """Bias of queries at absolute positions q_pos (B, Lq) over keys at positions 0..Lk-1:
        (B, H|1, Lq, Lk), or None. Read from the square bias, where query i sits at position i."""
        if type(self).score_bias is PositionalEncoding.score_bias:
            return None
        P = max(Lk, int(q_pos.max()) + 1)
        square = self.score_bias(P, P, n_heads, device)
        if square is None:
            return None
        rows = square[:, q_pos]  # (H, B, Lq, P)
        return rows[..., :Lk].transpose(0, 1)


@POSITIONAL.register("sinusoidal")
class Sinusoidal(PositionalEncoding):
    def __init__(self, d_model: int, max_len: int = 4096):
        super().__init__(d_model, max_len)
        pos = torch.arange(max_len).unsqueeze(1)
        div = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div)[:, : d_model // 2]
        self.register_buffer("pe", pe, persistent=False)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        if x.size(1) > self.pe.size(0):
            self.pe = Sinusoidal(x.size(-1), 2 * x.size(1)).pe.to(x.device)
        return x + self.pe[: x.size(1)]


@POSITIONAL.register("learned")
class Learned(PositionalEncoding):
    def __init__(self, d_model: int, max_len: int = 512):
        super().__init__(d_model, max_len)
        self.emb = nn.Embedding(max_len, d_model)
        # Std 1, the size tokens have once scaled by sqrt(d_model) (and that of the sinusoidal table): a
        # small init (0.02) leaves positions ~50x quieter than tokens, and `reverse` then barely learns.
        nn.init.normal_(self.emb.weight, std=1.0)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        L = x.size(1)
        if L > self.emb.num_embeddings:
            raise ValueError(
                f"learned positional encoding has no embedding for position {L - 1}: it was built for "
                f"{self.emb.num_embeddings} positions (use sinusoidal or rotary to run on longer inputs)"
            )
        return x + self.emb.weight[:L]


@POSITIONAL.register("rotary")
class RotaryPosition(PositionalEncoding):
    """Leaves embeddings alone; rotates queries and keys so scores depend on relative position only."""

    def rotate(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        Lq, Lk = q.size(-2), k.size(-2)
        return rope(q, start=Lk - Lq), rope(k)

    def rotate_at(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return rope(x, positions=positions[:, None])


@POSITIONAL.register("none")
class NoPosition(PositionalEncoding):
    pass


def rope(x: torch.Tensor, start: int = 0, base: float = 10000.0,
         positions: Optional[torch.Tensor] = None) -> torch.Tensor:
    """RoPE (Su et al. 2021) of (..., L, d) at positions start..start+L-1 (or at `positions`, broadcastable to
    x's leading dims and L): each channel pair rotated by an angle."""
    d = x.size(-1)
    if d % 2:
        raise ValueError(f"rotary positional encoding needs an even query/key head size, got d_k={d}")
    inv_freq = base ** (-torch.arange(0, d, 2, device=x.device, dtype=torch.float32) / d)
    if positions is None:
        positions = torch.arange(start, start + x.size(-2), device=x.device)
    ang = positions.to(torch.float32)[..., None] * inv_freq  # (..., L, d/2)
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


class Rotary(nn.Module):
    """RoPE as a module over (B, H, L, d_k), positions from 0."""

    def __init__(self, d_k: int, base: float = 10000.0):
        super().__init__()
        if d_k % 2:
            raise ValueError(f"rotary positional encoding needs an even query/key head size, got d_k={d_k}")
        self.base = base

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rope(x, base=self.base)
