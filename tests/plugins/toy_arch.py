"""A plugin, loaded with `ablate --plugin toy_arch` (tests/plugins on PYTHONPATH): it adds, without touching
the package, an architecture with an option of its own and a positional encoding.

  toy_lm          one causal self-attention stack over `source <bos> target` (a prefix LM); its own option
                  `ff_mult` sets the feed-forward width as a multiple of d_model, and `pos_encoding` takes
                  any registered encoding, this file's included.
  distance_decay  adds -slope_h * |i - j| to every head's attention scores (ALiBi-like): the score_bias hook.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

from ablate.models import ARCHS, POSITIONAL, ArchConfig
from ablate.structured import option


@dataclass
class ToyConfig(ArchConfig):
    arch: str = option("toy_lm", "the architecture")
    n_heads: int = option(2, "attention heads", minimum=1)
    ff_mult: int = option(2, "feed-forward width as a multiple of d_model", minimum=1)
    pos_encoding: str = option("distance_decay", "how positions are told", choices=lambda: POSITIONAL.names())
    fine_width: ClassVar[Optional[str]] = None

    def check(self):
        return [] if self.d_model % self.n_heads == 0 else [("n_heads", self.n_heads, "must divide d_model")]

    def width_step(self) -> int:
        return self.n_heads


@ARCHS.register("toy_lm", config=ToyConfig, help="tests only: a causal self-attention prefix LM")
def build_toy(cfg: ToyConfig, info):
    from ablate.models.decoders import DECODERS
    from ablate.models.seq_models import PrefixLM

    body = DECODERS.get("transformer")(cfg.d_model, cfg.n_layers, cfg.n_heads, None, None, cfg.ff_mult * cfg.d_model,
                                       cfg.dropout, norm="pre", pos_encoding=cfg.pos_encoding,
                                       max_len=info.max_src_len + info.max_tgt_len + 1)
    return PrefixLM(info, cfg.d_model, body)


def _register_encoding() -> None:
    import torch

    from ablate.models.positional import PositionalEncoding

    @POSITIONAL.register("distance_decay", help="tests only: -slope * |i - j| added to the attention scores")
    class DistanceDecay(PositionalEncoding):
        def score_bias(self, Lq: int, Lk: int, n_heads: int, device: torch.device) -> torch.Tensor:
            i = torch.arange(Lk - Lq, Lk, device=device)[:, None]
            j = torch.arange(Lk, device=device)[None]
            slopes = torch.tensor([2.0 ** -(h + 1) for h in range(n_heads)], device=device)
            return -(i - j).abs()[None].float() * slopes[:, None, None]  # (H, Lq, Lk)


_register_encoding()
