"""Linear attention (Katharopoulos et al. 2020, "Transformers are RNNs"): softmax(q k^T) replaced by the kernel
phi(q) phi(k)^T with phi = elu + 1, so attention is phi(q) (sum_j phi(k_j) v_j^T) / phi(q) . sum_j phi(k_j).

The causal form runs these sums as cumulative sums over positions (linear in length, no L x L matrix); decoding
keeps a constant-size state, S = sum_j phi(k_j) v_j^T (B, H, d_k, d_v) and z = sum_j phi(k_j) (B, H, d_k),
whatever the prefix length. Queries and keys may be rotated by the positional encoding (before phi); there is
no score matrix, so an encoding that biases scores (ALiBi) does not apply and is refused.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F

from ablate.models.attention import Attention, HeadProjections, allowed_mask, call_lengths
from ablate.models.components import ATTENTION
from ablate.models.dropout import Dropout
from ablate.models.flops import matmul
from ablate.models.positional import PositionalEncoding

EPS = 1e-6


def phi(x: torch.Tensor) -> torch.Tensor:
    """The paper's feature map: elu(x) + 1 > 0, so every implied attention weight is positive."""
    return F.elu(x) + 1


@ATTENTION.register("linear")
class LinearAttention(HeadProjections, Attention):
    """Multi-head projections as multi-head attention (d_k, d_v per head); kernelised scores."""

    def __init__(self, d_model: int, n_heads: int = 1, d_k: Optional[int] = None, d_v: Optional[int] = None,
                 dropout: float = 0.0, positional: Optional[PositionalEncoding] = None):
        super().__init__(positional)
        if positional is not None and type(positional).score_bias is not PositionalEncoding.score_bias:
            raise ValueError(f"linear attention has no score matrix: the positional encoding "
                             f"{type(positional).__name__} biases scores and cannot apply (use sinusoidal, "
                             f"learned, rotary or none)")
        self._projections(d_model, n_heads, d_k, d_v)
        self.drop = Dropout(dropout)

    def flops(self, args: tuple, kwargs: dict, output: Any) -> int:
        """Projections and, per head: causal, per position the outer product phi(k) v^T and its running sum
        (2·d_k·d_v), phi(q) against it (2·d_k·d_v), the normaliser's running sum, product and sum (3·d_k) and
        the division (d_v); otherwise phi(k)^T v once (2·Lk·d_k·d_v), phi(q) against it (2·Lq·d_k·d_v), the
        key sum (Lk·d_k), the normaliser (2·Lq·d_k) and the division (Lq·d_v)."""
        B, Lq, Lk, D = call_lengths(args, kwargs)
        dk, dv = self.dk, self.dv
        if kwargs.get("causal", args[3] if len(args) > 3 else False):
            per_head = Lq * (4 * dk * dv + 3 * dk + dv)
        else:
            per_head = matmul(dk, Lk, dv) + matmul(Lq, dk, dv) + Lk * dk + matmul(Lq, dk, 1) + Lq * dv
        return self._projection_flops(B, Lq, Lk, D) + B * self.h * per_head

    def _out(self, y):
        return self.out(self.drop(y.transpose(1, 2).reshape(y.size(0), y.size(2), self.inner)))

    def forward(self, query, memory=None, key_pad=None, causal=False, need_weights=False):
        q = self._q(query)
        k, v = self._kv(query if memory is None else memory)
        if memory is None:
            q, k = self._rotate(q, k)
        fq, fk = phi(q), phi(k)
        if key_pad is not None:  # padded keys add nothing to the sums
            fk = fk.masked_fill(key_pad[:, None, :, None], 0.0)
        if causal:
            Lq, Lk = q.size(2), k.size(2)
            if Lq != Lk:
                raise ValueError("causal linear attention needs queries and keys of one sequence")
            kv = torch.cumsum(fk[..., :, None] * v[..., None, :], dim=2)  # (B, H, L, d_k, d_v)
            num = torch.einsum("bhld,bhlde->bhle", fq, kv)
            den = (fq * fk.cumsum(2)).sum(-1)
        else:
            num = fq @ (fk.transpose(-2, -1) @ v)
            den = fq @ fk.sum(2)[..., None]
            den = den[..., 0]
        y = num / (den[..., None] + EPS)
        weights = None
        if need_weights:  # the weights it implies: phi(q) phi(k)^T, masked, normalised per query
            w = fq @ fk.transpose(-2, -1)
            mask = allowed_mask(key_pad, causal, q.size(2), k.size(2), q.device)
            if mask is not None:
                w = w.masked_fill(~mask, 0.0)
            weights = w / (w.sum(-1, keepdim=True) + EPS)
        return self._out(y), weights

    # ---- cached decoding: constant-size state (S, z)
    def memory_state(self, memory, key_pad):
        k, v = self._kv(memory)
        fk = phi(k)
        if key_pad is not None:
            fk = fk.masked_fill(key_pad[:, None, :, None], 0.0)
        return fk.transpose(-2, -1) @ v, fk.sum(2)  # (B, H, d_k, d_v), (B, H, d_k)

    def attend_memory(self, query, m):
        S, z = m
        fq = phi(self._q(query))
        return self._out((fq @ S) / ((fq @ z[..., None]) + EPS))

    def select_memory(self, m, idx):
        return m[0][idx], m[1][idx]

    def self_step(self, x, cache, positions, valid=None):
        q = self._q(x)
        k, v = self._kv(x)
        if self.positional is not None:
            q, k = self.positional.rotate_at(q, positions), self.positional.rotate_at(k, positions)
        fq, fk = phi(q), phi(k)
        if valid is not None:  # tokens past a row's end enter neither the sums nor the state
            fk = fk.masked_fill(~valid[:, None, :, None], 0.0)
        B, H, n, dk = fk.shape
        if cache is None:
            cache = (fk.new_zeros(B, H, dk, v.size(-1)), fk.new_zeros(B, H, dk))
        S, z = cache
        kv = S[:, :, None] + torch.cumsum(fk[..., :, None] * v[..., None, :], dim=2)  # (B, H, n, d_k, d_v)
        zs = z[:, :, None] + fk.cumsum(2)
        num = torch.einsum("bhld,bhlde->bhle", fq, kv)
        den = (fq * zs).sum(-1)
        return self._out(num / (den[..., None] + EPS)), (kv[:, :, -1], zs[:, :, -1])

    def select_self(self, cache, idx):
        return cache[0][idx], cache[1][idx]
