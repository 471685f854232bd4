"""Issue 28 item 3: the validation/test loss never holds a whole eval batch's logits (the peak of a corpus run)."""

from __future__ import annotations

import pytest
import torch

from ablate.config import TrainConfig
from ablate.train import module as module_mod
from ablate.train.module import SeqModule


def test_the_eval_loss_is_computed_a_few_rows_at_a_time_and_sums_to_the_same(tiny_task, tiny_model, batch_of,
                                                                               monkeypatch):
    data = tiny_task("translate")
    model = tiny_model("transformer", data)
    m = SeqModule(model, TrainConfig(), data.vocab, decode_caps=lambda n: n + 5)
    batch = batch_of(data.test)
    rows_seen = []
    forward = model.forward

    def counting(src, *a, **kw):
        rows_seen.append(src.size(0))
        return forward(src, *a, **kw)

    monkeypatch.setattr(model, "forward", counting)
    with torch.no_grad():
        whole, _ = m._nll(batch)  # a small vocabulary: one piece, as before
        assert rows_seen == [len(data.test)]
        rows_seen.clear()
        monkeypatch.setattr(module_mod, "EVAL_LOGIT_FLOATS", 3 * batch["tgt"].size(1) * len(data.vocab))
        chunked, _ = m._nll(batch)
    assert rows_seen == [3, 3, len(data.test) - 6]  # never more than the budget's rows at once
    assert float(chunked) == pytest.approx(float(whole), rel=1e-5)
