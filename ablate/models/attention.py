"""Attention: multi-head scaled dot-product, Bahdanau's additive and Luong's dot scores.

Every attention kind is registered in ATTENTION (ablate.models.components) and has one signature:
    Kind(d_model, n_heads=1, d_k=None, d_v=None, dropout=0.0, positional=None)
    attn(query (B, Lq, D), memory (B, Lk, D) or None = self-attention, key_pad (B, Lk) bool, True = padding,
         causal=False, need_weights=False) -> (context (B, Lq, D), weights (B, H, Lq, Lk) or None)
so a layer can swap one for another. `positional` (a PositionalEncoding, for self-attention) may rotate
queries and keys and add a bias to the scores. Weights are returned when need_weights is true
(heatmaps); otherwise multi-head takes the fused SDPA kernel.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ablate.models.components import ATTENTION
from ablate.models.positional import PositionalEncoding


def causal_mask(Lq: int, Lk: int, device: torch.device) -> torch.Tensor:
    """(Lq, Lk) bool, True where query i may see key j (j <= i)."""
    return torch.ones(Lq, Lk, dtype=torch.bool, device=device).tril(diagonal=Lk - Lq)


def allowed_mask(
    key_pad: Optional[torch.Tensor], causal: bool, Lq: int, Lk: int, device: torch.device
) -> Optional[torch.Tensor]:
    """Boolean (B|1, 1, Lq, Lk) mask, True = may attend; None when nothing is masked."""
    mask = None
    if key_pad is not None:
        mask = (~key_pad)[:, None, None, :]
    if causal:
        c = causal_mask(Lq, Lk, device)[None, None]
        mask = c if mask is None else mask & c
    return mask


def masked_softmax(scores: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(dim=-1)


class Attention(nn.Module):
    """Holds the positional encoding without owning it (its stack does: one table, one place in state_dict)."""

    def __init__(self, positional: Optional[PositionalEncoding] = None):
        super().__init__()
        object.__setattr__(self, "positional", positional)

    def _rotate(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (q, k) if self.positional is None else self.positional.rotate(q, k)

    def _bias(self, Lq: int, Lk: int, H: int, device: torch.device) -> Optional[torch.Tensor]:
        return None if self.positional is None else self.positional.score_bias(Lq, Lk, H, device)


@ATTENTION.register("multihead")
class MultiHeadAttention(Attention):
    """d_k sizes each head's queries and keys, d_v its values (both d_model // n_heads by default, as the paper)."""

    def __init__(
        self,
        d_model: int,
        n_heads: int = 1,
        d_k: Optional[int] = None,
        d_v: Optional[int] = None,
        dropout: float = 0.0,
        positional: Optional[PositionalEncoding] = None,
    ):
        super().__init__(positional)
        self.h = n_heads
        self.dk = d_k or d_model // n_heads
        self.dv = d_v or d_model // n_heads
        self.qk_inner, self.inner = self.h * self.dk, self.h * self.dv
        # one matmul for self-attention: [queries | keys | values]
        self.qkv = nn.Linear(d_model, 2 * self.qk_inner + self.inner)
        self.out = nn.Linear(self.inner, d_model)
        self.dropout = dropout

    def _heads(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, H*d) -> (B, H, L, d)
        B, L, _ = x.shape
        return x.view(B, L, self.h, -1).transpose(1, 2)

    def forward(
        self,
        query: torch.Tensor,
        memory: Optional[torch.Tensor] = None,
        key_pad: Optional[torch.Tensor] = None,
        causal: bool = False,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        sizes = [self.qk_inner, self.qk_inner, self.inner]
        if memory is None:  # self-attention
            q, k, v = self.qkv(query).split(sizes, dim=-1)
        else:
            w, b, n = self.qkv.weight, self.qkv.bias, self.qk_inner
            q = F.linear(query, w[:n], b[:n])
            k, v = F.linear(memory, w[n:], b[n:]).split(sizes[1:], dim=-1)
        q, k, v = self._heads(q), self._heads(k), self._heads(v)
        q, k = self._rotate(q, k)
        Lq, Lk = q.size(2), k.size(2)
        bias = self._bias(Lq, Lk, self.h, q.device)
        p = self.dropout if self.training else 0.0
        weights = None
        if not need_weights:
            if key_pad is None and bias is None:  # the kernel's own causal path is faster than an explicit mask
                y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=causal and Lq > 1)
            else:
                mask = allowed_mask(key_pad, causal, Lq, Lk, q.device)
                if bias is not None:  # a float mask carries both: the bias, and -inf where not allowed
                    bias = bias.to(q.dtype)[None]
                    mask = bias if mask is None else bias.masked_fill(~mask, float("-inf"))
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        else:
            scores = q @ k.transpose(-2, -1) / math.sqrt(self.dk)  # (B, H, Lq, Lk)
            if bias is not None:
                scores = scores + bias
            weights = masked_softmax(scores, allowed_mask(key_pad, causal, Lq, Lk, q.device))
            y = F.dropout(weights, p) @ v
        y = y.transpose(1, 2).reshape(query.size(0), Lq, self.inner)
        return self.out(y), weights


@ATTENTION.register("additive")
class AdditiveAttention(Attention):
    """One head; the positional hooks act on the projected query and key."""

    def __init__(self, d_model: int, n_heads: int = 1, d_k: Optional[int] = None, d_v: Optional[int] = None,
                 dropout: float = 0.0, positional: Optional[PositionalEncoding] = None):
        super().__init__(positional)
        self.wq = nn.Linear(d_model, d_model, bias=False)
        self.wk = nn.Linear(d_model, d_model)
        self.v = nn.Linear(d_model, 1, bias=False)

    def forward(self, query, memory=None, key_pad=None, causal=False, need_weights=False):
        memory = query if memory is None else memory
        q, k = self._rotate(self.wq(query)[:, None], self.wk(memory)[:, None])  # (B, 1, L, D)
        # (B, Lq, 1, D) + (B, 1, Lk, D) -> (B, 1, Lq, Lk): one "head"
        scores = self.v(torch.tanh(q[:, 0, :, None] + k[:, 0, None])).squeeze(-1)[:, None]
        bias = self._bias(query.size(1), memory.size(1), 1, query.device)
        scores = scores if bias is None else scores + bias
        weights = masked_softmax(scores, allowed_mask(key_pad, causal, query.size(1), memory.size(1), query.device))
        return weights[:, 0] @ memory, weights


@ATTENTION.register("dot")
class DotAttention(Attention):
    """No parameters: the context is a weighted sum of the memory itself."""

    def __init__(self, d_model: int, n_heads: int = 1, d_k: Optional[int] = None, d_v: Optional[int] = None,
                 dropout: float = 0.0, positional: Optional[PositionalEncoding] = None):
        super().__init__(positional)

    def forward(self, query, memory=None, key_pad=None, causal=False, need_weights=False):
        memory = query if memory is None else memory
        q, k = self._rotate(query[:, None], memory[:, None])  # (B, 1, L, D)
        scores = q @ k.transpose(-2, -1)  # (B, 1, Lq, Lk)
        bias = self._bias(query.size(1), memory.size(1), 1, query.device)
        scores = scores if bias is None else scores + bias
        mask = allowed_mask(key_pad, causal, query.size(1), memory.size(1), query.device)
        weights = masked_softmax(scores, mask)  # (B, 1, Lq, Lk)
        return weights[:, 0] @ memory, weights
