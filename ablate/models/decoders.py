"""Decoders: (B, T, D) embedded target prefix (+ an EncoderOutput, or None) -> (B, T, D).

With memory=None a decoder is a causal language model: that is how the
single-stack rnn/gru/lstm/cnn presets read the input and then write the output.

Decoding one token is one step for every decoder that exposes supports_state = True:
    forward(x, memory, state=None, lengths=None)   teacher-forced over the whole (B, T, D) prefix
    forward(x, memory, state=S)                     the n new tokens after those S has seen -> new state
    forward(x, memory, state=None, lengths=L)       the first block of a decode (L (B,) real tokens per row)
    start(memory) -> S                              the state before the first token (None: from memory)
    reorder(S, idx) -> S                            rows idx of S (beam search)
Recurrent decoders keep their cell state; the Transformer a KV cache per layer (and the cross-attention
keys/values of the memory, computed once); the causal CNN the last (kernel_size - 1) * dilation inputs of
each layer. A Transformer without the causal mask has supports_state = False: each position's output
changes as the prefix grows, so a cache would compute another function; it is re-run over the prefix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Optional

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ablate.models.attention import ATTENTION, MultiHeadAttention
from ablate.models.dropout import Dropout
from ablate.models.encoders import RNN_CELLS, ConvStack, EncoderOutput, FeedForward, TransformerStackBase
from ablate.registry import Registry

DECODERS = Registry("decoder")


@dataclass
class DecoderOutput:
    y: torch.Tensor  # (B, T, D)
    state: object = None
    attn: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> (B, H, T, S)


# ---------------------------------------------------------------- RNN / GRU / LSTM
@dataclass
class FedState:
    """A recurrent decoder's state when its previous output is fed back in (Luong's input feeding)."""

    rnn: object  # the cell's own state: (n_layers, B, D), or an (h, c) pair
    feed: torch.Tensor  # (B, D) the previous attentional output (zeros before the first step)


class RNNDecoder(nn.Module):
    """A recurrent stack; with attention, each output attends over the encoder states.

    attention_style picks where attention sits (the score itself is additive, dot or multi-head):
      luong     scores from the current RNN output h_t; output tanh(W [h_t; c_t]) (Luong et al. 2015). The RNN
                never sees the context, so the fused kernel runs the whole teacher-forced sequence in one call;
                input_feeding=True feeds the previous output into the RNN's input (a per-step loop).
      bahdanau  scores from the previous decoder state s_{t-1}; the context c_t enters the RNN's input with the
                previous token, s_t = RNN([y_{t-1}; c_t], s_{t-1}); output tanh(W [s_t; c_t; y_{t-1}]), the
                deep output of Bahdanau et al. 2015. A per-step loop: slower to train.
    Without attention the decoder sees the source only through its initial
    state: the fixed-vector bottleneck of Sutskever et al. 2014.
    """

    supports_state = True

    def __init__(self, cell: str, d_model: int, n_layers: int, dropout: float, attention: str = "none",
                 n_heads: int = 1, d_k: Optional[int] = None, d_v: Optional[int] = None,
                 attention_style: str = "luong", input_feeding: bool = False):
        super().__init__()
        if attention_style not in ("luong", "bahdanau"):
            raise ValueError(f"attention_style must be luong or bahdanau, got {attention_style!r}")
        self.cell, self.n_layers = cell, n_layers
        self.attn = None
        self.style = attention_style if attention != "none" else "none"
        self.feeding = self.style == "luong" and input_feeding
        wide_input = self.style == "bahdanau" or self.feeding  # the RNN reads [token; context or feed]
        self.rnn = RNN_CELLS[cell](2 * d_model if wide_input else d_model, d_model, n_layers, batch_first=True,
                                   dropout=dropout if n_layers > 1 else 0.0)
        if attention != "none":
            self.attn = ATTENTION.get(attention)(d_model, n_heads=n_heads, d_k=d_k, d_v=d_v, dropout=dropout)
            self.combine = nn.Linear((3 if self.style == "bahdanau" else 2) * d_model, d_model)
        self.drop = Dropout(dropout)

    def init_state(self, enc: Optional[EncoderOutput]):
        """The encoder's final state, or (for non-recurrent encoders) its mean; None = zeros."""
        if enc is None:
            return None
        if enc.state is not None:
            h, c = enc.state if isinstance(enc.state, tuple) else (enc.state, torch.zeros_like(enc.state))
        else:
            keep = (~enc.pad).unsqueeze(-1).float()
            mean = (enc.memory * keep).sum(1) / keep.sum(1).clamp(min=1)
            h = mean.unsqueeze(0)
            c = torch.zeros_like(h)
        h, c = h[-self.n_layers :], c[-self.n_layers :]
        if h.size(0) < self.n_layers:  # fewer encoder layers: repeat the top one
            h = torch.cat([h[-1:].expand(self.n_layers - h.size(0), -1, -1), h]).contiguous()
            c = torch.cat([c[-1:].expand(self.n_layers - c.size(0), -1, -1), c]).contiguous()
        state = (h.contiguous(), c.contiguous()) if self.cell == "lstm" else h.contiguous()
        if self.feeding:
            state = FedState(state, h.new_zeros(h.size(1), h.size(2)))
        return state

    def reorder(self, state, idx: torch.Tensor):
        """Rows idx of a state: cell states are (n_layers, B, D), the fed output (B, D)."""
        if state is None:
            return None
        if isinstance(state, FedState):
            return FedState(self.reorder(state.rnn, idx), state.feed[idx])
        if isinstance(state, tuple):
            return tuple(s[:, idx] for s in state)
        return state[:, idx]

    def forward(self, x: torch.Tensor, memory: Optional[EncoderOutput] = None, state=None,
                lengths: Optional[torch.Tensor] = None, need_weights: bool = False) -> DecoderOutput:
        if state is None:
            state = self.init_state(memory)
        if self.style == "bahdanau" or self.feeding:
            if lengths is not None:
                raise ValueError("an attentional decoder reads whole target prefixes; lengths are not supported")
            return self._loop(x, memory, state, need_weights)
        if lengths is not None:  # variable-length prefixes: the state must stop at each one's end
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, state = self.rnn(packed, state)
            h, _ = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))
        else:
            h, state = self.rnn(x, state)
        attn = {}
        if self.attn is not None:
            ctx, w = self.attn(h, memory.memory, memory.pad, need_weights=need_weights)
            h = torch.tanh(self.combine(torch.cat([h, ctx], dim=-1)))
            if w is not None and need_weights:
                attn["decoder.cross"] = w
        return DecoderOutput(self.drop(h), state, attn)

    def _loop(self, x, memory: EncoderOutput, state, need_weights: bool) -> DecoderOutput:
        """One step per target position: the RNN's input depends on attention computed at that step."""
        outs, weights = [], []
        for t in range(x.size(1)):
            x_t = x[:, t : t + 1]  # (B, 1, D)
            if self.feeding:
                h, rnn_state = self.rnn(torch.cat([x_t, state.feed[:, None]], -1), state.rnn)
                ctx, w = self.attn(h, memory.memory, memory.pad, need_weights=need_weights)
                out = torch.tanh(self.combine(torch.cat([h, ctx], -1)))
                state = FedState(rnn_state, out[:, 0])
            else:  # bahdanau: attend from the state before this step
                top = (state[0] if isinstance(state, tuple) else state)[-1][:, None]  # (B, 1, D)
                ctx, w = self.attn(top, memory.memory, memory.pad, need_weights=need_weights)
                h, state = self.rnn(torch.cat([x_t, ctx], -1), state)
                out = torch.tanh(self.combine(torch.cat([h, ctx, x_t], -1)))
            outs.append(out)
            weights.append(w)
        attn = {"decoder.cross": torch.cat(weights, dim=2)} if need_weights and weights[0] is not None else {}
        return DecoderOutput(self.drop(torch.cat(outs, 1)), state, attn)


