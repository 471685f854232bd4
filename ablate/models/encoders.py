"""Encoders: (B, S, D) embedded source -> EncoderOutput (memory (B, S, D), padding, final state).

Every encoder honours the same shape contract, so the decoder and the model
wrappers never need to know which one they hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ablate.models.attention import ATTENTION
from ablate.models.dropout import Dropout
from ablate.models.flops import matmul
from ablate.models.positional import POSITIONAL, PositionalEncoding
from ablate.registry import Registry

ENCODERS = Registry("encoder")
RNN_CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


@dataclass
class EncoderOutput:
    memory: torch.Tensor  # (B, S, D)
    pad: torch.Tensor  # (B, S) bool, True = padding
    state: object = None  # recurrent final state, (n_layers, B, D) or a (h, c) pair; None if not recurrent
    attn: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> (B, H, S, S) when asked for

    def select(self, idx: torch.Tensor) -> EncoderOutput:
        """Rows idx (beam search repeats and reorders them); a recurrent state has its batch on dim 1."""
        state = self.state
        if isinstance(state, tuple):
            state = tuple(s[:, idx] for s in state)
        elif state is not None:
            state = state[:, idx]
        return EncoderOutput(self.memory[idx], self.pad[idx], state)


# ---------------------------------------------------------------- MLP
@ENCODERS.register("mlp", help="flattens the padded input into one vector; fully connected")
class MLPEncoder(nn.Module):
    """(B, S, D) -> flatten (B, in_len*D) -> MLP -> (B, out_len, D). Sees a fixed maximum length."""

    def __init__(self, d_model: int, d_ff: int, n_layers: int, dropout: float, in_len: int, out_len: int):
        super().__init__()
        self.in_len, self.out_len, self.d = in_len, out_len, d_model
        layers: list[nn.Module] = []
        width = in_len * d_model
        for _ in range(n_layers):
            layers += [nn.Linear(width, d_ff), nn.ReLU(), Dropout(dropout)]
            width = d_ff
        layers.append(nn.Linear(width, out_len * d_model))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, pad: torch.Tensor, need_weights: bool = False) -> EncoderOutput:
        B, S, D = x.shape
        if S > self.in_len:
            raise ValueError(f"the mlp was built for inputs of at most {self.in_len} tokens, got {S}")
        x = x.masked_fill(pad[..., None], 0.0)
        x = F.pad(x, (0, 0, 0, self.in_len - S)).reshape(B, self.in_len * D)
        y = self.net(x).view(B, self.out_len, D)
        return EncoderOutput(y, torch.zeros(B, self.out_len, dtype=torch.bool, device=x.device))


# ---------------------------------------------------------------- CNN
class ConvBlock(nn.Module):
    """Pre-norm residual 1-D convolution; causal pads only on the left so position t sees <= t."""

    def __init__(self, d_model: int, kernel_size: int, dilation: int, dropout: float, causal: bool):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.conv = nn.Conv1d(d_model, 2 * d_model, kernel_size, dilation=dilation)  # GLU halves it
        span = (kernel_size - 1) * dilation
        self.span = span
        self.pad = (span, 0) if causal else (span // 2, span - span // 2)
        self.drop = Dropout(dropout)

    def flops(self, args: tuple, kwargs: dict, output: object) -> int:
        """The convolution: each of L positions, D inputs x kernel_size taps to 2·D outputs (GLU's product,
        one per output element, not counted)."""
        B, L, D = args[0].shape
        return B * matmul(L, D * self.conv.kernel_size[0], 2 * D)

    def step(self, x: torch.Tensor, buf: torch.Tensor,
             lengths: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Causal only: new inputs x (B, n, D) after buf (B, span, D), the span normed inputs before them.
        Returns the outputs and the new buffer: the span inputs before each row's next position (lengths:
        how many of x's tokens are real per row; default all)."""
        full = torch.cat([buf, self.norm(x)], dim=1)  # (B, span + n, D)
        h = F.glu(self.conv(full.transpose(1, 2)), dim=1).transpose(1, 2)
        if lengths is None:
            new = full[:, full.size(1) - self.span:]
        else:
            idx = lengths[:, None] + torch.arange(self.span, device=x.device)[None]
            new = full.gather(1, idx[..., None].expand(-1, -1, full.size(-1)))
        return x + self.drop(h), new

    def forward(self, x: torch.Tensor, pad: Optional[torch.Tensor]) -> torch.Tensor:  # (B, L, D)
        h = self.norm(x)
        if pad is not None:
            h = h.masked_fill(pad[..., None], 0.0)  # padding must not leak into real positions
        h = F.glu(self.conv(F.pad(h.transpose(1, 2), self.pad)), dim=1).transpose(1, 2)
        return x + self.drop(h)


class ConvStack(nn.Module):
    """Dilations 1, 2, 4, ... so the receptive field grows exponentially with depth."""

    def __init__(self, d_model: int, n_layers: int, kernel_size: int, dropout: float, causal: bool):
        super().__init__()
        self.blocks = nn.ModuleList(
            ConvBlock(d_model, kernel_size, 2**i, dropout, causal) for i in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.receptive_field = 1 + (kernel_size - 1) * (2**n_layers - 1)

    def forward(self, x: torch.Tensor, pad: Optional[torch.Tensor] = None) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, pad)
        return self.norm(x)


