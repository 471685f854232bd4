"""The model section of a config: a preset name plus toggles, each None until the preset fills it."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Optional


@dataclass
class ModelConfig:
    arch: str = "transformer"  # a preset: mlp, cnn, rnn, gru, lstm, seq2seq, seq2seq_attention, transformer
    d_model: Optional[int] = None
    n_layers: Optional[int] = None
    n_heads: Optional[int] = None
    d_k: Optional[int] = None  # per-head query/key size; default d_model // n_heads
    d_v: Optional[int] = None  # per-head value size; default d_model // n_heads
    d_ff: Optional[int] = None  # feed-forward (or MLP hidden) width; default 4 * d_model
    dropout: Optional[float] = None
    attention: Optional[str] = None  # none | additive | dot | multihead
    pos_encoding: Optional[str] = None  # sinusoidal | learned | rotary | none
    causal_mask: Optional[bool] = None
    norm: Optional[str] = None  # post | pre
    cell: Optional[str] = None  # rnn | gru | lstm
    bidirectional: Optional[bool] = None
    kernel_size: Optional[int] = None
    attention_style: Optional[str] = None  # luong | bahdanau (seq2seq_attention)
    input_feeding: Optional[bool] = None  # luong only: feed the previous output into the RNN
    tie_embeddings: Optional[bool] = None  # decoder input embedding = output projection (+ source, if shared)
    # Planner-only: choose d_model so the parameter count lands within 5% of this.
    match_params: Optional[int] = None


TOGGLES = [f.name for f in fields(ModelConfig) if f.name not in ("arch", "match_params")]