for _cell in RNN_CELLS:
    DECODERS.register(_cell, help=f"nn.{RNN_CELLS[_cell].__name__} with attention none|additive|dot|multihead")(
        partial(RNNDecoder, _cell)
    )


# ---------------------------------------------------------------- causal CNN
@dataclass
class ConvState:
    """bufs: per layer the last (kernel_size - 1) * dilation normed inputs (B, span, D) (None before the first
    token: zeros, the causal left padding); memory: the cross-attention's keys/values of the source, or None."""

    bufs: Optional[list]
    memory: object = None


@DECODERS.register("cnn", help="causal dilated convolutions (+ multi-head attention over the source, if any)")
class CNNDecoder(nn.Module):
    """cross_attention builds the attention over an encoder's memory; a prefix LM (memory=None) has none to
    attend to, so it builds none (parameters that never run would inflate the count match_params matches)."""

    supports_state = True

    def __init__(self, d_model: int, n_layers: int, kernel_size: int, dropout: float, n_heads: int = 1,
                 cross_attention: bool = False):
        super().__init__()
        self.stack = ConvStack(d_model, n_layers, kernel_size, dropout, causal=True)
        self.cross = MultiHeadAttention(d_model, n_heads, dropout=dropout) if cross_attention else None
        self.norm = nn.LayerNorm(d_model) if cross_attention else None

    def start(self, memory: Optional[EncoderOutput]) -> Optional[ConvState]:
        if memory is None:
            return None
        return ConvState(None, self._memory(memory))

    def _memory(self, memory: Optional[EncoderOutput]):
        if memory is None:
            return None
        if self.cross is None:
            raise ValueError("this CNN decoder was built without cross_attention: it cannot read a memory")
        return self.cross.memory_state(memory.memory, memory.pad if memory.pad.any() else None)

    def reorder(self, state: ConvState, idx: torch.Tensor) -> ConvState:
        bufs = None if state.bufs is None else [b[idx] for b in state.bufs]
        mem = None if state.memory is None else self.cross.select_memory(state.memory, idx)
        return ConvState(bufs, mem)

    def _step(self, x, memory, state: Optional[ConvState], lengths) -> DecoderOutput:
        if state is None:
            state = ConvState(None, self._memory(memory))
        bufs = state.bufs or [x.new_zeros(x.size(0), b.span, x.size(-1)) for b in self.stack.blocks]
        new = []
        for block, buf in zip(self.stack.blocks, bufs):
            x, b = block.step(x, buf, lengths)
            new.append(b)
        h = self.stack.norm(x)
        if state.memory is not None:
            h = self.norm(h + self.cross.attend_memory(h, state.memory))
        return DecoderOutput(h, ConvState(new, state.memory))

    def forward(self, x, memory=None, state=None, lengths=None, need_weights=False) -> DecoderOutput:
        if state is not None or lengths is not None:
            return self._step(x, memory, state, lengths)
        h = self.stack(x)
        attn = {}
        if memory is not None:
            if self.cross is None:
                raise ValueError("this CNN decoder was built without cross_attention: it cannot read a memory")
            a, w = self.cross(h, memory.memory, memory.pad, need_weights=need_weights)
            h = self.norm(h + a)
            if w is not None:
                attn["decoder.cross"] = w
        return DecoderOutput(h, None, attn)


