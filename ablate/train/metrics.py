"""Free-running decoding metrics, kept as sums so they reduce exactly over batches and ranks."""

from __future__ import annotations

import torch

from ablate.tasks.vocab import Vocab


def decode_counts(pred: torch.Tensor, tgt: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-example counts for greedy predictions pred (B, any length) against targets tgt (B, T).

    token_correct: target positions (incl. <eos>) the prediction gets right;
    seq_correct: 1 when every target position is right (so <eos> came exactly on time);
    hit_cap: 1 when the prediction holds no <eos> (it stopped at its decoding cap).
    """
    full = pred
    pred = torch.nn.functional.pad(pred, (0, max(0, tgt.size(1) - pred.size(1))), value=Vocab.pad)[:, : tgt.size(1)]
    real = tgt != Vocab.pad
    hit = (pred == tgt) & real
    n_tok = real.sum(1)
    tok_ok = hit.sum(1)
    # hit_cap: the output has no <eos>, so decoding stopped at its cap (a cut answer, counted, never silent)
    return {"tokens": n_tok, "token_correct": tok_ok, "seq_correct": (tok_ok == n_tok).long(),
            "hit_cap": (~(full == Vocab.eos).any(1)).long()}
