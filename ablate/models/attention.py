"""Attention: multi-head scaled dot-product, Bahdanau's additive and Luong's dot scores.

Every attention kind is registered in ATTENTION (ablate.models.components) and has one signature:
    Kind(d_model, n_heads=1, d_k=None, d_v=None, dropout=0.0, positional=None)
    attn(query (B, Lq, D), memory (B, Lk, D) or None = self-attention, key_pad (B, Lk) bool, True = padding,
         causal=False, need_weights=False) -> (context (B, Lq, D), weights (B, H, Lq, Lk) or None)
so a layer can swap one for another. `positional` (a PositionalEncoding, for self-attention) may rotate
queries and keys and add a bias to the scores. Weights are returned when need_weights is true
(heatmaps); otherwise multi-head takes the fused SDPA kernel.

Cached decoding (the step contract of SeqModel) uses two more methods, which every kind has:
    memory_state(memory (B, S, D), key_pad) -> m          the source's keys/values, computed once
    attend_memory(query (B, n, D), m) -> (B, n, D)        cross-attention of new queries over it
    self_step(x (B, n, D), cache, positions (B, n), valid (B, n) | None) -> (out (B, n, D), cache)
        causal self-attention of a block of new tokens at absolute positions over all earlier ones; cache is
        what the kind keeps of them (None before the first block). valid marks the tokens that enter the
        cache (a prefix LM's first block is padded past each row's end); invalid ones must come last.
The default implementation (a KVCache) builds on four parts each kind defines: _q, _kv, _scores, _out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ablate.models.components import ATTENTION
from ablate.models.dropout import dropout
from ablate.models.flops import matmul
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


@dataclass
class KVCache:
    """Keys and values of every earlier position, stored at their absolute positions (slot j = position j).

    k (B, H, cap, d_k) rotated, v (B, H, cap, d_v); a row's slots beyond its newest position hold stale
    values that its queries never see (key j is visible to a query at position p only when j <= p) and
    that the next tokens overwrite. cap doubles when a position does not fit.
    """

    k: torch.Tensor
    v: torch.Tensor

    def select(self, idx: torch.Tensor) -> KVCache:
        return KVCache(self.k[idx], self.v[idx])


def call_lengths(args: tuple, kwargs: dict) -> tuple[int, int, int, int]:
    """(B, Lq, Lk, D) of an attention call query, memory=None, ... (self-attention: Lk = Lq)."""
    query = args[0]
    memory = args[1] if len(args) > 1 else kwargs.get("memory")
    B, Lq, D = query.shape
    return B, Lq, (Lq if memory is None else memory.size(1)), D


def _grow(t: torch.Tensor, need: int) -> torch.Tensor:
    cap = t.size(2)
    if need <= cap:
        return t
    return torch.cat([t, t.new_zeros(*t.shape[:2], max(need, 2 * cap) - cap, t.size(3))], dim=2)


class Attention(nn.Module):
    """Holds the positional encoding without owning it (its stack does: one table, one place in state_dict)."""

    def __init__(self, positional: Optional[PositionalEncoding] = None):
        super().__init__()
        object.__setattr__(self, "positional", positional)

    # ---- the parts of the generic cached path: (B, L, D) -> per-head (B, H, L, d), and back
    def _q(self, query: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _kv(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def _scores(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:  # (B, H, Lq, Lk)
        return q @ k.transpose(-2, -1)

    def _out(self, y: torch.Tensor) -> torch.Tensor:  # (B, H, Lq, d_v) -> (B, Lq, D)
        return y[:, 0]

    def _attend(self, q, k, v, mask: Optional[torch.Tensor], bias: Optional[torch.Tensor]) -> torch.Tensor:
        scores = self._scores(q, k)
        if bias is not None:
            scores = scores + bias
        return self._out(masked_softmax(scores, mask) @ v)

    # ---- cached decoding
    def memory_state(self, memory: torch.Tensor, key_pad: Optional[torch.Tensor]) -> Any:
        k, v = self._kv(memory)
        return k, v, key_pad

    def attend_memory(self, query: torch.Tensor, m: Any) -> torch.Tensor:
        k, v, key_pad = m
        mask = None if key_pad is None else (~key_pad)[:, None, None, :]
        return self._attend(self._q(query), k, v, mask, None)

    def select_memory(self, m: Any, idx: torch.Tensor) -> Any:
        k, v, key_pad = m
        return k[idx], v[idx], None if key_pad is None else key_pad[idx]

    def self_step(self, x: torch.Tensor, cache: Optional[KVCache], positions: torch.Tensor,
                  valid: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, KVCache]:
        q = self._q(x)
        k, v = self._kv(x)
        if self.positional is not None:
            q, k = self.positional.rotate_at(q, positions), self.positional.rotate_at(k, positions)
        B, H, n, _ = k.shape
        need = int(positions.max()) + 1
        if cache is None:
            cache = KVCache(k.new_zeros(B, H, need, k.size(-1)), v.new_zeros(B, H, need, v.size(-1)))
        K, V = _grow(cache.k, need), _grow(cache.v, need)
        at = positions[:, None, :, None]
        K = K.scatter(2, at.expand_as(k), k)
        V = V.scatter(2, at.expand_as(v), v)
        cap = K.size(2)
        mask = (torch.arange(cap, device=x.device)[None, None] <= positions[..., None])[:, None]  # (B,1,n,cap)
        bias = None if self.positional is None else self.positional.score_bias_at(positions, cap, H, x.device)
        return self._attend(q, K, V, mask, bias), KVCache(K, V)

    def select_self(self, cache: Any, idx: torch.Tensor) -> Any:
        return cache.select(idx)

    def _rotate(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (q, k) if self.positional is None else self.positional.rotate(q, k)

    def _bias(self, Lq: int, Lk: int, H: int, device: torch.device) -> Optional[torch.Tensor]:
        return None if self.positional is None else self.positional.score_bias(Lq, Lk, H, device)


class HeadProjections:
    """Per-head query/key/value projections (d_k for queries and keys, d_v for values) and the output one,
    shared by the attention kinds that split d_model into heads (multihead, linear)."""

    def _projections(self, d_model: int, n_heads: int, d_k: Optional[int], d_v: Optional[int]) -> None:
        self.h = n_heads
        self.dk = d_k or d_model // n_heads
        self.dv = d_v or d_model // n_heads
        self.qk_inner, self.inner = self.h * self.dk, self.h * self.dv
        # one matmul for self-attention: [queries | keys | values]
        self.qkv = nn.Linear(d_model, 2 * self.qk_inner + self.inner)
        self.out = nn.Linear(self.inner, d_model)

    def _projection_flops(self, B: int, Lq: int, Lk: int, D: int) -> int:
        """Queries from Lq positions, keys and values from Lk, and the output projection."""
        return (matmul(B * Lq, D, self.qk_inner) + matmul(B * Lk, D, self.qk_inner + self.inner)
                + matmul(B * Lq, self.inner, D))

    def _heads(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, H*d) -> (B, H, L, d)
        B, L, _ = x.shape
        return x.view(B, L, self.h, -1).transpose(1, 2)

    def _q(self, query: torch.Tensor) -> torch.Tensor:
        return self._heads(F.linear(query, self.qkv.weight[: self.qk_inner], self.qkv.bias[: self.qk_inner]))

    def _kv(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.qk_inner
        k, v = F.linear(memory, self.qkv.weight[n:], self.qkv.bias[n:]).split([n, self.inner], dim=-1)
        return self._heads(k), self._heads(v)


@ATTENTION.register("multihead")
class MultiHeadAttention(HeadProjections, Attention):
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
        self._projections(d_model, n_heads, d_k, d_v)
        self.dropout = dropout

    def flops(self, args: tuple, kwargs: dict, output: Any) -> int:
        """Projections, then per head the scores q k^T (2·Lq·Lk·d_k) and the weighted sum (2·Lq·Lk·d_v)."""
        B, Lq, Lk, D = call_lengths(args, kwargs)
        return (self._projection_flops(B, Lq, Lk, D)
                + B * self.h * (matmul(Lq, self.dk, Lk) + matmul(Lq, Lk, self.dv)))

    def _out(self, y):
        return self.out(y.transpose(1, 2).reshape(y.size(0), y.size(2), self.inner))

    def _attend(self, q, k, v, mask, bias):
        # the fused kernel, as forward uses: a float mask carries the bias and -inf where not allowed
        if bias is not None:
            bias = bias.to(q.dtype).expand(q.size(0), -1, -1, -1)
            mask = bias if mask is None else bias.masked_fill(~mask, float("-inf"))
        return self._out(F.scaled_dot_product_attention(q, k, v, attn_mask=mask))

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
        # The kernel's own dropout_p even on CPU, where torch takes its math path and bernoulli_ masks for it: the
        # explicit path below with ablate.models.dropout's mask was cheaper (dropout's share of a Transformer step
        # 9.9% against 14.6%) but made a run's numbers depend on the thread count, so a run resumed in a process
        # with other threads (a requeued SLURM job, a retried Ray task) no longer matched (tests/test_scale.py).
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
            y = dropout(weights, p, True) @ v
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

    def flops(self, args: tuple, kwargs: dict, output: Any) -> int:
        """W q and U k, then per (query, key) pair the sum W q + U k (D), v . tanh(...) (2·D) and the weighted
        sum of the memory (2·D)."""
        B, Lq, Lk, D = call_lengths(args, kwargs)
        return matmul(B * Lq, D, D) + matmul(B * Lk, D, D) + B * Lq * Lk * 5 * D

    def _q(self, query):
        return self.wq(query)[:, None]

    def _kv(self, memory):
        return self.wk(memory)[:, None], memory[:, None]

    def _scores(self, q, k):
        return self.v(torch.tanh(q[:, 0, :, None] + k[:, 0, None])).squeeze(-1)[:, None]

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

    def flops(self, args: tuple, kwargs: dict, output: Any) -> int:
        """Scores q . k (2·D per pair) and the weighted sum of the memory (2·D per pair)."""
        B, Lq, Lk, D = call_lengths(args, kwargs)
        return B * (matmul(Lq, D, Lk) + matmul(Lq, Lk, D))

    def _q(self, query):
        return query[:, None]

    def _kv(self, memory):
        return memory[:, None], memory[:, None]

    def forward(self, query, memory=None, key_pad=None, causal=False, need_weights=False):
        memory = query if memory is None else memory
        q, k = self._rotate(query[:, None], memory[:, None])  # (B, 1, L, D)
        scores = q @ k.transpose(-2, -1)  # (B, 1, Lq, Lk)
        bias = self._bias(query.size(1), memory.size(1), 1, query.device)
        scores = scores if bias is None else scores + bias
        mask = allowed_mask(key_pad, causal, query.size(1), memory.size(1), query.device)
        weights = masked_softmax(scores, mask)  # (B, 1, Lq, Lk)
        return weights[:, 0] @ memory, weights