# ---------------------------------------------------------------- Transformer
class TransformerDecoderLayer(nn.Module):
    def __init__(self, d_model, n_heads, d_k, d_v, d_ff, dropout, norm="post", positional=None, causal=True,
                 attention="multihead"):
        super().__init__()
        kind = ATTENTION.get(attention)
        self.self_attn = kind(d_model, n_heads, d_k, d_v, dropout, positional=positional)
        self.cross_attn = kind(d_model, n_heads, d_k, d_v, dropout)  # source and target positions differ
        self.ff = FeedForward(d_model, d_ff, dropout)
        self.norms = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(3))
        self.drop = Dropout(dropout)
        self.pre, self.causal = norm == "pre", causal

    def _sub(self, i, x, fn):
        """One residual sub-layer with post- or pre-norm; fn returns (out, weights)."""
        if self.pre:
            out, w = fn(self.norms[i](x))
            return x + self.drop(out), w
        out, w = fn(x)
        return self.norms[i](x + self.drop(out)), w

    def forward(self, x, memory: Optional[EncoderOutput], need_weights=False):
        x, ws = self._sub(0, x, lambda h: self.self_attn(h, causal=self.causal, need_weights=need_weights))
        wc = None
        if memory is not None:
            key_pad = memory.pad if memory.pad.any() else None
            x, wc = self._sub(1, x, lambda h: self.cross_attn(h, memory.memory, key_pad, need_weights=need_weights))
        x, _ = self._sub(2, x, lambda h: (self.ff(h), None))
        return x, ws, wc

    def step(self, x, cache, mem_state, positions, valid):
        """The cached form of forward over a block of new tokens: (x, new self-attention cache)."""
        box = {}

        def attend(h):
            out, box["cache"] = self.self_attn.self_step(h, cache, positions, valid)
            return out, None

        x, _ = self._sub(0, x, attend)
        if mem_state is not None:
            x, _ = self._sub(1, x, lambda h: (self.cross_attn.attend_memory(h, mem_state), None))
        x, _ = self._sub(2, x, lambda h: (self.ff(h), None))
        return x, box["cache"]


