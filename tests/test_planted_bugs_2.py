"""Round two of the fixed regression set (issue 21): seven slips that survived the whole suite, each changing a
number a table prints. Every test goes through public behaviour and was checked to fail with its slip planted.

beam length normalisation counts <eos>; a target is reached when a validation lands exactly on it; BLEU/chrF of a
subword task score the detokenized hypothesis against the raw reference text; a variant baseline's Welch p uses
the base runs of the same grid point; resume restores the lr schedule; the schedule steps per optimizer step.
"""

from __future__ import annotations

import pandas as pd
import pytest
import pytorch_lightning as pl
import torch
from handbuilt import TableModel
from torch import nn

from ablate.tasks.vocab import Vocab

pytestmark = pytest.mark.usefixtures("torch_one_thread")
PAD, BOS, EOS = Vocab.pad, Vocab.bos, Vocab.eos


# ---------------------------------------------------------------- beam search: the length counts <eos>
A, B = 5, 6  # two ordinary tokens


class TwoPaths(TableModel):
    """Next-token probabilities by prefix: P(B <eos>) = 0.5 * 1.0, P(A A <eos>) = 0.5 * 0.6 * 1.0 = 0.3."""

    TABLE = {(): {A: 0.5, B: 0.5}, (A,): {A: 0.6, EOS: 0.4}, (B,): {EOS: 1.0}, (A, A): {EOS: 1.0}}
    VOCAB = 7


def test_beam_length_normalisation_counts_the_eos():
    """Per token with <eos> counted: log 0.5 / 2 = -0.347 beats log 0.3 / 3 = -0.401, so B <eos> wins at
    length_penalty 1. Not counting <eos> (log 0.5 / 1 = -0.693 vs log 0.3 / 2 = -0.602) would pick A A <eos>."""
    model = TwoPaths()
    src, src_len = torch.ones(1, 1, dtype=torch.long), torch.ones(1, dtype=torch.long)
    assert model.generate(src, src_len, 4, beam_size=2, length_penalty=1.0)[0].tolist() == [B, EOS, PAD, PAD]
    # with a length_penalty of 3 the longer one wins: 3 ** 3 = 27 against 2 ** 3 = 8 (log 0.3 / 27 > log 0.5 / 8)
    assert model.generate(src, src_len, 4, beam_size=2, length_penalty=3.0)[0].tolist() == [A, A, EOS, PAD]


