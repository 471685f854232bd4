"""Batched beam search on the step contract of SeqModel (prepare, start, step, reorder).

Each source keeps beam_size hypotheses, ranked by the sum of their tokens' log-probabilities; a finished one
(its <eos>, or its row's cap) stays in the beam, extended by <pad> at no cost. At the end each source returns
its hypothesis with the best score / length ** length_penalty (length counts the <eos>; length_penalty 0 ranks
by the raw sum, 1 by the mean log-probability per token, as Hugging Face's `length_penalty`).
"""

from __future__ import annotations

from typing import Any, Union

import torch

from ablate.models.caps import pad_to_caps
from ablate.tasks.vocab import Vocab

PAD, BOS, EOS = Vocab.pad, Vocab.bos, Vocab.eos


@torch.no_grad()
def beam_search(model: Any, src: torch.Tensor, src_len: torch.Tensor, max_len: Union[int, torch.Tensor],
                beam_size: int, length_penalty: float = 1.0, cache: bool = True) -> torch.Tensor:
    """(B, max(max_len)) ids of each source's best hypothesis, <pad> after its end (per-row caps as generate).
    model: a SeqModel (typed Any: seq_models imports this module, not the other way round)."""
    if beam_size < 1:
        raise ValueError(f"beam_size must be at least 1, got {beam_size}")
    B, k, dev = src.size(0), beam_size, src.device
    caps = torch.as_tensor(max_len, dtype=torch.long, device=dev).expand(B)
    longest = int(caps.max()) if B else 0
    rows = torch.arange(B, device=dev).repeat_interleave(k)  # (B*k,) the source of each hypothesis
    ctx = model.prepare(src, src_len)
    ctx, _ = model.reorder(ctx, None, rows)
    cached = model.supports_state and cache
    state = model.start(ctx) if cached else None
    hyp_caps = caps[rows]
    ys = torch.full((B * k, 1), BOS, dtype=torch.long, device=dev)
    score = torch.full((B, k), float("-inf"), device=dev)
    score[:, 0] = 0.0  # all beams start identical: expand only the first
    done = hyp_caps <= 0
    length = torch.zeros(B * k, dtype=torch.long, device=dev)
    for t in range(longest):
        if done.all():
            break
        if cached:
            logits, state = model.step(ctx, ys[:, -1:], state)
        else:
            logits = model.rerun(ctx, ys)
        logp = logits[:, -1].float().log_softmax(-1)  # (B*k, V)
        V = logp.size(-1)
        stay = torch.full_like(logp, float("-inf"))
        stay[:, PAD] = 0.0
        logp = torch.where(done[:, None], stay, logp)
        cand = (score.view(B * k, 1) + logp).view(B, k * V)
        score, top = cand.topk(k, dim=-1)  # (B, k)
        parent = (top // V + torch.arange(B, device=dev)[:, None] * k).view(-1)
        token = (top % V).view(-1)
        if cached:
            _, state = model.reorder(None, state, parent)
        ys = torch.cat([ys[parent], token[:, None]], dim=1)
        was_done = done[parent]
        length = length[parent] + (~was_done).long()
        done = was_done | (token == EOS) | (hyp_caps <= t + 1)
    norm = score / length.view(B, k).clamp(min=1).float() ** length_penalty
    best = norm.argmax(-1) + torch.arange(B, device=dev) * k
    return pad_to_caps(ys[best, 1:], caps, longest)
