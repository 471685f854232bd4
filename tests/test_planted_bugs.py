"""One test per bug a mutation check planted and the suite let through; each changes a number a table prints.

Each test goes through public behaviour (the Lightning module's test epoch, fit(), forward passes observed at
the positional encoding's input and output), so it holds whatever the model code's internals become.
"""

from __future__ import annotations

import random

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from ablate.config import TrainConfig, build_run
from ablate.models import ModelConfig, build_model
from ablate.models.positional import POSITIONAL
from ablate.tasks import TASKS, DecodeLimit, TaskData, build_task, task_config_class
from ablate.tasks.base import pack
from ablate.tasks.vocab import Vocab
from ablate.train.data import TaskDataModule, make_batch
from ablate.train.module import SeqModule
from ablate.train.sizing import info_of

pytestmark = pytest.mark.usefixtures("torch_one_thread")
PAD, BOS, EOS = Vocab.pad, Vocab.bos, Vocab.eos
FIRST = len(Vocab([]))  # the first non-special id


# ---------------------------------------------------------------- metrics follow free-running decoding


def doubling_task() -> TaskData:
    """target = source written twice: source and target lengths differ (target 2L + <eos>)."""
    vocab = Vocab(["a", "b", "c"])
    rng = random.Random(0)
    pairs = []
    for i in range(40):
        src = [rng.choice("abc") for _ in range(1 + i % 4)]
        pairs.append((vocab.encode(src), vocab.encode(src + src)))
    split = pack(pairs, vocab)
    return TaskData(vocab, split, split, split, decode=DecodeLimit(max_len=9))


class Oracle(nn.Module):
    """Teacher-forced logits always right; free-running output right only for sources of `good_len` tokens
    (other rows get every token wrong but keep <eos> in its place)."""

    def __init__(self, good_len: int):
        super().__init__()
        self.good_len, self.dummy = good_len, nn.Parameter(torch.zeros(1))

    @staticmethod
    def answer(src, src_len):
        rows = [s[:n] * 2 + [EOS] for s, n in zip(src.tolist(), src_len.tolist(), strict=True)]
        out = torch.full((len(rows), max(map(len, rows))), PAD)
        for i, r in enumerate(rows):
            out[i, : len(r)] = torch.tensor(r)
        return out

    def forward(self, src, src_len, tgt_in, need_weights=False):
        ans = self.answer(src, src_len)[:, : tgt_in.size(1)]
        ans = F.pad(ans, (0, tgt_in.size(1) - ans.size(1)), value=PAD)
        return F.one_hot(ans, FIRST + 3).float() * 10 + self.dummy

    def generate(self, src, src_len, max_len):
        ans = self.answer(src, src_len)
        wrong = (src_len != self.good_len)[:, None] & (ans >= FIRST)
        return torch.where(wrong, FIRST + (ans - FIRST + 1) % 3, ans)  # another of the three symbols


def test_oracle_stub_is_what_it_claims():
    data = doubling_task()
    b = make_batch(data.test, torch.arange(len(data.test)))
    stub = Oracle(good_len=2)
    tf = stub(b["src"], b["src_len"], b["tgt_in"]).argmax(-1)
    assert torch.equal(tf.masked_fill(b["tgt"] == PAD, PAD), b["tgt"])  # teacher-forced argmax: all right
    free = stub.generate(b["src"], b["src_len"], 9)[:, : b["tgt"].size(1)]
    assert torch.equal((free == b["tgt"]).all(1), b["src_len"] == 2)  # free-running: right only at length 2


def run_test_epoch(stub, data, eval_batch_size: int = 8):
    module = SeqModule(stub, TrainConfig(), data.vocab, data.kind, data.metrics,
                       decode_caps=lambda n: torch.full_like(n, 9))
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    return trainer.test(module, datamodule=TaskDataModule(data, 8, eval_batch_size), verbose=False)[0], module


def test_token_acc_and_seq_acc_follow_free_running_decoding_not_teacher_forcing():
    data = doubling_task()
    metrics, _ = run_test_epoch(Oracle(good_len=2), data)
    L = data.test.src_len
    good = L == 2
    # Right rows: every token; wrong rows: only <eos> (the one token the stub keeps).
    expected = float(((data.test.tgt_len * good).sum() + (~good).sum()) / data.test.tgt_len.sum())
    assert metrics["test/token_acc"] == pytest.approx(expected)
    assert metrics["test/seq_acc"] == pytest.approx(float(good.float().mean()))
    assert metrics["test/token_acc"] < 0.6  # teacher-forced argmax would give 1.0