# ---------------------------------------------------------------- a target is reached at equality
class Scripted(pl.LightningModule):
    """Validation logs the next of `values` as `metric` (a Python float, as SeqModule logs its metrics)."""

    def __init__(self, metric: str, values: list[float]):
        super().__init__()
        self.metric, self.values, self.w = metric, list(values), nn.Parameter(torch.zeros(1))

    def training_step(self, batch, batch_idx):
        return (self.w * batch[0]).sum()

    def validation_step(self, batch, batch_idx):
        pass

    def on_validation_epoch_end(self):
        if not self.trainer.sanity_checking:
            self.log(self.metric, self.values.pop(0))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def steps_to_target(metric: str, value: float, logged: list[float]) -> int | None:
    """Trains with train.target {metric, value}, validating every step with `logged` as the metric's values."""
    from ablate.config import TrainConfig
    from ablate.stopping import TargetConfig
    from ablate.train.callbacks import stop_callbacks, stop_fields

    stoppers = stop_callbacks(TrainConfig(target=TargetConfig(metric, value)))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(len(logged), 1)), batch_size=1)
    trainer = pl.Trainer(accelerator="cpu", max_steps=len(logged), val_check_interval=1, callbacks=stoppers,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(Scripted(metric, logged), loader, torch.utils.data.DataLoader(torch.ones(1, 1)))
    return stop_fields(stoppers)["steps_to_target"]


@pytest.mark.parametrize("metric,value,logged,step", [
    ("val/seq_acc", 1.0, [0.5, 1.0, 1.0], 2),  # shipped experiments use 1.0
    ("val/seq_acc", 0.75, [0.5, 0.75, 1.0], 2),
    ("val/seq_acc", 0.9, [0.5, 90 / 100, 1.0], 2),  # 90 of 100 right: 0.9, which float32 rounds below 0.9
    ("val/seq_acc", 0.99, [0.5, 99 / 100, 1.0], 2),
    ("val/loss", 0.5, [1.0, 0.5, 0.25], 2),
    ("val/loss", 0.3, [1.0, 3 / 10, 0.25], 2),  # float32 rounds 0.3 above 0.3
])
def test_a_validation_landing_exactly_on_the_target_reaches_it(metric, value, logged, step):
    assert steps_to_target(metric, value, logged) == step


# ---------------------------------------------------------------- BLEU/chrF of a subword task
class Lookup(nn.Module):
    """Free-running output = the target ids of the example with this source (teacher-forced logits unused)."""

    def __init__(self, split, vocab_size: int):
        super().__init__()
        self.answers = {tuple(s[:n]): t for s, n, t in zip(split.src.tolist(), split.src_len.tolist(),
                                                            split.tgt.tolist(), strict=True)}
        self.V, self.dummy = vocab_size, nn.Parameter(torch.zeros(1))

    def forward(self, src, src_len, tgt_in, need_weights=False):
        return torch.zeros(src.size(0), tgt_in.size(1), self.V) + self.dummy

    def generate(self, src, src_len, max_len, **decoding):
        rows = [self.answers[tuple(s[:n])] for s, n in zip(src.tolist(), src_len.tolist(), strict=True)]
        return torch.tensor(rows)


def epoch_metrics(data) -> dict[str, float]:
    from ablate.config import TrainConfig
    from ablate.train.data import TaskDataModule
    from ablate.train.module import SeqModule
    from ablate.train.texts import TextView

    module = SeqModule(Lookup(data.test, len(data.vocab)), TrainConfig(), data.vocab, data.kind, data.metrics,
                       TextView.of(data), decode_caps=lambda n: torch.full_like(n, 40))
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    return trainer.test(module, datamodule=TaskDataModule(data, 8, 8), verbose=False)[0]


def test_bleu_of_a_bpe_task_scores_the_detokenized_hypothesis_against_the_raw_reference(tmp_path):
    from ablate.tasks import build_task
    from ablate.tasks.tsv import TsvConfig

    animals = ("cat", "dog", "bird", "horse", "cow")
    lines = [f"the {w}s walked quickly home today\tles {w}x marchaient vite ce soir" for w in animals] * 4
    (tmp_path / "train.tsv").write_text("\n".join(lines) + "\n")
    test = ["the cats walked quickly home today\tles catx marchaient vite ce soir",
            "the dogs walked quickly home today\tles dogx marchaient vite ce soir",
            # 'z' and 'q' are in no training target: the word becomes <unk> pieces, never the raw 'zqx'
            "the birds walked quickly home today\tles zqx marchaient vite ce soir"]
    (tmp_path / "test.tsv").write_text("\n".join(test[:2]) + "\n")
    (tmp_path / "unseen.tsv").write_text("\n".join(test) + "\n")
    kw = dict(train=str(tmp_path / "train.tsv"), val=str(tmp_path / "train.tsv"), tokens="bpe", vocab_size=40)

    perfect = epoch_metrics(build_task(TsvConfig(**kw, test=str(tmp_path / "test.tsv"))))
    assert perfect["test/seq_acc"] == 1.0
    assert perfect["test/bleu"] == pytest.approx(100.0) and perfect["test/chrf"] == pytest.approx(100.0)

    data = build_task(TsvConfig(**kw, test=str(tmp_path / "unseen.tsv")))
    assert Vocab.unk in data.test.tgt[2].tolist()  # the premise: the unseen word is <unk> in ids
    unseen = epoch_metrics(data)
    assert unseen["test/seq_acc"] == 1.0  # ids: <unk> for <unk> counts as right
    # Text: the hypothesis's <unk> never matches the raw 'zqx' (rebuilt from ids, the reference would read <unk>
    # too and score 100); the other words and sentences do.
    from sacrebleu.metrics import BLEU

    hyps = [t.split("\t")[1] for t in test[:2]] + ["les <unk>x marchaient vite ce soir"]  # z, q: one <unk>
    refs = [[t.split("\t")[1] for t in test]]
    assert unseen["test/bleu"] == pytest.approx(BLEU().corpus_score(hyps, refs).score, abs=1e-3)
    assert 50 < unseen["test/bleu"] < 95


# ---------------------------------------------------------------- Welch p of a variant baseline
def test_welch_p_of_a_variant_baseline_uses_the_base_runs_of_the_same_grid_point():
    from scipy.stats import ttest_ind

    from ablate.report.tables import summarize

    acc = {("base", 16): [0.50, 0.55, 0.62], ("base", 32): [0.80, 0.84, 0.83],
           ("small", 16): [0.40, 0.47, 0.41], ("small", 32): [0.86, 0.90, 0.95]}
    rows = [dict(run_id=f"{v}{d}{sd}", variant=v, label=f"{v}, model.d_model={d}", seed=sd, status="finished",
                 **{"model.d_model": d, "test/seq_acc": a})
            for (v, d), accs in acc.items() for sd, a in enumerate(accs)]
    f = summarize(pd.DataFrame(rows), baseline="base", keys=["model.d_model"]).frame.set_index("label")
    for d in (16, 32):
        row = f.loc[f"small, model.d_model={d}"]
        want = ttest_ind(acc[("small", d)], acc[("base", d)], equal_var=False).pvalue
        assert row["baseline"] == f"base, model.d_model={d}"
        assert row["p/test/seq_acc"] == pytest.approx(want, rel=1e-9)
        assert row["delta/test/seq_acc"] == pytest.approx(sum(acc[("small", d)]) / 3 - sum(acc[("base", d)]) / 3)


# ---------------------------------------------------------------- the lr schedule, step by step
def lrs_of(tmp_path, train: dict, where: str) -> list[float]:
    """The lr the optimizer stepped with at each optimizer step of fit()."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    from ablate.config import build_run
    from ablate.train.fit import fit

    tree = {"task": {"name": "reverse", "vocab_size": 5, "min_len": 2, "max_len": 3, "n_train": 32, "n_val": 4,
                     "n_test": 4},
            "model": {"arch": "gru", "d_model": 8, "n_layers": 1},
            "train": {"batch_size": 4, "lr": 1.0e-2, **train}}  # 8 steps an epoch
    cfg, _ = build_run(tree, seed=0, where="test")
    seen: list[float] = []
    handle = register_optimizer_step_pre_hook(lambda opt, args, kw: seen.append(opt.param_groups[0]["lr"]))
    try:
        (tmp_path / where).mkdir()
        fit(cfg, tmp_path / where)
    finally:
        handle.remove()
    return seen


@pytest.mark.parametrize("train,want", [
    # noam, 4 warm-up steps: lr x min(step / 4, sqrt(4 / step)) for step = 1, 2, ...
    ({"schedule": "noam", "warmup_steps": 4, "max_steps": 6},
     [0.0025, 0.005, 0.0075, 0.01, 0.008944271909999158, 0.008164965809277261]),
    # cosine after 2 warm-up steps over 10 steps: lr x (1 + cos(pi * k / 8)) / 2 for k = 0, 1, ... after warm-up
    ({"schedule": "cosine", "warmup_steps": 2, "max_steps": 10},
     [0.005, 0.01, 0.01, 0.009619397662556434, 0.008535533905932738, 0.006913417161825449,
      0.005, 0.0030865828381745515, 0.0014644660940672625, 0.00038060233744356627]),
    # no schedule, 4 warm-up steps: linear to lr, then flat
    ({"schedule": "none", "warmup_steps": 4, "max_steps": 6}, [0.0025, 0.005, 0.0075, 0.01, 0.01, 0.01]),
], ids=["noam", "cosine_warmup", "linear_warmup"])
def test_the_lr_at_each_of_the_first_steps(tmp_path, train, want):
    assert lrs_of(tmp_path, train, "run") == pytest.approx(want, rel=1e-9, abs=0)


# ---------------------------------------------------------------- resume restores the schedule
@pytest.mark.parametrize("schedule", [
    {"schedule": "none"},
    {"schedule": "noam", "warmup_steps": 6},
    {"schedule": "cosine", "warmup_steps": 3},
], ids=["none", "noam", "cosine_warmup"])
def test_resume_mid_schedule_gives_the_uninterrupted_numbers(tmp_path, fit_interrupted, schedule):
    """Interrupted after the 2nd validation (step 4, mid-schedule and mid-epoch), then resumed."""
    from ablate.config import build_run
    from ablate.train.fit import fit

    tree = {"task": {"name": "reverse", "vocab_size": 5, "min_len": 2, "max_len": 4, "n_train": 48, "n_val": 8,
                     "n_test": 8},
            "model": {"arch": "gru", "d_model": 16, "n_layers": 1},
            "train": {"max_steps": 12, "batch_size": 8, "lr": 2.0e-2, "val_every_n_steps": 2, **schedule}}
    cfg, _ = build_run(tree, seed=0, where="test")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    want = fit(cfg, tmp_path / "a")
    got = fit_interrupted(cfg, tmp_path / "b", after=2)
    assert got["resumed_at_step"] == 4
    assert got["metrics"] == want["metrics"] and got["best_val"] == want["best_val"]
    curves = [pd.read_csv(tmp_path / d / "metrics.csv").drop(columns="train/seconds", errors="ignore") for d in "ab"]
    pd.testing.assert_frame_equal(*curves, check_exact=True)  # every column but the wall clock, exactly
