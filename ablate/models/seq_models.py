"""The three ways a model maps a source sequence to a target sequence.

All share one interface, which is all the training harness knows:
    forward(src (B, S), src_len (B,), tgt_in (B, T)) -> logits (B, T, V)   teacher-forced
    generate(src, src_len, max_len) -> (B, max(max_len)) ids                free-running greedy
    forward(..., need_weights=True) also fills .last_attn with name -> (B, H, Lq, Lk)
and generate runs on the step contract every model implements (see SeqModel).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Union

import torch
from torch import nn

from ablate.models.caps import pad_to_caps
from ablate.models.decoders import DecoderOutput
from ablate.models.encoders import MLPEncoder
from ablate.tasks.vocab import Vocab

PAD, BOS, EOS = Vocab.pad, Vocab.bos, Vocab.eos


@dataclass
class TaskInfo:
    """What a model needs to know of a task: sizes only.

    shared_vocab: source and target ids index one vocabulary, so one embedding table serves both sides.
    """

    src_vocab_size: int
    tgt_vocab_size: int
    max_src_len: int
    max_tgt_len: int
    shared_vocab: bool = True

    def __post_init__(self) -> None:
        if self.shared_vocab and self.src_vocab_size != self.tgt_vocab_size:
            raise ValueError(f"a shared vocabulary has one size, got source {self.src_vocab_size} and "
                             f"target {self.tgt_vocab_size}")

    @property
    def vocab_size(self) -> int:
        """The size of what the model predicts: the target vocabulary."""
        return self.tgt_vocab_size


def index_rows(state: Any, idx: torch.Tensor) -> Any:
    """Rows idx of a state made of batch-first tensors (in tuples, lists, dicts, dataclasses); other values
    (counters) are kept. The fallback for a decoder or body without a reorder method of its own."""
    if isinstance(state, torch.Tensor):
        return state[idx]
    if isinstance(state, (tuple, list)):
        return type(state)(index_rows(s, idx) for s in state)
    if isinstance(state, dict):
        return {k: index_rows(v, idx) for k, v in state.items()}
    if dataclasses.is_dataclass(state) and not isinstance(state, type):
        return dataclasses.replace(state, **{f.name: index_rows(getattr(state, f.name), idx)
                                             for f in dataclasses.fields(state)})
    return state


def _reorder(module: nn.Module, state: Any, idx: torch.Tensor) -> Any:
    if state is None:
        return None
    reorder = getattr(module, "reorder", None)
    return reorder(state, idx) if reorder is not None else index_rows(state, idx)


class SeqModel(nn.Module):
    """src_embed reads source ids, tgt_embed target ids (one module when the vocabulary is shared), head predicts
    over the target vocabulary. tie_embeddings makes the head's weight tgt_embed's (Vaswani et al. 2017, §3.4);
    with a shared vocabulary that one matrix is then also the source embedding.

    The step contract, all that generate and beam search rely on (every preset implements it):
        prepare(src (B, S), src_len (B,)) -> ctx
            whatever the steps need of the source, computed once: an EncoderOutput (memory (B, S, D), padding
            (B, S) True = pad, final state), or the source itself for a prefix LM. Source lengths are handled
            here and only here: padding past src_len is never read.
        start(ctx) -> state
            the state before the first step (None: the first step starts from ctx). A Transformer decoder's
            holds the cross-attention keys/values of the encoder output, computed here once.
        step(ctx, ys, state) -> (logits (B, n, V), state)
            logits for the next target token are logits[:, -1]. With supports_state, ys is (B, 1), the newest
            token only (the first step's is <bos>), state is what the previous step returned, and the logits
            are those of the new position only. The state is the model's own and generate never looks inside:
              recurrent decoders   the cell's (n_layers, B, D) tensor or (h, c) pair, or a FedState
              Transformer decoder  a TransformerState: per layer the self-attention keys/values of every
                                   earlier position (B, H, cap, d) stored at their absolute positions, the
                                   cross-attention keys/values of the memory, the next position (B,)
              causal CNN           a ConvState: per layer the last (kernel_size - 1) * dilation inputs (B, span, D)
              MLP                  the next position's index
            A prefix LM's first step reads `source <bos>` in one block, each row up to its own length, and
            keeps the state at each row's <bos>; its rows' positions then differ, which the positional hooks'
            *_at forms handle. Without supports_state (a Transformer with causal_mask: false, whose earlier
            outputs change as the prefix grows, so a cache would compute another function), ys is the whole
            prefix (B, t), <bos> first, re-run every step, and state is None.
        reorder(ctx, state, idx (B',)) -> (ctx, state)
            rows idx of both (beam search repeats each source k times and follows its hypotheses).
        Every row takes a step each time, finished or not: a row's tokens after its <eos> (or beyond its cap)
        are replaced by <pad> at the end, so the prefix length is the same for all rows.
    """

    supports_state = False

    def __init__(self, info: TaskInfo, d_model: int, tie_embeddings: bool = False, reads_target: bool = True):
        super().__init__()
        self.tgt_embed = nn.Embedding(info.tgt_vocab_size, d_model, padding_idx=PAD) if reads_target else None
        if info.shared_vocab and reads_target:
            self.src_embed = self.tgt_embed
        else:
            self.src_embed = nn.Embedding(info.src_vocab_size, d_model, padding_idx=PAD)
        self.head = nn.Linear(d_model, info.tgt_vocab_size)
        if tie_embeddings:
            if self.tgt_embed is None:
                raise ValueError("tie_embeddings needs a model that embeds target tokens")
            self.head.weight = self.tgt_embed.weight
        self.last_attn: dict[str, torch.Tensor] = {}

    def prepare(self, src: torch.Tensor, src_len: torch.Tensor) -> Any:
        raise NotImplementedError

    def start(self, ctx: Any) -> Any:
        return None

    def step(self, ctx: Any, ys: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        raise NotImplementedError

    def reorder(self, ctx: Any, state: Any, idx: torch.Tensor) -> tuple[Any, Any]:
        raise NotImplementedError

    def rerun(self, ctx: Any, ys: torch.Tensor) -> torch.Tensor:
        """Logits (B, t, V) of the whole prefix ys (B, t) without a state: the re-run path."""
        return self.step(ctx, ys, None)[0]

    @torch.no_grad()
    def generate(self, src: torch.Tensor, src_len: torch.Tensor, max_len: Union[int, torch.Tensor],
                 beam_size: int = 1, length_penalty: float = 1.0, cache: bool = True) -> torch.Tensor:
        """Greedy decoding from <bos>, feeding back the model's own outputs (beam_size > 1: beam search,
        ablate.models.beam).

        max_len: one cap for every row, or a LongTensor (B,) of per-row caps; each row stops at its cap or its
        <eos>. Returns (B, max(max_len)), <pad> after each row's end. cache=False re-runs the whole prefix
        every step even where the model keeps a state (the reference the cached path is tested against).
        """
        if beam_size > 1:
            from ablate.models.beam import beam_search

            return beam_search(self, src, src_len, max_len, beam_size, length_penalty, cache)
        B = src.size(0)
        caps = torch.as_tensor(max_len, dtype=torch.long, device=src.device).expand(B)
        longest = int(caps.max()) if B else 0
        ys = torch.full((B, 1), BOS, dtype=torch.long, device=src.device)
        done = caps <= 0
        ctx = self.prepare(src, src_len)
        cached = self.supports_state and cache
        state = self.start(ctx) if cached else None
        for t in range(longest):
            if done.all():
                break
            if cached:
                logits, state = self.step(ctx, ys[:, -1:], state)
            else:
                logits = self.rerun(ctx, ys)
            nxt = logits[:, -1].argmax(-1)
            ys = torch.cat([ys, nxt[:, None]], dim=1)
            done |= (nxt == EOS) | (caps <= t + 1)
        return pad_to_caps(ys[:, 1:], caps, longest)


class EncoderDecoder(SeqModel):
    """Encoder reads the source once; the decoder writes the target attending to (or starting from) it."""

    def __init__(self, info: TaskInfo, d_model: int, encoder: nn.Module, decoder: nn.Module,
                 tie_embeddings: bool = False):
        super().__init__(info, d_model, tie_embeddings)
        self.encoder, self.decoder = encoder, decoder
        self.supports_state = getattr(decoder, "supports_state", False)

    def prepare(self, src, src_len, need_weights=False):
        pad = torch.arange(src.size(1), device=src.device)[None] >= src_len[:, None]
        return self.encoder(self.src_embed(src), pad, need_weights=need_weights)

    def start(self, enc):
        if self.supports_state and hasattr(self.decoder, "start"):
            return self.decoder.start(enc)
        return None

    def reorder(self, enc, state, idx):
        return (None if enc is None else enc.select(idx)), _reorder(self.decoder, state, idx)

    def step(self, enc, ys, state, need_weights=False):
        if state is None and self.supports_state:
            state = self.start(enc)
        return self._decode(enc, ys, state, need_weights)

    def _decode(self, enc, ys, state, need_weights=False):
        out: DecoderOutput = self.decoder(self.tgt_embed(ys), enc, state=state, need_weights=need_weights)
        if need_weights:
            self.last_attn = {**enc.attn, **out.attn}
        return self.head(out.y), out.state

    def rerun(self, enc, ys):
        return self._decode(enc, ys, None)[0]

    def forward(self, src, src_len, tgt_in, need_weights: bool = False):
        return self._decode(self.prepare(src, src_len, need_weights), tgt_in, None, need_weights)[0]


class PrefixLM(SeqModel):
    """One causal stack reads `source <bos> target` and predicts the target (no separate encoder).

    Sequences are laid out left-aligned, each target starting right after its own
    source, so a causal stack never sees padding before a real token.
    """

    def __init__(self, info: TaskInfo, d_model: int, body: nn.Module, tie_embeddings: bool = False):
        super().__init__(info, d_model, tie_embeddings)
        self.body = body
        self.supports_state = getattr(body, "supports_state", False)

    def _layout(self, src, src_len, tgt_in):
        """(B, S+T, D) embedded sequence with the embedded tgt_in at src_len..src_len+T-1, and those positions.

        Source tokens go through the source table, target tokens through the target table.
        """
        x = self.src_embed(src)
        B, S, D = x.shape
        T = tgt_in.size(1)
        x = torch.cat([x, x.new_zeros(B, T, D)], 1)
        pos = src_len[:, None] + torch.arange(T, device=src.device)[None]
        return x.scatter(1, pos[..., None].expand(-1, -1, D), self.tgt_embed(tgt_in)), pos

    def forward(self, src, src_len, tgt_in, need_weights: bool = False):
        x, pos = self._layout(src, src_len, tgt_in)
        y = self.body(x).y  # (B, S+T, D)
        y = y.gather(1, pos[..., None].expand(-1, -1, y.size(-1)))
        return self.head(y)

    def prepare(self, src, src_len):
        return (src, src_len)

    def reorder(self, ctx, state, idx):
        ctx = None if ctx is None else (ctx[0][idx], ctx[1][idx])
        return ctx, _reorder(self.body, state, idx)

    def rerun(self, ctx, ys):
        return self.forward(ctx[0], ctx[1], ys)

    def step(self, ctx, ys, state):
        src, src_len = ctx
        if state is None and self.supports_state:  # first step: read source + <bos>, keep the state
            x, _ = self._layout(src, src_len, ys)
            out = self.body(x[:, : src.size(1) + 1], lengths=src_len + 1)
            y = out.y.gather(1, src_len[:, None, None].expand(-1, 1, out.y.size(-1)))
            return self.head(y), out.state
        if self.supports_state:
            out = self.body(self.tgt_embed(ys), state=state)
            return self.head(out.y), out.state
        return self.forward(src, src_len, ys), None


class MLPModel(SeqModel):
    """Predicts every target position at once from the flattened input: no order, no recurrence.

    On the step contract: prepare computes all positions' logits; the state is the next position's index.
    """

    supports_state = True

    def __init__(self, info: TaskInfo, d_model: int, d_ff: int, n_layers: int, dropout: float):
        super().__init__(info, d_model, reads_target=False)  # it never reads target tokens
        self.mlp = MLPEncoder(d_model, d_ff, n_layers, dropout, info.max_src_len, info.max_tgt_len)

    def _all(self, src, src_len):
        pad = torch.arange(src.size(1), device=src.device)[None] >= src_len[:, None]
        return self.head(self.mlp(self.src_embed(src), pad).memory)  # (B, max_tgt_len, V)

    def forward(self, src, src_len, tgt_in, need_weights: bool = False):
        return self._all(src, src_len)[:, : tgt_in.size(1)]

    def prepare(self, src, src_len):
        return self._all(src, src_len)

    def reorder(self, ctx, state, idx):
        return (None if ctx is None else ctx[idx]), state

    def rerun(self, ctx, ys):
        return self.step(ctx, ys, ys.size(1) - 1)[0]

    def step(self, ctx, ys, state):
        t = 0 if state is None else state
        if t < ctx.size(1):
            return ctx[:, t : t + 1], t + 1
        # past the positions it was built for, the MLP has nothing to say: <pad>
        beyond = torch.full_like(ctx[:, :1], float("-inf"))
        beyond[..., PAD] = 0.0
        return beyond, t + 1
