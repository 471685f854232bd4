"""The eight architectures of DESIGN §4 as presets: defaults, valid choices, and a builder.

Adding an architecture is one new file with one decorator:

    @ARCHS.register("my_arch", defaults={"d_model": 64, "n_layers": 2}, help="...")
    def build_my_arch(cfg: ModelConfig, info: TaskInfo) -> SeqModel: ...

A toggle a preset does not list does not apply to it; resolve() sets it to None
(and says so), so two configs that differ only there are the same run.

This module imports no torch at load time (builders import their parts), so
planning and validating a grid start fast.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

from ablate.errors import ConfigError, ConfigErrors
from ablate.models.config import TOGGLES, ModelConfig
from ablate.registry import Registry, suggest

if TYPE_CHECKING:
    from ablate.models.seq_models import SeqModel, TaskInfo

ARCHS = Registry("arch")

CHOICES: dict[str, list[Any]] = {
    "attention": ["none", "additive", "dot", "multihead"],
    "pos_encoding": ["sinusoidal", "learned", "rotary", "none"],
    "norm": ["post", "pre"],
    "cell": ["rnn", "gru", "lstm"],
    "causal_mask": [True, False],
    "bidirectional": [True, False],
}
POSITIVE = ("d_model", "n_layers", "n_heads", "d_head", "d_ff", "kernel_size")

_RNN = {"d_model": 64, "n_layers": 2, "dropout": 0.0}
_SEQ2SEQ = {**_RNN, "cell": "lstm", "bidirectional": False}
_TRANSFORMER = {
    "d_model": 64, "n_layers": 2, "n_heads": 4, "d_head": None, "d_ff": None, "dropout": 0.1,
    "attention": "multihead", "pos_encoding": "sinusoidal", "causal_mask": True, "norm": "post",
}


def resolve(cfg: ModelConfig, where: str | None = None) -> tuple[ModelConfig, list[str]]:
    """Fill the preset's defaults, drop toggles that do not apply (with a note), validate values.

    Returns the resolved config and notes; raises ConfigErrors listing every bad value.
    """
    if cfg.arch not in ARCHS:
        raise ConfigErrors([ConfigError("model.arch", cfg.arch, f"unknown arch{suggest(cfg.arch, ARCHS.names())}"
                                        f" (valid: {', '.join(ARCHS.names())})", where)])
    meta = ARCHS.meta(cfg.arch)
    defaults, choices = meta["defaults"], {**CHOICES, **meta.get("choices", {})}
    if "ablate.models.positional" in sys.modules:  # plugins may have registered more encodings
        pos = sys.modules["ablate.models.positional"].POSITIONAL.names()
        choices["pos_encoding"] = sorted(set(choices["pos_encoding"]) | set(pos))
    values, notes, errors = {}, [], []
    for key in TOGGLES:
        given = getattr(cfg, key)
        if key in defaults:
            values[key] = defaults[key] if given is None else given
        else:
            values[key] = None
            if given is not None:
                notes.append(f"model.{key}={given!r} does not apply to arch {cfg.arch!r}: ignored for these runs")
                if key in CHOICES and given not in CHOICES[key]:  # a typo is an error even where it is ignored
                    errors.append(ConfigError(f"model.{key}", given, f"must be one of "
                                              f"{', '.join(map(str, CHOICES[key]))}{suggest(given, CHOICES[key])}",
                                              where))
    for key, value in values.items():
        if value is None:
            continue
        if key in choices and value not in choices[key]:
            hint = suggest(value, [str(c) for c in choices[key]])
            errors.append(ConfigError(f"model.{key}", value, f"for arch {cfg.arch!r} must be one of "
                                      f"{', '.join(map(str, choices[key]))}{hint}", where))
        elif key in POSITIVE and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
            errors.append(ConfigError(f"model.{key}", value, "must be a whole number > 0", where))
        elif key == "dropout" and not (isinstance(value, (int, float)) and 0 <= value < 1):
            errors.append(ConfigError("model.dropout", value, "must be a number in [0, 1)", where))
    if errors:
        raise ConfigErrors(errors)
    # Derived values are made concrete so equal models hash equal.
    if "d_ff" in defaults and values["d_ff"] is None:
        values["d_ff"] = 4 * values["d_model"]
    if values.get("attention") not in (None, "multihead") and "n_heads" not in meta.get("always", ()):
        for key in ("n_heads", "d_head"):  # heads only mean something for multi-head attention
            if getattr(cfg, key) is not None:
                notes.append(f"model.{key}={getattr(cfg, key)!r} applies only with attention=multihead: ignored")
            values[key] = None
    if values.get("n_heads") is not None and values.get("d_head") is None:
        if values["d_model"] % values["n_heads"]:
            divisors = [h for h in range(1, values["d_model"] + 1) if values["d_model"] % h == 0 and h <= 64]
            raise ConfigErrors([ConfigError(
                "model.n_heads", values["n_heads"],
                f"d_model={values['d_model']} is not divisible by n_heads={values['n_heads']} "
                f"(valid n_heads: {', '.join(map(str, divisors))}; or set model.d_head)", where)])
        values["d_head"] = values["d_model"] // values["n_heads"]
    if values.get("pos_encoding") == "rotary" and values.get("d_head") and values["d_head"] % 2:
        raise ConfigErrors([ConfigError("model.d_head", values["d_head"],
                                        "rotary positional encoding needs an even head size", where)])
    return replace(cfg, **values), notes


def build_model(cfg: ModelConfig, info: TaskInfo) -> SeqModel:
    """The model for a config (resolved here if it was not) and a task's sizes."""
    cfg, _ = resolve(cfg)
    return ARCHS.get(cfg.arch)(cfg, info)


