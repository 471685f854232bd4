"""A decoder whose next-token probabilities are a table keyed by the prefix, for beam-search tests that need
exact sequence probabilities (tests/test_decoding.py, tests/test_planted_bugs_2.py)."""

from __future__ import annotations

import torch

from ablate.models import TaskInfo
from ablate.models.seq_models import SeqModel
from ablate.tasks.vocab import Vocab


class TableModel(SeqModel):
    """P(next token | prefix) = TABLE[prefix without <bos> and padding]; a prefix not in it ends (<eos>)."""

    TABLE: dict[tuple[int, ...], dict[int, float]] = {}
    VOCAB = 7

    def __init__(self):
        super().__init__(TaskInfo(self.VOCAB, self.VOCAB, 4, 4), 4)

    def prepare(self, src, src_len):
        return src

    def reorder(self, ctx, state, idx):
        return (None if ctx is None else ctx[idx]), state

    def step(self, ctx, ys, state):
        rows = []
        for y in ys.tolist():
            p = torch.full((self.VOCAB,), 1e-9)
            for tok, pr in self.TABLE.get(tuple(t for t in y[1:] if t != Vocab.pad), {Vocab.eos: 1.0}).items():
                p[tok] = pr
            rows.append(p.log())
        return torch.stack(rows)[:, None], None
