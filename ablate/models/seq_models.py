"""The three ways a model maps a source sequence to a target sequence.

All share one interface, which is all the training harness knows:
    forward(src (B, S), src_len (B,), tgt_in (B, T)) -> logits (B, T, V)   teacher-forced
    generate(src, src_len, max_len) -> (B, max(max_len)) ids                free-running greedy; max_len is an
                                                                            int or per-example caps (B,)
    forward(..., need_weights=True) also fills .last_attn with name -> (B, H, Lq, Lk)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ablate.models.decoders import DecoderOutput
from ablate.models.encoders import MLPEncoder
from ablate.tasks.vocab import Vocab

PAD, BOS, EOS = Vocab.pad, Vocab.bos, Vocab.eos


@dataclass
class TaskInfo:
    """What a model needs to know of a task: sizes only."""

    vocab_size: int
    max_src_len: int
    max_tgt_len: int


def finish(tokens: torch.Tensor) -> torch.Tensor:
    """Pad everything after each row's first <eos>."""
    after = (tokens == EOS).long().cumsum(1) - (tokens == EOS).long()
    return tokens.masked_fill(after > 0, PAD)


def caps_of(max_len: int | torch.Tensor, batch: int, device: torch.device) -> torch.Tensor:
    """max_len as (B,) per-example caps: an int applies to every row."""
    if isinstance(max_len, torch.Tensor):
        return max_len.to(device=device, dtype=torch.long).reshape(batch)
    return torch.full((batch,), int(max_len), dtype=torch.long, device=device)


def cap_rows(tokens: torch.Tensor, caps: torch.Tensor) -> torch.Tensor:
    """(B, L) finished tokens, each row padded from its own cap on, then padded/cut to (B, max(caps))."""
    width = int(caps.max()) if caps.numel() else 0
    tokens = tokens[:, :width]
    tokens = torch.nn.functional.pad(tokens, (0, width - tokens.size(1)), value=PAD)
    beyond = torch.arange(width, device=tokens.device)[None] >= caps[:, None]
    return tokens.masked_fill(beyond, PAD)


class SeqModel(nn.Module):
    supports_state = False

    def __init__(self, vocab_size: int, d_model: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model, padding_idx=PAD)
        self.head = nn.Linear(d_model, vocab_size)
        self.last_attn: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def generate(self, src: torch.Tensor, src_len: torch.Tensor, max_len: int | torch.Tensor) -> torch.Tensor:
        """Greedy decoding from <bos>, feeding back the model's own outputs; (B, max(max_len)).

        max_len: one cap for every row, or (B,) caps; each row stops at its own cap or its <eos>, so a row's
        output does not depend on the other rows of its batch.
        """
        B = src.size(0)
        caps = caps_of(max_len, B, src.device)
        ys = torch.full((B, 1), BOS, dtype=torch.long, device=src.device)
        state = None
        done = caps <= 0
        ctx = self.prepare(src, src_len)
        for t in range(int(caps.max()) if B else 0):
            if self.supports_state:  # one step on the carried state
                logits, state = self.step(ctx, ys[:, -1:], state)
            else:  # re-run the whole prefix (attention and convolutions have no carried state)
                logits, _ = self.step(ctx, ys, None)
            nxt = logits[:, -1].argmax(-1)
            ys = torch.cat([ys, nxt[:, None]], dim=1)
            done |= (nxt == EOS) | (caps <= t + 1)
            if done.all():
                break
        return cap_rows(finish(ys[:, 1:]), caps)


class EncoderDecoder(SeqModel):
    """Encoder reads the source once; the decoder writes the target attending to (or starting from) it."""

    def __init__(self, vocab_size: int, d_model: int, encoder: nn.Module, decoder: nn.Module):
        super().__init__(vocab_size, d_model)
        self.encoder, self.decoder = encoder, decoder
        self.supports_state = getattr(decoder, "supports_state", False)

    def prepare(self, src, src_len, need_weights=False):
        pad = torch.arange(src.size(1), device=src.device)[None] >= src_len[:, None]
        return self.encoder(self.embed(src), pad, need_weights=need_weights)

    def step(self, enc, ys, state, need_weights=False):
        out: DecoderOutput = self.decoder(self.embed(ys), enc, state=state, need_weights=need_weights)
        if need_weights:
            self.last_attn = {**enc.attn, **out.attn}
        return self.head(out.y), out.state

    def forward(self, src, src_len, tgt_in, need_weights: bool = False):
        return self.step(self.prepare(src, src_len, need_weights), tgt_in, None, need_weights)[0]


class PrefixLM(SeqModel):
    """One causal stack reads `source <bos> target` and predicts the target (no separate encoder).

    Sequences are laid out left-aligned, each target starting right after its own
    source, so a causal stack never sees padding before a real token.
    """

    def __init__(self, vocab_size: int, d_model: int, body: nn.Module):
        super().__init__(vocab_size, d_model)
        self.body = body
        self.supports_state = getattr(body, "supports_state", False)

    @staticmethod
    def _layout(src, src_len, tgt_in):
        """(B, S+T) ids with tgt_in written at src_len..src_len+T-1, and those positions (B, T)."""
        B, S = src.shape
        T = tgt_in.size(1)
        seq = torch.cat([src, torch.full((B, T), PAD, dtype=src.dtype, device=src.device)], 1)
        pos = src_len[:, None] + torch.arange(T, device=src.device)[None]
        return seq.scatter(1, pos, tgt_in), pos

    def forward(self, src, src_len, tgt_in, need_weights: bool = False):
        seq, pos = self._layout(src, src_len, tgt_in)
        y = self.body(self.embed(seq)).y  # (B, S+T, D)
        y = y.gather(1, pos[..., None].expand(-1, -1, y.size(-1)))
        return self.head(y)

    def prepare(self, src, src_len):
        return (src, src_len)

    def step(self, ctx, ys, state):
        src, src_len = ctx
        if state is None and self.supports_state:  # first step: read source + <bos>, keep the state
            seq, pos = self._layout(src, src_len, ys)
            out = self.body(self.embed(seq[:, : src.size(1) + 1]), lengths=src_len + 1)
            y = out.y.gather(1, src_len[:, None, None].expand(-1, 1, out.y.size(-1)))
            return self.head(y), out.state
        if self.supports_state:
            out = self.body(self.embed(ys), state=state)
            return self.head(out.y), out.state
        return self.forward(src, src_len, ys), None


class MLPModel(SeqModel):
    """Predicts every target position at once from the flattened input: no order, no recurrence."""

    def __init__(self, info: TaskInfo, d_model: int, d_ff: int, n_layers: int, dropout: float):
        super().__init__(info.vocab_size, d_model)
        self.mlp = MLPEncoder(d_model, d_ff, n_layers, dropout, info.max_src_len, info.max_tgt_len)

    def _all(self, src, src_len):
        pad = torch.arange(src.size(1), device=src.device)[None] >= src_len[:, None]
        return self.head(self.mlp(self.embed(src), pad).memory)  # (B, max_tgt_len, V)

    def forward(self, src, src_len, tgt_in, need_weights: bool = False):
        return self._all(src, src_len)[:, : tgt_in.size(1)]

    @torch.no_grad()
    def generate(self, src, src_len, max_len):
        caps = caps_of(max_len, src.size(0), src.device)
        return cap_rows(finish(self._all(src, src_len).argmax(-1)), caps)
