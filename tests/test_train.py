"""The harness pieces that are not a whole run: lr schedules, batches, decoding metrics."""

from __future__ import annotations

import math

import torch

from ablate.tasks import build_task
from ablate.tasks.synthetic import SeqTaskConfig
from ablate.tasks.vocab import Vocab
from ablate.train.data import TaskDataModule
from ablate.train.metrics import decode_counts
from ablate.train.module import lr_lambda


def test_noam_warms_up_to_the_peak_then_decays_as_inverse_sqrt():
    f = lr_lambda("noam", warmup=100, total=10_000)
    assert f(0) == 0.01 and math.isclose(f(49), 0.5)
    assert math.isclose(f(99), 1.0)
    assert math.isclose(f(399), 0.5)  # (100 / 400) ** 0.5
    assert all(f(s) >= f(s + 1) for s in range(100, 2000))


def test_cosine_warms_up_then_anneals_to_zero_and_none_is_flat():
    f = lr_lambda("cosine", warmup=10, total=110)
    assert math.isclose(f(4), 0.5) and math.isclose(f(10), 1.0)
    assert math.isclose(f(60), 0.5, abs_tol=1e-9) and math.isclose(f(110), 0.0, abs_tol=1e-12)
    assert lr_lambda("none", 0, 100)(57) == 1.0
    assert lr_lambda("none", 4, 100)(1) == 0.5


def test_batches_are_trimmed_teacher_forced_and_shuffled_by_seed():
    data = build_task(SeqTaskConfig(name="reverse", n_train=200, n_val=20, n_test=20, min_len=2, max_len=9))
    dm = TaskDataModule(data, batch_size=16, seed=3)
    loader = dm.train_dataloader()
    batches = list(loader)
    assert sum(b["src"].size(0) for b in batches) == 200
    for b in batches:
        assert b["src"].size(1) == int(b["src_len"].max()) and b["tgt"].size(1) == int(b["tgt_len"].max())
        assert (b["tgt_in"][:, 0] == Vocab.bos).all()
        assert torch.equal(b["tgt_in"][:, 1:], b["tgt"][:, :-1])
    again = list(TaskDataModule(data, batch_size=16, seed=3).train_dataloader())
    other = list(TaskDataModule(data, batch_size=16, seed=4).train_dataloader())
    assert all(torch.equal(a["src"], b["src"]) for a, b in zip(batches, again))
    assert not all(a["src"].shape == b["src"].shape and torch.equal(a["src"], b["src"]) for a, b in zip(batches, other))
    # Lightning iterates one loader each epoch: the next epoch draws a new order (its generator moves on).
    assert not all(a["src"].shape == b["src"].shape and torch.equal(a["src"], b["src"])
                   for a, b in zip(batches, loader))


def test_decode_counts_need_eos_exactly_on_time():
    eos, pad = Vocab.eos, Vocab.pad
    tgt = torch.tensor([[5, 6, eos], [7, eos, pad]])
    good = torch.tensor([[5, 6, eos, pad], [7, eos, pad, pad]])
    late = torch.tensor([[5, 6, 6, eos], [7, 7, eos, pad]])
    c = decode_counts(good, tgt)
    assert c["seq_correct"].tolist() == [1, 1] and c["token_correct"].tolist() == [3, 2]
    c = decode_counts(late, tgt)
    assert c["seq_correct"].tolist() == [0, 0] and c["token_correct"].tolist() == [2, 1]