def test_by_length_rows_carry_the_source_and_the_output_length():
    """Each row is one (source length, output length) pair, the output counted without its <eos> (SCAN's length
    split counts actions), so the report can group by either; tokens re-weights token_acc exactly."""
    data = doubling_task()
    _, module = run_test_epoch(Oracle(good_len=3), data)
    rows = {r["src_len"]: r for r in module.by_length()}
    L = data.test.src_len
    assert sorted(rows) == sorted(set(L.tolist())) == [1, 2, 3, 4]  # targets are 3, 5, 7, 9 long with <eos>
    for n, r in rows.items():
        assert r["tgt_len"] == 2 * n  # the source written twice; <eos> not counted
        assert r["n"] == int((L == n).sum()) and r["tokens"] == r["n"] * (2 * n + 1)  # <eos> is scored
        assert r["seq_acc"] == (1.0 if n == 3 else 0.0)


def test_a_length_split_task_declares_its_output_length_and_its_longest_training_output():
    from ablate.tasks.scan import LENGTH_SPLIT_MAX_TRAIN_ACTIONS, ScanConfig, build_scan
    from ablate.train.lengths import split_length

    data = build_scan(ScanConfig(name="scan", split="length", n_train=300, n_val=20, n_test=50))
    assert split_length(data) == {"length_by": "tgt_len", "max_train_length": LENGTH_SPLIT_MAX_TRAIN_ACTIONS}
    assert split_length(doubling_task()) == {"length_by": "src_len", "max_train_length": 4}
    simple = build_scan(ScanConfig(name="scan", split="simple", n_train=300, n_val=20, n_test=50))
    assert simple.length_by == "source"


# ---------------------------------------------------------------- embeddings as they enter the first layer


def observe_positional(model, pos_encoding: str, src, src_len, tgt_in) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(input, output) of every call of the model's `pos_encoding` positional modules in one forward pass."""
    cls = POSITIONAL.get(pos_encoding)
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append((i[0].detach(), o.detach())))
             for m in model.modules() if isinstance(m, cls)]
    assert hooks, f"no {pos_encoding} positional module in the model"
    with torch.no_grad():
        model(src, src_len, tgt_in)
    for h in hooks:
        h.remove()
    return seen


def transformer(data, **kw):
    torch.manual_seed(0)
    cfg = ModelConfig(arch="transformer", d_model=64, n_layers=1, n_heads=4, d_ff=64, dropout=0.0, **kw)
    return build_model(cfg, info_of(data)).eval()


@pytest.fixture(scope="module")
def long_reverse():
    return build_task(task_config_class("reverse")(name="reverse", vocab_size=20, min_len=12, max_len=16,
                                                   n_train=16, n_val=4, n_test=4))


def test_learned_position_table_starts_at_the_token_scale(long_reverse):
    """Rows of the learned table and scaled token embeddings enter the first layer with comparable norms."""
    model = transformer(long_reverse, pos_encoding="learned")
    b = make_batch(long_reverse.train, torch.arange(16))
    calls = observe_positional(model, "learned", b["src"], b["src_len"], b["tgt_in"])
    assert len(calls) == 2  # encoder and decoder
    for x, y in calls:
        tokens, positions = x, y - x
        real = x.abs().sum(-1) > 0  # pad rows embed to zero
        ratio = positions[real].norm(dim=-1).mean() / tokens[real].norm(dim=-1).mean()
        assert 0.5 < ratio < 2.0, f"position rows are {ratio:.3f} x the token rows"


def test_sqrt_d_model_scale_is_applied_to_token_embeddings(long_reverse):
    """What reaches the positional encoding is sqrt(d_model) x the embedding table's rows."""
    model = transformer(long_reverse)
    b = make_batch(long_reverse.train, torch.arange(16))
    src, tgt_in = b["src"], b["tgt_in"][:, :-3]  # different widths tell the encoder's call from the decoder's
    calls = observe_positional(model, "sinusoidal", src, b["src_len"], tgt_in)
    tables = [m.weight.detach() for m in model.modules()
              if isinstance(m, nn.Embedding) and m.num_embeddings == len(long_reverse.vocab)]
    assert tables
    for x, _ in calls:
        ids = src if x.size(1) == src.size(1) else tgt_in
        raw = [t[ids] for t in tables]
        assert any(torch.allclose(x, 64**0.5 * r, atol=1e-5) for r in raw), \
            f"embedding output is {x.norm() / raw[0].norm():.3f} x the table rows, not sqrt(64) = 8"


# ---------------------------------------------------------------- splits


SMALL = {  # option sets whose spaces are small, so drawing splits from one stream would repeat examples
    "copy": {"vocab_size": 3, "min_len": 2, "max_len": 3, "n_train": 20, "n_val": 6, "n_test": 8},
    "reverse": {"vocab_size": 3, "min_len": 2, "max_len": 3, "n_train": 20, "n_val": 6, "n_test": 8},
    "sort": {"vocab_size": 3, "min_len": 2, "max_len": 3, "n_train": 20, "n_val": 6, "n_test": 8},
    "recall": {"vocab_size": 4, "min_len": 1, "max_len": 2, "n_train": 12, "n_val": 4, "n_test": 4},
    "listops": {"min_len": 5, "max_len": 7, "max_depth": 2, "max_args": 3, "n_train": 40, "n_val": 10,
                "n_test": 10},
    "translate": {"min_len": 5, "max_len": 5, "max_adjectives": 1, "n_train": 60, "n_val": 20, "n_test": 20},
    "coref": {"n_train": 60, "n_val": 20, "n_test": 20},
    "scan": {"n_train": 200, "n_val": 50, "n_test": 100},
}
SHIFTED = {"vocab_size": 2, "min_len": 2, "max_len": 3, "test_min_len": 3, "test_max_len": 4, "n_train": 8,
           "n_val": 2, "n_test": 10}


