"""The model section of a config: each architecture's own OmegaConf dataclass, with defaults, help and checks.

An arch registers its config with its builder (presets.py); `model.arch` picks the class, and
model_config() turns a `model:` mapping into an instance of it. A key that belongs to another arch is
noted and ignored (so `model.arch=lstm` on a Transformer file runs); a key no arch has is an error.
Derived values (d_ff = 4 d_model, d_k = d_v = d_model / n_heads) are made concrete so equal models hash
equal. The planner asks the config, never the arch's name, how to widen it (width_step, with_width).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar, Optional

from ablate.errors import ConfigError, ConfigErrors
from ablate.models.components import ATTENTION, POSITIONAL
from ablate.registry import Registry, suggest
from ablate.structured import field_errors, option, structured

ARCHS = Registry("arch")
DEFAULT_ARCH = "transformer"


@dataclass
class ArchConfig:
    """What every architecture has. Subclasses add their own options and may override the defaults."""

    arch: str = option(DEFAULT_ARCH, "the architecture (`ablate list` shows them)")
    d_model: int = option(64, "model width", minimum=1)
    n_layers: int = option(2, "layers per stack", minimum=1)
    dropout: float = option(0.0, "dropout probability", minimum=0, below=1)
    match_params: Optional[int] = option(None, "planner only: choose d_model so the parameter count lands "
                                         "within 5% of this", minimum=1)
    match_flops: Optional[float] = option(None, "planner only: choose d_model so the forward FLOPs per target "
                                          "token (one example at the task's mean lengths) land within 5% of this",
                                          above=0)

    # A second width the planner tunes after d_model, for a finer grain (None: d_model alone).
    fine_width: ClassVar[Optional[str]] = None

    def derive(self) -> tuple[ArchConfig, list[str]]:
        """Concrete values for the automatic ones, and notes on options this combination ignores."""
        return self, []

    def check(self) -> list[tuple[str, Any, str]]:
        """Problems between options (after derive): (key, value, what would be valid)."""
        return []

    def width_step(self) -> int:
        """d_model must be a multiple of this (whole heads, even rotary halves)."""
        return 1

    def with_width(self, d_model: int) -> ArchConfig:
        """This model at another width, with the widths that follow d_model scaled along."""
        return replace(self, d_model=d_model)


@dataclass
class TiedConfig(ArchConfig):
    tie_embeddings: bool = option(False, "output projection = decoder's input embedding (= source's too, if the "
                                  "vocabulary is shared)")


def _heads_check(cfg: Any) -> list[tuple[str, Any, str]]:
    """n_heads must divide d_model unless d_k and d_v are both given; an even d_k where the encoding asks."""
    out = []
    if cfg.n_heads is not None and (cfg.d_k is None or cfg.d_v is None) and cfg.d_model % cfg.n_heads:
        divisors = [h for h in range(1, cfg.d_model + 1) if cfg.d_model % h == 0 and h <= 64]
        out.append(("n_heads", cfg.n_heads, f"d_model={cfg.d_model} is not divisible by n_heads={cfg.n_heads} "
                    f"(valid n_heads: {', '.join(map(str, divisors))}; or set model.d_k and model.d_v)"))
    pos = getattr(cfg, "pos_encoding", None)
    if pos in POSITIONAL and POSITIONAL.meta(pos).get("even_d_k") and cfg.d_k and cfg.d_k % 2:
        out.append(("d_k", cfg.d_k, f"{pos} positional encoding needs an even query/key head size"))
    return out


def _derive_heads(cfg: Any) -> dict[str, Any]:
    if cfg.n_heads is None or cfg.d_model % cfg.n_heads:
        return {}
    return {k: cfg.d_model // cfg.n_heads for k in ("d_k", "d_v") if getattr(cfg, k) is None}


def _rescale_heads(cfg: Any, d_model: int) -> dict[str, Any]:
    """d_k/d_v that followed d_model // n_heads follow it to the new width; sizes set by hand stay."""
    if not cfg.n_heads:
        return {}
    auto = cfg.d_model // cfg.n_heads
    return {k: (d_model // cfg.n_heads if getattr(cfg, k) in (None, auto) else getattr(cfg, k))
            for k in ("d_k", "d_v")}


def _step_for_heads(cfg: Any) -> int:
    step = cfg.n_heads or 1
    pos = getattr(cfg, "pos_encoding", None)
    if cfg.n_heads and pos in POSITIONAL and POSITIONAL.meta(pos).get("even_d_k"):
        step *= 2
    return step


# ---------------------------------------------------------------- the presets' configs
@dataclass
class MLPConfig(ArchConfig):
    arch: str = option("mlp", "the architecture")
    d_model: int = option(32, "embedding width (each input position's vector before flattening)", minimum=1)
    d_ff: int = option(256, "hidden width of the fully connected layers", minimum=1)
    fine_width: ClassVar[Optional[str]] = "d_ff"


@dataclass
class CNNConfig(TiedConfig):
    arch: str = option("cnn", "the architecture")
    n_layers: int = option(4, "convolution layers (dilations 1, 2, 4, ...)", minimum=1)
    kernel_size: int = option(3, "convolution width", minimum=1)


@dataclass
class RecurrentConfig(TiedConfig):
    arch: str = option("lstm", "the architecture: rnn, gru or lstm")


@dataclass
class Seq2SeqConfig(TiedConfig):
    arch: str = option("seq2seq", "the architecture")
    cell: str = option("lstm", "recurrent cell of encoder and decoder", choices=["rnn", "gru", "lstm"])
    bidirectional: bool = option(False, "the encoder reads both ways")


@dataclass
class Seq2SeqAttentionConfig(Seq2SeqConfig):
    arch: str = option("seq2seq_attention", "the architecture")
    attention: str = option("additive", "the score: additive (Bahdanau), dot (Luong) or multihead",
                            choices=lambda: ATTENTION.names())
    n_heads: Optional[int] = option(None, "heads, with attention=multihead (default 1)", minimum=1)
    d_k: Optional[int] = option(None, "per-head query/key size, multihead only (default d_model / n_heads)",
                                minimum=1)
    d_v: Optional[int] = option(None, "per-head value size, multihead only (default d_model / n_heads)", minimum=1)
    attention_style: str = option("luong", "luong: scores from the current output, fused RNN kernel; bahdanau: "
                                  "scores from the previous state, context fed into the RNN (a per-step loop, "
                                  "~2x slower to train)", choices=["luong", "bahdanau"])
    input_feeding: Optional[bool] = option(False, "luong only: feed each output into the next step's input")

    def derive(self) -> tuple[ArchConfig, list[str]]:
        notes, values = [], {}
        if self.attention != "multihead":  # heads only mean something for multi-head attention
            for key in ("n_heads", "d_k", "d_v"):
                if getattr(self, key) is not None:
                    notes.append(f"model.{key}={getattr(self, key)!r} applies only with attention=multihead: "
                                 "ignored")
                values[key] = None
        else:
            values["n_heads"] = self.n_heads or 1
            values.update(_derive_heads(replace(self, n_heads=values["n_heads"])))
        if self.attention_style == "bahdanau":  # the context always enters the RNN: nothing to feed
            if self.input_feeding:
                notes.append("model.input_feeding=True applies only with attention_style=luong: ignored")
            values["input_feeding"] = None
        elif self.input_feeding is None:
            values["input_feeding"] = False
        return replace(self, **values), notes

    def check(self) -> list[tuple[str, Any, str]]:
        return _heads_check(self)

    def width_step(self) -> int:
        return _step_for_heads(self)

    def with_width(self, d_model: int) -> ArchConfig:
        return replace(self, d_model=d_model, **_rescale_heads(self, d_model))


@dataclass
class TransformerConfig(TiedConfig):
    arch: str = option("transformer", "the architecture")
    n_heads: int = option(4, "attention heads", minimum=1)
    d_k: Optional[int] = option(None, "per-head query/key size (default d_model / n_heads; Table 3 (B) of "
                                "Vaswani et al. changes it alone)", minimum=1)
    d_v: Optional[int] = option(None, "per-head value size (default d_model / n_heads)", minimum=1)
    d_ff: Optional[int] = option(None, "feed-forward width (default 4 d_model)", minimum=1)
    dropout: float = option(0.1, "dropout probability", minimum=0, below=1)
    attention: str = option("multihead", "the attention kind of every layer", choices=lambda: ATTENTION.names())
    pos_encoding: str = option("sinusoidal", "how positions are told", choices=lambda: POSITIONAL.names())
    causal_mask: bool = option(True, "the decoder's self-attention sees only earlier targets")
    norm: str = option("post", "LayerNorm after each residual (post, as the paper) or before (pre)",
                       choices=["post", "pre"])
    tie_embeddings: bool = option(True, "output projection = decoder's input embedding (= source's too, if the "
                                  "vocabulary is shared), as §3.4 of the paper")
    fine_width: ClassVar[Optional[str]] = "d_ff"

    def derive(self) -> tuple[ArchConfig, list[str]]:
        values = _derive_heads(self)
        if self.d_ff is None:
            values["d_ff"] = 4 * self.d_model
        return replace(self, **values), []

    def check(self) -> list[tuple[str, Any, str]]:
        return _heads_check(self)

    def width_step(self) -> int:
        return _step_for_heads(self)

    def with_width(self, d_model: int) -> ArchConfig:
        return replace(self, d_model=d_model, d_ff=4 * d_model, **_rescale_heads(self, d_model))


# ---------------------------------------------------------------- from a mapping to a config
def config_class(arch: str) -> type:
    return ARCHS.meta(arch)["config"]


def arch_error(arch: Any, where: Optional[str]) -> ConfigError:
    return ConfigError("model.arch", arch, f"unknown arch{suggest(arch, ARCHS.names())} "
                       f"(valid: {', '.join(ARCHS.names())})", where)


def resolve(cfg: ArchConfig, where: Optional[str] = None) -> tuple[ArchConfig, list[str]]:
    """Check every value, make the automatic ones concrete; raises ConfigErrors naming every problem."""
    if cfg.arch not in ARCHS:
        raise ConfigErrors([arch_error(cfg.arch, where)])
    errors = field_errors(cfg, "model", where)
    if errors:
        raise ConfigErrors(errors)
    cfg, notes = cfg.derive()
    errors = [ConfigError(f"model.{k}", v, expected, where) for k, v, expected in cfg.check()]
    if errors:
        raise ConfigErrors(errors)
    return cfg, notes


def model_config(data: Any, where: Optional[str] = None) -> tuple[ArchConfig, list[str]]:
    """The arch's config from a `model:` mapping, resolved; returns (config, notes).

    Keys of other archs are ignored with one note (their values must still be valid for the arch that owns
    them: a typo is an error even where it is ignored); keys no arch knows are errors.
    """
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigErrors([ConfigError("model", data, "must be a mapping of keys to values", where)])
    arch = data.get("arch") or DEFAULT_ARCH
    if arch not in ARCHS:
        raise ConfigErrors([arch_error(arch, where)])
    cls = config_class(arch)
    own = {f.name for f in fields(cls)}
    foreign: list[str] = []
    errors: list[ConfigError] = []
    for key, value in data.items():
        if key in own:
            continue
        owners = [c for c in all_configs() if key in {f.name for f in fields(c)}]
        if not owners:
            valid = sorted(own)
            known = sorted({f.name for c in all_configs() for f in fields(c)})
            errors.append(ConfigError(f"model.{key}", value, f"unknown key{suggest(key, known)} (valid for arch "
                                      f"{arch!r}: {', '.join(valid)}; `ablate list` shows every arch's)", where))
        elif value is not None:
            foreign.append(key)
            errors += field_errors(owners[0], "model", where, only={key}, values={key: value})
    try:
        cfg = structured("model", cls, {k: v for k, v in data.items() if k in own} | {"arch": arch}, where)
    except ConfigErrors as e:
        errors += e.errors
        cfg = None
    if cfg is not None:
        try:
            cfg, notes = resolve(cfg, where)
        except ConfigErrors as e:
            errors += e.errors
    if errors:
        raise ConfigErrors(errors)
    if foreign:
        keys = ", ".join(f"model.{k}" for k in foreign)
        notes.insert(0, f"{keys} {'does' if len(foreign) == 1 else 'do'} not apply to arch {arch!r}: "
                     "ignored for these runs")
    return cfg, notes


def all_configs() -> list[type]:
    """Each registered config class once, in arch-name order."""
    return list({id(c): c for c in (config_class(a) for a in ARCHS.names())}.values())


def ModelConfig(**options: Any) -> ArchConfig:  # noqa: N802 - reads as the constructor it stands for
    """The config of options["arch"] (default transformer) from keyword options, resolved: a shorthand for
    model_config(options)[0], for code and tests that build a model in one line."""
    return model_config(options)[0]