@dataclass
class TransformerState:
    """A Transformer decoder's decoding state.

    layers: each layer's self-attention cache (its attention kind's: a KVCache, k/v (B, H, cap, d), for
            multi-head; None before the first token)
    memory: each layer's cross-attention keys/values of the encoder output, computed once (None: no memory)
    pos:    (B,) the absolute position of each row's next token
    """

    layers: list
    memory: Optional[list]
    pos: torch.Tensor


@DECODERS.register("transformer", help="masked self-attention + cross-attention + feed-forward (Vaswani et al. 2017)")
class TransformerDecoder(TransformerStackBase):
    """With causal_mask (the default) decoding is cached (supports_state); without it, re-run."""

    def __init__(self, d_model, n_layers, n_heads, d_k, d_v, d_ff, dropout, norm="post", pos_encoding="sinusoidal",
                 max_len=512, causal_mask=True, attention="multihead"):
        super().__init__(d_model, dropout, norm, pos_encoding, max_len)
        self.layers = nn.ModuleList(
            TransformerDecoderLayer(d_model, n_heads, d_k, d_v, d_ff, dropout, norm, self.pos, causal_mask, attention)
            for _ in range(n_layers)
        )
        self.supports_state = causal_mask

    def start(self, memory: Optional[EncoderOutput], batch: Optional[int] = None,
              device: Optional[torch.device] = None) -> TransformerState:
        if memory is not None:
            batch, device = memory.memory.size(0), memory.memory.device
            key_pad = memory.pad if memory.pad.any() else None
            mem = [layer.cross_attn.memory_state(memory.memory, key_pad) for layer in self.layers]
        else:
            mem = None
        return TransformerState([None] * len(self.layers), mem,
                                torch.zeros(batch, dtype=torch.long, device=device))

    def reorder(self, state: TransformerState, idx: torch.Tensor) -> TransformerState:
        layers = [None if c is None else layer.self_attn.select_self(c, idx)
                  for layer, c in zip(self.layers, state.layers)]
        mem = None if state.memory is None else [
            layer.cross_attn.select_memory(m, idx) for layer, m in zip(self.layers, state.memory)]
        return TransformerState(layers, mem, state.pos[idx])

    def _step(self, x, memory, state: Optional[TransformerState], lengths) -> DecoderOutput:
        if not self.supports_state:
            raise ValueError("a Transformer decoder without the causal mask cannot decode with a cache: "
                             "re-run it over the prefix")
        if state is None:
            state = self.start(memory, x.size(0), x.device)
        n = x.size(1)
        positions = state.pos[:, None] + torch.arange(n, device=x.device)[None]  # (B, n)
        valid = None if lengths is None else torch.arange(n, device=x.device)[None] < lengths[:, None]
        x = self.drop(self.pos.embed_at(x * self.scale, positions))
        caches = []
        for i, layer in enumerate(self.layers):
            x, c = layer.step(x, state.layers[i], None if state.memory is None else state.memory[i],
                              positions, valid)
            caches.append(c)
        pos = state.pos + (n if lengths is None else lengths)
        return DecoderOutput(self.final_norm(x), TransformerState(caches, state.memory, pos))

    def forward(self, x, memory=None, state=None, lengths=None, need_weights=False) -> DecoderOutput:
        if state is not None or lengths is not None:
            return self._step(x, memory, state, lengths)
        x = self.embed(x)
        attn = {}
        for i, layer in enumerate(self.layers):
            x, ws, wc = layer(x, memory, need_weights)
            if ws is not None:
                attn[f"decoder.layer{i}.self"] = ws
            if wc is not None:
                attn[f"decoder.layer{i}.cross"] = wc
        return DecoderOutput(self.final_norm(x), None, attn)