def sources(split) -> set[tuple[int, ...]]:
    return {tuple(s[:n]) for s, n in zip(split.src.tolist(), split.src_len.tolist(), strict=True)}


def synthetic_cases() -> list[tuple[str, dict]]:
    cases = [(name, SMALL.get(name, {"n_train": 40, "n_val": 10, "n_test": 10}))
             for name in TASKS.names() if name != "tsv"]  # tsv: the user's file (its own test splits by source)
    cases += [(name, SHIFTED) for name in ("copy", "reverse", "sort")]
    return cases


@pytest.mark.parametrize("name,kw", synthetic_cases(),
                         ids=[n + ("-shifted_test" if "test_min_len" in kw else "") for n, kw in synthetic_cases()])
def test_synthetic_splits_are_disjoint_at_a_small_space(name, kw):
    cls = task_config_class(name)
    data = build_task(cls(name=name, **{k: v for k, v in kw.items() if k in cls.__dataclass_fields__}))
    tr, va, te = (sources(s) for s in (data.train, data.val, data.test))
    assert len(tr) == len(data.train) and len(va) == len(data.val) and len(te) == len(data.test)  # no repeats
    assert not tr & va and not tr & te and not va & te


# ---------------------------------------------------------------- training options reach the step


class FirstStep(pl.Callback):
    """The first training batch's reported loss, and what it would be with and without label smoothing."""

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        with torch.no_grad():
            logits = module.model(batch["src"], batch["src_len"], batch["tgt_in"]).flatten(0, 1)
            self.with_ls = F.cross_entropy(logits, batch["tgt"].flatten(), ignore_index=PAD, label_smoothing=0.3)
            self.without = F.cross_entropy(logits, batch["tgt"].flatten(), ignore_index=PAD)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.loss = float(outputs["loss"])
        trainer.should_stop = True


def test_label_smoothing_reaches_the_training_loss(tiny_task, tiny_model):
    data = tiny_task("reverse")
    model = tiny_model("gru", data)
    b = make_batch(data.train, torch.arange(len(data.train)))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(30):  # confident predictions first: on near-uniform ones smoothing changes the loss little
        opt.zero_grad()
        F.cross_entropy(model(b["src"], b["src_len"], b["tgt_in"]).flatten(0, 1), b["tgt"].flatten(),
                        ignore_index=PAD).backward()
        opt.step()
    module = SeqModule(model, TrainConfig(label_smoothing=0.3), data.vocab,
                       decode_caps=lambda n: torch.full_like(n, 7))
    probe = FirstStep()
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_steps=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[probe],
                         limit_val_batches=0)
    trainer.fit(module, datamodule=TaskDataModule(data, 16, 16))
    assert probe.loss == pytest.approx(float(probe.with_ls), rel=1e-5)
    assert abs(probe.with_ls - probe.without) > 0.05  # the two objectives differ enough to tell apart


def test_gradient_clipping_reaches_the_optimizer_step(tmp_path):
    """fit() with grad_clip: the gradient the optimizer steps on has that norm; without, the larger raw norm."""
    from torch.optim.optimizer import register_optimizer_step_post_hook

    from ablate.train.fit import fit

    norms: list[float] = []

    def record(opt, args, kwargs):
        grads = [p.grad for g in opt.param_groups for p in g["params"] if p.grad is not None]
        norms.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))

    def first_step_norm(clip: float, where: str) -> float:
        tree = {"task": {"name": "reverse", "vocab_size": 5, "min_len": 2, "max_len": 4, "n_train": 16, "n_val": 4,
                         "n_test": 4},
                "model": {"arch": "gru", "d_model": 16, "n_layers": 1},
                "train": {"max_steps": 1, "batch_size": 16, "grad_clip": clip, "lr": 1e-3}}
        cfg, _ = build_run(tree, seed=0, where="test")
        norms.clear()
        (tmp_path / where).mkdir()
        fit(cfg, tmp_path / where)
        return norms[0]

    handle = register_optimizer_step_post_hook(record)  # grads are still there; Lightning computes them in step()
    try:
        raw = first_step_norm(0.0, "off")
        clipped = first_step_norm(raw / 10, "on")
    finally:
        handle.remove()
    assert raw > 0.01
    assert clipped == pytest.approx(raw / 10, rel=1e-3)
