"""Per-example decoding caps for free-running evaluation, from the task, never from the references.

Each example stops at its own cap (or its <eos>), so the predictions, and every
metric computed from them, are the same whatever batch the example shares.
"""

from __future__ import annotations

import torch

from ablate.tasks import DecodeLimit, TaskData


class DecodeCaps:
    """src_len (B,) -> (B,) caps: the task's DecodeLimit, at most `most` (what the model can decode)."""

    def __init__(self, limit: DecodeLimit, most: int):
        self.limit, self.most = limit, most

    def __call__(self, src_len: torch.Tensor) -> torch.Tensor:
        return self.limit.caps(src_len).clamp(max=self.most)


def decode_caps(data: TaskData, most: int) -> DecodeCaps:
    """The caps of data's task; most: the longest target the model was built for (a learned position table
    or an MLP's output has no positions beyond it)."""
    return DecodeCaps(data.decode or DecodeLimit(max_len=data.max_tgt_len), most)
