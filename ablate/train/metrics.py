"""Free-running decoding metrics, kept as sums so they reduce exactly over batches and ranks."""

from __future__ import annotations

import torch

from ablate.tasks.vocab import Vocab


def decode_counts(pred: torch.Tensor, tgt: torch.Tensor, caps: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Per-example counts for greedy predictions pred (B, any length) against targets tgt (B, T).

    token_correct: target positions (incl. <eos>) the prediction gets right;
    seq_correct: 1 when every target position is right (so <eos> came exactly on time);
    hit_cap: 1 when the prediction holds no <eos> (it stopped at its decoding cap);
    cap_short: 1 when the reference (incl. <eos>) is longer than the example's decoding cap caps (B,), so no
    output could be right: the cap's fault, not the model's (0 everywhere when caps is None).
    """
    full = pred
    pred = torch.nn.functional.pad(pred, (0, max(0, tgt.size(1) - pred.size(1))), value=Vocab.pad)[:, : tgt.size(1)]
    real = tgt != Vocab.pad
    hit = (pred == tgt) & real
    n_tok = real.sum(1)
    tok_ok = hit.sum(1)
    # hit_cap: the output has no <eos>, so decoding stopped at its cap (a cut answer, counted, never silent)
    short = (n_tok > caps.to(n_tok.device)).long() if caps is not None else torch.zeros_like(n_tok)
    return {"tokens": n_tok, "token_correct": tok_ok, "seq_correct": (tok_ok == n_tok).long(),
            "hit_cap": (~(full == Vocab.eos).any(1)).long(), "cap_short": short}