def describe(cfg: ModelConfig) -> dict[str, Any]:
    return {k: v for k, v in asdict(cfg).items() if v is not None}


# ---------------------------------------------------------------- the presets
@ARCHS.register("mlp", defaults={"d_model": 32, "n_layers": 2, "d_ff": 256, "dropout": 0.0},
                help="flattens the padded input into one vector (fixed maximum length)")
def build_mlp(cfg: ModelConfig, info: TaskInfo) -> SeqModel:
    from ablate.models.seq_models import MLPModel

    return MLPModel(info, cfg.d_model, cfg.d_ff, cfg.n_layers, cfg.dropout)


@ARCHS.register("cnn", defaults={"d_model": 64, "n_layers": 4, "kernel_size": 3, "dropout": 0.0},
                help="stack of causal dilated 1-D convolutions over `source <bos> target`")
def build_cnn(cfg: ModelConfig, info: TaskInfo) -> SeqModel:
    from ablate.models.decoders import DECODERS
    from ablate.models.seq_models import PrefixLM

    body = DECODERS.get("cnn")(cfg.d_model, cfg.n_layers, cfg.kernel_size, cfg.dropout)
    return PrefixLM(info, cfg.d_model, body)


def _single_stack(cell: str):
    def build(cfg: ModelConfig, info: TaskInfo) -> SeqModel:
        from ablate.models.decoders import DECODERS
        from ablate.models.seq_models import PrefixLM

        return PrefixLM(info, cfg.d_model, DECODERS.get(cell)(cfg.d_model, cfg.n_layers, cfg.dropout))

    return build


for _cell, _name in (("rnn", "Elman RNN"), ("gru", "GRU"), ("lstm", "LSTM")):
    ARCHS.register(_cell, defaults=_RNN, help=f"one {_name} stack that reads the input, then writes the output")(
        _single_stack(_cell)
    )


def _seq2seq(cfg: ModelConfig, info: TaskInfo) -> SeqModel:
    from ablate.models.decoders import DECODERS
    from ablate.models.encoders import ENCODERS
    from ablate.models.seq_models import EncoderDecoder

    D, L, p = cfg.d_model, cfg.n_layers, cfg.dropout
    encoder = ENCODERS.get(cfg.cell)(D, L, p, bidirectional=cfg.bidirectional)
    decoder = DECODERS.get(cfg.cell)(D, L, p, attention=cfg.attention or "none", n_heads=cfg.n_heads or 1,
                                     d_head=cfg.d_head)
    return EncoderDecoder(info, D, encoder, decoder)


ARCHS.register("seq2seq", defaults=_SEQ2SEQ,
               help="recurrent encoder -> final state -> recurrent decoder (the fixed-vector bottleneck)")(_seq2seq)
ARCHS.register("seq2seq_attention", defaults={**_SEQ2SEQ, "attention": "additive", "n_heads": 1, "d_head": None},
               choices={"attention": ["additive", "dot", "multihead"]},
               help="seq2seq plus attention over all encoder states (additive, as Bahdanau et al. 2015)")(_seq2seq)


@ARCHS.register("transformer", defaults=_TRANSFORMER, choices={"attention": ["multihead"]},
                always=("n_heads",), help="encoder-decoder Transformer as in Vaswani et al. 2017")
def build_transformer(cfg: ModelConfig, info: TaskInfo) -> SeqModel:
    from ablate.models.decoders import DECODERS
    from ablate.models.encoders import ENCODERS
    from ablate.models.seq_models import EncoderDecoder

    common = dict(d_model=cfg.d_model, n_layers=cfg.n_layers, n_heads=cfg.n_heads, d_head=cfg.d_head, d_ff=cfg.d_ff,
                  dropout=cfg.dropout, norm=cfg.norm, pos_encoding=cfg.pos_encoding)
    encoder = ENCODERS.get("transformer")(**common, max_len=max(info.max_src_len, 1))
    decoder = DECODERS.get("transformer")(**common, max_len=info.max_tgt_len + 1, causal_mask=cfg.causal_mask)
    model = EncoderDecoder(info, cfg.d_model, encoder, decoder)
    # The stacks multiply embeddings by sqrt(d_model), as the paper does; that assumes embeddings drawn with
    # std d_model**-0.5 (as in the paper's shared embedding / fairseq), so tokens and positions are of the
    # same size. nn.Embedding's default std 1 would make tokens sqrt(d_model) times louder than positions.
    import torch

    with torch.no_grad():
        for table in dict.fromkeys([model.embed, model.src_embed]):  # one table when the vocabulary is shared
            torch.nn.init.normal_(table.weight, std=cfg.d_model**-0.5)
            table.weight[table.padding_idx].zero_()
    return model