@ENCODERS.register("cnn", help="stack of dilated 1-D convolutions (non-causal: sees both sides)")
class CNNEncoder(nn.Module):
    def __init__(self, d_model: int, n_layers: int, kernel_size: int, dropout: float):
        super().__init__()
        self.stack = ConvStack(d_model, n_layers, kernel_size, dropout, causal=False)

    def forward(self, x: torch.Tensor, pad: torch.Tensor, need_weights: bool = False) -> EncoderOutput:
        return EncoderOutput(self.stack(x, pad), pad)


# ---------------------------------------------------------------- RNN / GRU / LSTM
class RNNEncoder(nn.Module):
    """Fused nn.RNN/GRU/LSTM over packed sequences; bidirectional outputs are projected back to D.

    project_memory=False (a decoder that reads only the final state, as seq2seq without attention) builds no
    output projection: the memory is then the mean of the two directions, which nothing trains on.
    """

    def __init__(self, cell: str, d_model: int, n_layers: int, dropout: float, bidirectional: bool = False,
                 project_memory: bool = True):
        super().__init__()
        self.cell, self.dirs = cell, 2 if bidirectional else 1
        self.rnn = RNN_CELLS[cell](
            d_model, d_model, n_layers, batch_first=True, dropout=dropout if n_layers > 1 else 0.0,
            bidirectional=bidirectional,
        )
        self.proj = nn.Linear(2 * d_model, d_model) if bidirectional and project_memory else None
        self.state_proj = nn.Linear(2 * d_model, d_model) if bidirectional else None

    def _merge(self, s: torch.Tensor) -> torch.Tensor:  # (layers*dirs, B, D) -> (layers, B, D)
        if self.dirs == 1:
            return s
        L2, B, D = s.shape
        s = s.view(L2 // 2, 2, B, D).permute(0, 2, 1, 3).reshape(L2 // 2, B, 2 * D)
        return torch.tanh(self.state_proj(s))

    def forward(self, x: torch.Tensor, pad: torch.Tensor, need_weights: bool = False) -> EncoderOutput:
        lengths = (~pad).sum(1).cpu()
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, state = self.rnn(packed)
        y, _ = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))
        if self.proj is not None:
            y = self.proj(y)
        elif self.dirs == 2:
            y = y.view(*y.shape[:2], 2, -1).mean(2)
        state = tuple(self._merge(s) for s in state) if isinstance(state, tuple) else self._merge(state)
        return EncoderOutput(y, pad, state)


for _cell in RNN_CELLS:
    ENCODERS.register(_cell, help=f"fused nn.{RNN_CELLS[_cell].__name__}, uni- or bidirectional")(
        partial(RNNEncoder, _cell)
    )


# ---------------------------------------------------------------- Transformer
class FeedForward(nn.Sequential):
    def __init__(self, d_model: int, d_ff: int, dropout: float):
        super().__init__(nn.Linear(d_model, d_ff), nn.ReLU(), Dropout(dropout), nn.Linear(d_ff, d_model))


class TransformerEncoderLayer(nn.Module):
    """Self-attention + feed-forward, each residual; norm after (post, as the paper) or before (pre)."""

    def __init__(self, d_model, n_heads, d_k, d_v, d_ff, dropout, norm="post",
                 positional: Optional[PositionalEncoding] = None, attention: str = "multihead"):
        super().__init__()
        self.attn = ATTENTION.get(attention)(d_model, n_heads, d_k, d_v, dropout, positional=positional)
        self.ff = FeedForward(d_model, d_ff, dropout)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.drop = Dropout(dropout)
        self.pre = norm == "pre"

    def forward(self, x, pad=None, need_weights=False):
        if self.pre:
            a, w = self.attn(self.norm1(x), key_pad=pad, need_weights=need_weights)
            x = x + self.drop(a)
            return x + self.drop(self.ff(self.norm2(x))), w
        a, w = self.attn(x, key_pad=pad, need_weights=need_weights)
        x = self.norm1(x + self.drop(a))
        return self.norm2(x + self.drop(self.ff(x))), w


class TransformerStackBase(nn.Module):
    """Scaled embeddings + positional encoding in; final norm out for pre-norm stacks.

    The stack owns its positional encoding (self.pos): embed() adds what it adds to the embeddings, and
    its self-attention layers get it for their rotate / score_bias hooks.
    """

    def __init__(self, d_model: int, dropout: float, norm: str, pos_encoding: str, max_len: int):
        super().__init__()
        self.scale = d_model**0.5
        self.pos = POSITIONAL.get(pos_encoding)(d_model, max_len)
        self.drop = Dropout(dropout)
        self.final_norm = nn.LayerNorm(d_model) if norm == "pre" else nn.Identity()

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.pos(x * self.scale))  # forward = embed (so forward hooks see it)


@ENCODERS.register("transformer", help="self-attention encoder of Vaswani et al. 2017 (norm post|pre)")
class TransformerEncoder(TransformerStackBase):
    def __init__(self, d_model, n_layers, n_heads, d_k, d_v, d_ff, dropout, norm="post", pos_encoding="sinusoidal",
                 max_len=512, attention="multihead"):
        super().__init__(d_model, dropout, norm, pos_encoding, max_len)
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(d_model, n_heads, d_k, d_v, d_ff, dropout, norm, self.pos, attention)
            for _ in range(n_layers)
        )

    def forward(self, x: torch.Tensor, pad: torch.Tensor, need_weights: bool = False) -> EncoderOutput:
        x = self.embed(x)
        attn = {}
        key_pad = pad if pad.any() else None  # no mask lets SDPA take its fastest kernel
        for i, layer in enumerate(self.layers):
            x, w = layer(x, key_pad, need_weights)
            if w is not None:
                attn[f"encoder.layer{i}.self"] = w
        return EncoderOutput(self.final_norm(x), pad, None, attn)
