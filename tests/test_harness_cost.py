"""Issue 28 item 4: the harness's own cost — train/loss is logged only on the steps Lightning writes, and the
resume checkpoint is not written at the fit's last validation (it would be deleted at the end anyway)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from ablate.config import build_run
from ablate.train import checkpointing
from ablate.train.fit import fit
from ablate.train.module import SeqModule

TREE = {"task": {"name": "reverse", "vocab_size": 6, "min_len": 2, "max_len": 6, "n_train": 160, "n_val": 8,
                 "n_test": 8},
        "model": {"arch": "gru", "d_model": 8, "n_layers": 1},
        "train": {"batch_size": 16, "max_epochs": 2, "val_every_n_steps": 7}}


def losses(run_dir: Path) -> list[tuple[str, str]]:
    with open(run_dir / "metrics.csv") as f:
        return [(r["step"], r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")]


def test_train_loss_is_logged_as_before_though_self_log_runs_only_on_written_steps(tmp_path, monkeypatch):
    cfg, _ = build_run(TREE, 0, "t")
    calls = []
    real = SeqModule._logs_this_step
    monkeypatch.setattr(SeqModule, "_logs_this_step", lambda self: calls.append(real(self)) or calls[-1])
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    fit(cfg, tmp_path / "a")
    monkeypatch.setattr(SeqModule, "_logs_this_step", lambda self: True)  # every step, as before
    fit(cfg, tmp_path / "b")
    assert losses(tmp_path / "a") == losses(tmp_path / "b") and len(losses(tmp_path / "a")) >= 2
    assert len(calls) == 20 and sum(calls) == len(losses(tmp_path / "a"))  # 20 steps, a few of them logged


def test_the_resume_checkpoint_is_saved_at_every_validation_but_the_last(tmp_path, monkeypatch):
    saved = []
    real = checkpointing.ResumeCheckpoint.on_validation_end

    def spy(self, trainer, pl_module):
        real(self, trainer, pl_module)
        if self.path.is_file():
            saved.append(trainer.global_step)
            self.path.unlink()

    monkeypatch.setattr(checkpointing.ResumeCheckpoint, "on_validation_end", spy)
    cfg, _ = build_run({**TREE, "train": {**TREE["train"], "val_every_n_steps": 5, "resume_every_s": 0}}, 0, "t")
    result = fit(cfg, tmp_path)
    assert result["steps"] == 20
    assert saved == [5, 10, 15]  # validations at 5, 10, 15 and 20 (the end: not saved)


def test_the_resume_checkpoint_waits_resume_every_s_between_writes(tmp_path, monkeypatch):
    """train.resume_every_s: a validation writes the resume state only once that many seconds have passed since
    the last write or the fit's start (the clock is a fake one, a second per validation); it names no run."""
    import time

    saved, clock = [], {"t": 0.0}
    real = checkpointing.ResumeCheckpoint.on_validation_end

    def spy(self, trainer, pl_module):
        clock["t"] += 1.0
        real(self, trainer, pl_module)
        if self.path.is_file():
            saved.append(trainer.global_step)
            self.path.unlink()

    monkeypatch.setattr(time, "monotonic", lambda: clock["t"])
    monkeypatch.setattr(checkpointing.ResumeCheckpoint, "on_validation_end", spy)
    tree = {**TREE, "train": {**TREE["train"], "val_every_n_steps": 2, "resume_every_s": 3}}
    cfg, _ = build_run(tree, 0, "t")
    assert fit(cfg, tmp_path)["steps"] == 20
    assert saved == [6, 12, 18]  # 3 s after the start, then 3 s after each write; 20, the end, is never saved
    other, _ = build_run({**TREE, "train": {**TREE["train"], "val_every_n_steps": 2}}, 0, "t")
    assert other.identity() == cfg.identity()


def test_the_best_checkpoint_is_written_once_with_the_best_validations_weights(tmp_path, monkeypatch):
    """Each better validation's weights are held (a copy: training goes on changing them in place) and written
    once, when the fit ends; the file holds the weights of the validation that was best, not the last ones."""
    import torch
    from pytorch_lightning.strategies import Strategy

    from ablate.train.callbacks import BestCheckpoint

    at_validation, writes = {}, []
    real_end = BestCheckpoint.on_validation_end

    def remember(self, trainer, pl_module):
        at_validation[trainer.global_step] = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
        real_end(self, trainer, pl_module)

    real_save = Strategy.save_checkpoint  # every checkpoint file Lightning writes goes through it
    monkeypatch.setattr(BestCheckpoint, "on_validation_end", remember)

    def save(self, ckpt, path, *args, **kwargs):
        writes.append(str(path))
        real_save(self, ckpt, path, *args, **kwargs)

    monkeypatch.setattr(Strategy, "save_checkpoint", save)
    tree = {**TREE, "train": {**TREE["train"], "val_every_n_steps": 4, "lr": 0.2}}  # high: the loss rises at the end
    cfg, _ = build_run(tree, 0, "t")
    result = fit(cfg, tmp_path)
    best = torch.load(tmp_path / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    assert len([w for w in writes if w.endswith("best.ckpt")]) == 1  # one write, at the fit's end
    assert best["global_step"] == result["tested_step"] in at_validation
    want = at_validation[result["tested_step"]]
    assert all(torch.equal(best["state_dict"][k], want[k]) for k in want)
    assert result["tested_step"] != result["steps"]  # the best was not the last: the held copy mattered


@pytest.mark.parametrize("train, ends", [({"max_steps": 5}, True), ({"max_epochs": 3}, False)])
def test_training_ends_here_reads_the_budget(train, ends):
    class Progress:
        is_last_batch = True

    class Trainer:
        max_steps, max_epochs, global_step, current_epoch = train.get("max_steps", -1), train.get("max_epochs"), 5, 1
        fit_loop = type("F", (), {"epoch_loop": type("E", (), {"batch_progress": Progress})})

    assert checkpointing.training_ends_here(Trainer) is ends


def test_the_compute_meter_logs_only_the_steps_lightning_writes(tmp_path, monkeypatch):
    """train/flops and train/seconds went through self.log at every step (Lightning's bookkeeping each time),
    though only the written steps reach metrics.csv; now only those are logged."""
    cfg, _ = build_run(TREE, 0, "t")
    logged = []
    real = SeqModule.log
    monkeypatch.setattr(SeqModule, "log", lambda self, name, *a, **k: logged.append(name) or real(self, name, *a,
                                                                                                  **k))
    fit(cfg, tmp_path)
    with open(tmp_path / "metrics.csv") as f:
        written = [r["step"] for r in csv.DictReader(f) if r.get("train/flops")]
    assert 2 <= logged.count("train/flops") == logged.count("train/seconds") == len(written) < 20  # of 20 steps


def test_the_benchmarks_hand_written_loop_runs(monkeypatch):
    """benchmarks/harness_overhead.py's reference loop (its evaluate broke once when decode_counts gained a count,
    and nothing ran it but make bench)."""
    import sys

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent / "benchmarks"))
    monkeypatch.delitem(sys.modules, "harness_overhead", raising=False)
    import harness_overhead

    got = harness_overhead.run_plain(harness_overhead.config(quick=True))
    assert got["fit"] > 0 and got["call"] >= got["fit"]
