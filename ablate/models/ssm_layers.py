"""Selective diagonal state-space layers (S4D: Gu et al. 2022; Mamba: Gu & Dao 2023) in plain PyTorch.

Per inner channel e and state index n, with A diagonal, negative and real (A = −exp(A_log), S4D-real init):
    h_t = exp(Δ_t A) h_{t−1} + Δ_t B_t x_t          (h_t: (E, N))
    y_t = C_t · h_t + D x_t
Δ_t (per channel), B_t and C_t (per state index) are computed from x_t: the "selection" that lets the layer
decide what to keep. Around the scan, Mamba's gated block: in-projection to 2·E (E = expand·d_model) split into
x and a gate z; a short causal depthwise convolution and SiLU on x; the scan; y·SiLU(z); out-projection;
pre-norm residual. Training runs the scan over whole sequences at once (a chunked scan); decoding runs the
same recurrence one token at a time with a constant-size state: per layer the conv's last d_conv−1 inputs and h.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ablate.models.decoders import DecoderOutput
from ablate.models.dropout import Dropout
from ablate.models.flops import matmul

LayerState = tuple[torch.Tensor, torch.Tensor]  # conv buffer (B, E, d_conv − 1), scan state h (B, E, N)


def chunk_len(L: int) -> int:
    """The chunked scan's chunk length for a sequence of L: about √L (√L steps within, √L chunks across)."""
    return max(1, math.isqrt(max(L - 1, 0)) + 1)


