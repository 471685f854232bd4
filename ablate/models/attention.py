"""Attention: multi-head scaled dot-product, Bahdanau's additive and Luong's dot scores.

Every attention here has one signature:
    attn(query (B, Lq, D), memory (B, Lk, D), key_pad (B, Lk) bool, True = padding)
      -> (context (B, Lq, D), weights (B, H, Lq, Lk) or None)
so a decoder can swap one for another. Weights are returned when need_weights
is true (heatmaps); otherwise multi-head takes the fused SDPA kernel.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ablate.models.positional import Rotary
from ablate.registry import Registry

ATTENTION = Registry("attention")


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


@ATTENTION.register("multihead", help="multi-head scaled dot-product attention (Vaswani et al. 2017)")
class MultiHeadAttention(nn.Module):
    """d_k sizes each head's queries and keys, d_v its values (both d_model // n_heads by default, as the paper)."""

    def __init__(
        self,
        d_model: int,
        n_heads: int = 1,
        d_k: Optional[int] = None,
        d_v: Optional[int] = None,
        dropout: float = 0.0,
        rotary: bool = False,
    ):
        super().__init__()
        self.h = n_heads
        self.dk = d_k or d_model // n_heads
        self.dv = d_v or d_model // n_heads
        self.qk_inner, self.inner = self.h * self.dk, self.h * self.dv
        # one matmul for self-attention: [queries | keys | values]
        self.qkv = nn.Linear(d_model, 2 * self.qk_inner + self.inner)
        self.out = nn.Linear(self.inner, d_model)
        self.dropout = dropout
        self.rope = Rotary(self.dk) if rotary else None

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
        if self.rope is not None:
            q, k = self.rope(q), self.rope(k)
        Lq, Lk = q.size(2), k.size(2)
        p = self.dropout if self.training else 0.0
        weights = None
        if not need_weights:
            if key_pad is None:  # the kernel's own causal path is faster than an explicit mask
                y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=causal and Lq > 1)
            else:
                mask = allowed_mask(key_pad, causal, Lq, Lk, q.device)
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        else:
            scores = q @ k.transpose(-2, -1) / math.sqrt(self.dk)  # (B, H, Lq, Lk)
            weights = masked_softmax(scores, allowed_mask(key_pad, causal, Lq, Lk, q.device))
            y = F.dropout(weights, p) @ v
        y = y.transpose(1, 2).reshape(query.size(0), Lq, self.inner)
        return self.out(y), weights


@ATTENTION.register("additive", help="Bahdanau et al. 2015: score = v . tanh(W q + U k)")
class AdditiveAttention(nn.Module):
    def __init__(self, d_model: int, dropout: float = 0.0, **_):
        super().__init__()
        self.wq = nn.Linear(d_model, d_model, bias=False)
        self.wk = nn.Linear(d_model, d_model)
        self.v = nn.Linear(d_model, 1, bias=False)

    def forward(self, query, memory, key_pad=None, causal=False, need_weights=False):
        # (B, Lq, 1, D) + (B, 1, Lk, D) -> (B, 1, Lq, Lk): one "head"
        scores = self.v(torch.tanh(self.wq(query)[:, :, None] + self.wk(memory)[:, None])).squeeze(-1)[:, None]
        weights = masked_softmax(scores, allowed_mask(key_pad, causal, query.size(1), memory.size(1), query.device))
        return weights[:, 0] @ memory, weights


@ATTENTION.register("dot", help="Luong et al. 2015: score = q . k")
class DotAttention(nn.Module):
    def __init__(self, d_model: int, dropout: float = 0.0, **_):
        super().__init__()

    def forward(self, query, memory, key_pad=None, causal=False, need_weights=False):
        scores = query @ memory.transpose(-2, -1)  # (B, Lq, Lk)
        mask = allowed_mask(key_pad, causal, query.size(1), memory.size(1), query.device)
        weights = masked_softmax(scores[:, None], mask)  # (B, 1, Lq, Lk)
        return weights[:, 0] @ memory, weights
