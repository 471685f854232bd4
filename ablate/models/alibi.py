"""ALiBi (Press et al. 2022): no position embeddings; each head adds a linear distance penalty to its scores.

Head h adds −m_h·(i−j) to the score of query i for key j ≤ i; the slopes m_h are a geometric sequence (8 heads:
1/2, 1/4, …, 1/256), for a head count that is not a power of two as the paper's code does. Nothing is learned
and nothing is tabulated by length, so a model trained on short inputs runs on longer ones unchanged.

Causal self-attention (the decoder) sees only j ≤ i, so it gets exactly the paper's bias. The paper defines no
bidirectional form; two are registered for the encoder's unmasked self-attention:
  alibi            keys to the right (j > i) are penalised by a head's *mirror* slope m_{H−1−h}: −m_{H−1−h}·(j−i).
                   Head 0 looks sharply left and broadly right, the last head the reverse, so the encoder
                   knows left from right (with one head it is the symmetric form below).
  alibi_symmetric  −m_h·|i−j| on both sides (data2vec 2.0, MosaicBERT). Symmetric in i and j, an encoder with it
                   maps a reversed input to its reversed output, and since cross-attention carries no positions
                   an encoder-decoder then cannot tell a source from its reverse: it cannot learn `reverse`.
Both equal the paper's bias wherever j ≤ i, so either serves causal stacks.

Query and key positions: score_bias(Lq, Lk, ...) takes counts (the queries are the last Lq of the Lk key
positions 0..Lk−1, the same convention as rotate, which is what a KV cache's new block is) or LongTensors of
absolute positions (q_pos (Lq,), k_pos (Lk,)), for a caller that knows them; alibi_bias() is the formula itself.
"""

from __future__ import annotations

import math
from typing import Optional, Union

import torch

from ablate.models.components import POSITIONAL
from ablate.models.positional import PositionalEncoding

Positions = Union[int, torch.Tensor]


def alibi_slopes(n_heads: int) -> list[float]:
    """The paper's slopes: 2^(−8/n), 2^(−16/n), … for n a power of two; otherwise those of the power of two
    below n, then every other slope of twice that power for the heads left over (ofirpress/attention_with_
    linear_biases, get_slopes)."""
    def power_of_two(n: int) -> list[float]:
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    if n_heads < 1:
        raise ValueError(f"ALiBi needs at least one head, got n_heads={n_heads}")
    if math.log2(n_heads).is_integer():
        return power_of_two(n_heads)
    below = 2 ** math.floor(math.log2(n_heads))
    return power_of_two(below) + alibi_slopes(2 * below)[0::2][: n_heads - below]


def alibi_bias(q_pos: torch.Tensor, k_pos: torch.Tensor, slopes: torch.Tensor,
               right_slopes: Optional[torch.Tensor] = None) -> torch.Tensor:
    """(H, Lq, Lk): −slope·(q−k) where k ≤ q, −right_slope·(k−q) where k > q (right_slopes None: slopes)."""
    d = (q_pos[:, None] - k_pos[None, :]).to(slopes.dtype)  # (Lq, Lk): > 0 for keys to the left
    right = slopes if right_slopes is None else right_slopes
    return torch.where(d >= 0, -slopes[:, None, None] * d, right[:, None, None] * d)


def _positions(Lq: Positions, Lk: Positions, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    k = Lk.to(device) if torch.is_tensor(Lk) else torch.arange(Lk, device=device)
    if torch.is_tensor(Lq):
        return Lq.to(device), k
    n_keys = int(k.max()) + 1 if k.numel() else 0
    return torch.arange(n_keys - Lq, n_keys, device=device), k


@POSITIONAL.register("alibi")
class ALiBi(PositionalEncoding):
    """Adds nothing to the embeddings and rotates nothing; biases the scores (see the module docstring)."""

    mirror = True  # keys to the right use the head's mirror slope

    def score_bias(self, Lq: Positions, Lk: Positions, n_heads: int, device: torch.device) -> torch.Tensor:
        q, k = _positions(Lq, Lk, device)
        slopes = torch.tensor(alibi_slopes(n_heads), device=device)
        return alibi_bias(q, k, slopes, slopes.flip(0) if self.mirror else None)


@POSITIONAL.register("alibi_symmetric")
class SymmetricALiBi(ALiBi):
    mirror = False
