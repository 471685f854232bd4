"""What a decoded row looks like after its end: <pad> after its first <eos> and from its length cap on.

Shared by greedy decoding (seq_models) and beam search (beam), below both so neither imports the other.
"""

from __future__ import annotations

import torch

from ablate.tasks.vocab import Vocab

PAD, EOS = Vocab.pad, Vocab.eos


def finish(tokens: torch.Tensor) -> torch.Tensor:
    """Pad everything after each row's first <eos>."""
    after = (tokens == EOS).long().cumsum(1) - (tokens == EOS).long()
    return tokens.masked_fill(after > 0, PAD)


def pad_to_caps(tokens: torch.Tensor, caps: torch.Tensor, longest: int) -> torch.Tensor:
    """(B, t) decoded tokens -> (B, longest): <pad> after each row's <eos> and from its cap on."""
    out = torch.nn.functional.pad(finish(tokens), (0, longest - tokens.size(1)), value=PAD)
    return out.masked_fill(torch.arange(longest, device=tokens.device)[None] >= caps[:, None], PAD)