def _chunked_scan(a: torch.Tensor, b: torch.Tensor, reverse: bool = False) -> torch.Tensor:
    """All h_t = a_t h_{t−1} + b_t along dim 1 from h_{−1} = 0 (reverse: h_t = a_t h_{t+1} + b_t from the end),
    without autograd, as a chunked scan.

    The sequence is cut into C chunks of T ≈ √L steps. First every chunk runs the recurrence from zero, all
    chunks at once (T steps over (B, C, ...) slices), keeping its running product of decays P; then the chunks'
    end states are carried on in order (C steps over (B, T, ...) slices): h += P · (state before the chunk).
    About six passes over the (B, L, ...) tensors and 2√L Python steps, where a log-depth (doubling) scan takes
    four passes per doubling. Only decays in (0, 1] are multiplied, so nothing overflows (as a closed form
    with exp(−Σ log a) would).
    """
    B, L, rest = a.size(0), a.size(1), a.shape[2:]
    T = chunk_len(L)
    C = -(-L // T)
    if C * T > L:  # pad with steps that keep the state (decay 1, input 0); SelectiveSSMBlock pads before this
        side = (lambda x, p: torch.cat([p, x], 1)) if reverse else (lambda x, p: torch.cat([x, p], 1))
        a, b = side(a, a.new_ones(B, C * T - L, *rest)), side(b, b.new_zeros(B, C * T - L, *rest))
    a, b = a.reshape(B, C, T, *rest), b.reshape(B, C, T, *rest)
    h, P = torch.empty_like(b), torch.empty_like(a)
    first = T - 1 if reverse else 0
    h[:, :, first], P[:, :, first] = b[:, :, first], a[:, :, first]
    for t in (range(T - 2, -1, -1) if reverse else range(1, T)):
        prev = t + 1 if reverse else t - 1
        torch.addcmul(b[:, :, t], a[:, :, t], h[:, :, prev], out=h[:, :, t])
        torch.mul(a[:, :, t], P[:, :, prev], out=P[:, :, t])
    for c in (range(C - 2, -1, -1) if reverse else range(1, C)):
        carried = h[:, c + 1, :1] if reverse else h[:, c - 1, -1:]
        h[:, c].addcmul_(P[:, c], carried)
    h = h.reshape(B, C * T, *rest)
    return h if C * T == L else (h[:, C * T - L :] if reverse else h[:, :L])


def scan_flops(L: int) -> int:
    """FLOPs per state of _chunked_scan over L steps: within each of the C chunks of T, T − 1 steps of
    h = a h + b and P = a P (3); then the C − 1 later chunks' carry h += P · state (2 per step)."""
    T = chunk_len(L)
    C = -(-L // T)
    return C * (T - 1) * 3 + (C - 1) * T * 2


class _Scan(torch.autograd.Function):
    """The scan with a backward that is itself a (reversed) scan, so autograd keeps a and h, not the scan's
    intermediates. With g_t = ∂/∂h_t + a_{t+1} g_{t+1}: ∂b_t = g_t and ∂a_t = g_t h_{t−1}; q_t = a_t g_t is the
    reversed scan q_t = a_t q_{t+1} + a_t ∂/∂h_t, and g_t = ∂/∂h_t + q_{t+1}."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        h = _chunked_scan(a, b)
        ctx.save_for_backward(a, h)
        return h

    @staticmethod
    def backward(ctx, grad_h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, h = ctx.saved_tensors
        q = _chunked_scan(a, a * grad_h, reverse=True)
        g = grad_h.clone()
        g[:, :-1] += q[:, 1:]
        grad_a = torch.zeros_like(a)
        torch.mul(g[:, 1:], h[:, :-1], out=grad_a[:, 1:])
        return grad_a, g


def parallel_scan(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """All h_t = a_t h_{t−1} + b_t along dim 1 (h_{−1} = 0) for a, b (B, L, ...), differentiable in both."""
    return _Scan.apply(a, b)


class SelectiveSSMBlock(nn.Module):
    """One pre-norm residual Mamba block: (B, L, D) -> (B, L, D)."""

    def __init__(self, d_model: int, d_state: int, expand: int, d_conv: int, dt_rank: int, dropout: float,
                 dt_min: float = 1e-3, dt_max: float = 1e-1):
        super().__init__()
        E, N = expand * d_model, d_state
        self.E, self.N, self.K, self.R = E, N, d_conv, dt_rank
        self.norm = nn.LayerNorm(d_model)
        self.in_proj = nn.Linear(d_model, 2 * E)
        self.conv = nn.Conv1d(E, E, d_conv, groups=E)  # depthwise; padded on the left only, so causal
        self.x_proj = nn.Linear(E, dt_rank + 2 * N, bias=False)  # x -> (Δ's low-rank input, B, C)
        self.dt_proj = nn.Linear(dt_rank, E)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, N + 1, dtype=torch.float32)).repeat(E, 1))  # (E, N)
        self.D = nn.Parameter(torch.ones(E))
        self.out_proj = nn.Linear(E, d_model)
        self.drop = Dropout(dropout)
        # Δ = softplus(dt_proj(.)) starts log-uniform in [dt_min, dt_max], as Mamba: the bias is softplus⁻¹ of it.
        with torch.no_grad():
            dt = torch.exp(torch.rand(E) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))

    def flops(self, args: tuple, kwargs: dict, output: object) -> int:
        """The projections, the depthwise convolution (2·E·d_conv per position), and over the scan's padded
        length Lp for each of the E·N states: a = exp(Δ A) and b = Δu·B (1 each), the chunked scan as it runs
        (within chunks h and the decay product, 3 per step; across chunks the carry, 2 per step) and y = C·h
        (2). E-wide elementwise work (D·u, the gate) is not counted."""
        x = args[0]
        B, L, D = x.shape
        E, N, K, R = self.E, self.N, self.K, self.R
        rows = B * L
        proj = (matmul(rows, D, 2 * E) + matmul(rows, E, R + 2 * N) + matmul(rows, R, E)
                + matmul(rows, E, D) + 2 * rows * E * K)
        Lp = L + -L % chunk_len(L)
        return proj + B * E * N * (4 * Lp + scan_flops(Lp))

    def _selection(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Δ (..., E), B (..., N), C (..., N) from the convolved input u (..., E)."""
        dt, Bm, Cm = self.x_proj(u).split([self.R, self.N, self.N], dim=-1)
        return F.softplus(self.dt_proj(dt)), Bm, Cm

    def forward(self, x: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, LayerState]:
        """The parallel path; also the state after each row's first `lengths` positions (default: all)."""
        B, L, _ = x.shape
        xin, z = self.in_proj(self.norm(x)).chunk(2, dim=-1)  # (B, L, E) each
        xpad = F.pad(xin, (0, 0, self.K - 1, 0))  # zeros before the first position
        u = F.silu(self.conv(xpad.transpose(1, 2)).transpose(1, 2))  # (B, L, E)
        dt, Bm, Cm = self._selection(u)
        # Pad the (B, L, E)-sized inputs, not the (B, L, E, N) ones, to whole chunks: Δ = 0 keeps the state.
        extra = -L % chunk_len(L)
        dt_p, du, Bm_p, Cm_p = (F.pad(t, (0, 0, 0, extra)) for t in (dt, dt * u, Bm, Cm))
        A = -torch.exp(self.A_log)  # (E, N)
        a = torch.exp(dt_p[..., None] * A)  # (B, L + extra, E, N)
        b = du[..., None] * Bm_p[:, :, None, :]
        h = parallel_scan(a, b)
        y = torch.einsum("blen,bln->ble", h, Cm_p)[:, :L] + self.D * u
        out = x + self.drop(self.out_proj(y * F.silu(z)))
        # the state where each row ends: h at its last position, and the conv's window up to there
        ends = torch.full((B,), L, device=x.device) if lengths is None else lengths.to(x.device)
        h_end = h[torch.arange(B, device=x.device), ends - 1]  # (B, E, N)
        idx = ends[:, None] + torch.arange(self.K - 1, device=x.device)[None]  # xpad index = position + K − 1
        buf = xpad.gather(1, idx[..., None].expand(-1, -1, self.E)).transpose(1, 2)  # (B, E, K − 1)
        return out, (buf, h_end)

    def step(self, x: torch.Tensor, state: LayerState) -> tuple[torch.Tensor, LayerState]:
        """The recurrence for one position: x (B, D) and the state after the previous one."""
        buf, h = state
        xin, z = self.in_proj(self.norm(x)).chunk(2, dim=-1)  # (B, E)
        window = torch.cat([buf, xin[..., None]], -1)  # (B, E, K)
        u = F.silu((window * self.conv.weight[:, 0]).sum(-1) + self.conv.bias)
        dt, Bm, Cm = self._selection(u)
        A = -torch.exp(self.A_log)
        h = torch.exp(dt[..., None] * A) * h + (dt * u)[..., None] * Bm[:, None, :]
        y = (h * Cm[:, None, :]).sum(-1) + self.D * u
        return x + self.drop(self.out_proj(y * F.silu(z))), (window[..., 1:], h)


class SSMStack(nn.Module):
    """A causal stack of SelectiveSSMBlocks with a final LayerNorm, on the decoder interface of decoders.py
    (memory=None: a causal language model, as the single-stack presets use it). The state is one LayerState per
    layer: its size does not grow with the sequence."""

    supports_state = True

    def __init__(self, d_model: int, n_layers: int, d_state: int = 16, expand: int = 2, d_conv: int = 4,
                 dt_rank: Optional[int] = None, dropout: float = 0.0):
        super().__init__()
        rank = dt_rank or -(-d_model // 16)
        self.layers = nn.ModuleList(SelectiveSSMBlock(d_model, d_state, expand, d_conv, rank, dropout)
                                    for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor, memory=None, state: Optional[list[LayerState]] = None,
                lengths: Optional[torch.Tensor] = None, need_weights: bool = False) -> DecoderOutput:
        if memory is not None:
            raise ValueError("the ssm stack is a causal language model: it reads no encoder memory")
        if state is not None:  # decoding: the recurrence, one position at a time from the carried state
            outs = []
            for t in range(x.size(1)):
                h, new = x[:, t], []
                for layer, s in zip(self.layers, state, strict=True):
                    h, s = layer.step(h, s)
                    new.append(s)
                state = new
                outs.append(h)
            return DecoderOutput(self.norm(torch.stack(outs, 1)), state)
        states = []
        for layer in self.layers:
            x, s = layer(x, lengths)
            states.append(s)
        return DecoderOutput(self.norm(x), states)
