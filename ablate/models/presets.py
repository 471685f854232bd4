"""The eight architectures of DESIGN §4: each registers its config class and a builder.

Adding an architecture is one file with one dataclass and one decorator:

    @dataclass
    class MyConfig(ArchConfig):
        arch: str = option("my_arch", "the architecture")
        d_state: int = option(16, "state size", minimum=1)

    @ARCHS.register("my_arch", config=MyConfig, help="...")
    def build_my_arch(cfg: MyConfig, info: TaskInfo) -> SeqModel: ...

This module imports no torch at load time (builders import their parts), so
planning and validating a grid start fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ablate.models.config import (
    ARCHS,
    ArchConfig,
    CNNConfig,
    MLPConfig,
    RecurrentConfig,
    Seq2SeqAttentionConfig,
    Seq2SeqConfig,
    TransformerConfig,
    resolve,
)

if TYPE_CHECKING:
    from ablate.models.seq_models import SeqModel, TaskInfo


def build_model(cfg: ArchConfig, info: TaskInfo) -> SeqModel:
    """The model for a config (resolved here if it was not) and a task's sizes."""
    cfg, _ = resolve(cfg)
    return ARCHS.get(cfg.arch)(cfg, info)


@ARCHS.register("mlp", config=MLPConfig, help="flattens the padded input into one vector (fixed maximum length)")
def build_mlp(cfg: MLPConfig, info: TaskInfo) -> SeqModel:
    from ablate.models.seq_models import MLPModel

    return MLPModel(info, cfg.d_model, cfg.d_ff, cfg.n_layers, cfg.dropout)


@ARCHS.register("cnn", config=CNNConfig, help="stack of causal dilated 1-D convolutions over `source <bos> target`")
def build_cnn(cfg: CNNConfig, info: TaskInfo) -> SeqModel:
    from ablate.models.decoders import DECODERS
    from ablate.models.seq_models import PrefixLM

    body = DECODERS.get("cnn")(cfg.d_model, cfg.n_layers, cfg.kernel_size, cfg.dropout)
    return PrefixLM(info, cfg.d_model, body, cfg.tie_embeddings)


def _single_stack(cfg: RecurrentConfig, info: TaskInfo) -> SeqModel:
    from ablate.models.decoders import DECODERS
    from ablate.models.seq_models import PrefixLM

    body = DECODERS.get(cfg.arch)(cfg.d_model, cfg.n_layers, cfg.dropout)
    return PrefixLM(info, cfg.d_model, body, cfg.tie_embeddings)


for _cell, _name in (("rnn", "Elman RNN"), ("gru", "GRU"), ("lstm", "LSTM")):
    ARCHS.register(_cell, config=RecurrentConfig,
                   help=f"one {_name} stack that reads the input, then writes the output")(_single_stack)


def _seq2seq(cfg: Seq2SeqConfig, info: TaskInfo) -> SeqModel:
    from ablate.models.decoders import DECODERS
    from ablate.models.encoders import ENCODERS
    from ablate.models.seq_models import EncoderDecoder

    D, L, p = cfg.d_model, cfg.n_layers, cfg.dropout
    attention = getattr(cfg, "attention", "none")
    encoder = ENCODERS.get(cfg.cell)(D, L, p, bidirectional=cfg.bidirectional, project_memory=attention != "none")
    extra = {}
    if attention != "none":
        extra = dict(attention=attention, n_heads=cfg.n_heads or 1, d_k=cfg.d_k, d_v=cfg.d_v,
                     attention_style=cfg.attention_style, input_feeding=bool(cfg.input_feeding))
    decoder = DECODERS.get(cfg.cell)(D, L, p, **extra)
    return EncoderDecoder(info, D, encoder, decoder, cfg.tie_embeddings)


ARCHS.register("seq2seq", config=Seq2SeqConfig,
               help="recurrent encoder -> final state -> recurrent decoder (the fixed-vector bottleneck)")(_seq2seq)
ARCHS.register("seq2seq_attention", config=Seq2SeqAttentionConfig,
               help="seq2seq plus attention over all encoder states, Luong's or Bahdanau's way "
                    "(attention_style)")(_seq2seq)


@ARCHS.register("transformer", config=TransformerConfig, help="encoder-decoder Transformer as in Vaswani et al. 2017")
def build_transformer(cfg: TransformerConfig, info: TaskInfo) -> SeqModel:
    from ablate.models.decoders import DECODERS
    from ablate.models.encoders import ENCODERS
    from ablate.models.seq_models import EncoderDecoder

    common = dict(d_model=cfg.d_model, n_layers=cfg.n_layers, n_heads=cfg.n_heads, d_k=cfg.d_k, d_v=cfg.d_v,
                  d_ff=cfg.d_ff, dropout=cfg.dropout, norm=cfg.norm, pos_encoding=cfg.pos_encoding,
                  attention=cfg.attention)
    encoder = ENCODERS.get("transformer")(**common, max_len=max(info.max_src_len, 1))
    decoder = DECODERS.get("transformer")(**common, max_len=info.max_tgt_len + 1, causal_mask=cfg.causal_mask)
    model = EncoderDecoder(info, cfg.d_model, encoder, decoder, cfg.tie_embeddings)
    # The stacks multiply embeddings by sqrt(d_model), as the paper does; that assumes embeddings drawn with
    # std d_model**-0.5 (as in the paper's shared embedding / fairseq), so tokens and positions are of the
    # same size. nn.Embedding's default std 1 would make tokens sqrt(d_model) times louder than positions.
    import torch

    with torch.no_grad():
        for table in {id(t): t for t in (model.src_embed, model.tgt_embed)}.values():
            torch.nn.init.normal_(table.weight, std=cfg.d_model**-0.5)
            table.weight[table.padding_idx].zero_()
    return model

# Archs in files of their own register on import (each file is torch-free at load, as this one).
import ablate.models.ssm  # noqa: E402,F401
