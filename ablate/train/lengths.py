"""The lengths by_length.csv records: each test example's source length and its output length (the target
without its closing <eos>), and which of them the task's split is defined by."""

from __future__ import annotations

from typing import Any

import torch

from ablate.tasks import TaskData
from ablate.tasks.vocab import Vocab

COLUMNS = {"source": "src_len", "target": "tgt_len"}  # TaskData.length_by -> by_length.csv column


def output_lengths(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B,) target lengths without the closing <eos> (where the task appends one): the output's own length, as
    SCAN's length split counts actions."""
    last = batch["tgt"].gather(1, (batch["tgt_len"] - 1).clamp(min=0)[:, None])[:, 0]
    return batch["tgt_len"] - (last == Vocab.eos).long()


def split_length(data: TaskData) -> dict[str, Any]:
    """result.json's length_by (the by_length.csv column the task's split is defined by) and max_train_length
    (the longest training example in that unit: the by-length figure shades the lengths beyond it)."""
    column = COLUMNS[data.length_by]
    train = data.train
    lengths = train.src_len if column == "src_len" else output_lengths({"tgt": train.tgt, "tgt_len": train.tgt_len})
    return {"length_by": column, "max_train_length": int(lengths.max())}
