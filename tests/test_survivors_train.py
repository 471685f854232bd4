"""Tests written for survivors of `make mutate` in ablate/train/ (issue 21, docs/testing.md): each pins a behaviour
no selected test checked, and was seen to fail with the mutant(s) it was written for. Unit-level: fake trainers,
small tensors, no fit."""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

pytestmark = pytest.mark.usefixtures("torch_one_thread")

TASK = {"name": "reverse", "vocab_size": 5, "min_len": 2, "max_len": 6, "n_train": 32, "n_val": 8, "n_test": 8}


# ------------------------------------------------------------------ tracking: the W&B run's name and its log file
def test_the_wandb_run_name_falls_back_from_label_to_run_id_to_run():
    from ablate.train.tracking import run_name

    label = "no_pe, model.n_heads=2"
    assert run_name({"label": label, "run_id": "0123456789ab"}, 1) == "no_pe, model.n_heads=2, seed 1"
    assert run_name({"label": "", "run_id": "0123456789ab"}, 2) == "0123456789ab, seed 2"
    assert run_name({}, 0) == "run, seed 0"


def test_wandb_chatter_goes_quietly_to_the_runs_wandb_log(tmp_path, monkeypatch):
    """WANDB_SILENT on, WANDB_CONSOLE off unless the user set it, and the 'wandb' logger writes run_dir/wandb.log
    (only: not the terminal); a second run's log replaces the first's handler."""
    from ablate.train.tracking import capture_wandb_output

    log = logging.getLogger("wandb")
    monkeypatch.setattr(log, "handlers", [])
    monkeypatch.setattr(log, "propagate", True)
    monkeypatch.delenv("WANDB_SILENT", raising=False)
    monkeypatch.delenv("WANDB_CONSOLE", raising=False)
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    try:
        capture_wandb_output(first)
        import os

        assert (os.environ.get("WANDB_SILENT"), os.environ.get("WANDB_CONSOLE")) == ("true", "off")
        log.info("syncing run a")
        monkeypatch.setenv("WANDB_CONSOLE", "wrap")  # the user's own setting is kept
        capture_wandb_output(second)
        assert os.environ["WANDB_CONSOLE"] == "wrap"
        log.info("syncing run b")
        for h in log.handlers:
            h.flush()
        assert "syncing run a" in (first / "wandb.log").read_text()
        assert "syncing run b" not in (first / "wandb.log").read_text()
        assert "syncing run b" in (second / "wandb.log").read_text()
        assert [Path(h.baseFilename) for h in log.handlers] == [(second / "wandb.log").resolve()]
        assert log.propagate is False
    finally:
        for h in list(log.handlers):
            h.close()


def test_the_loggers_of_a_run_name_its_wandb_run_and_put_tensorboard_in_the_run(tmp_path, monkeypatch):
    """wandb (mode from WANDB_MODE): named by row and seed, grouped by experiment, tagged by variant and label, its
    id the run id plus the store's tag; TensorBoard under run_dir/tensorboard; finish() closes the wandb run."""
    from ablate.config import build_run
    from ablate.train import tracking

    seen, finished = {}, []

    class WandbLogger:  # finish() recognises wandb's logger by its class name
        def __init__(self, **kwargs):
            seen.update(kwargs)
            self.save_dir = kwargs["save_dir"]
            self.experiment = SimpleNamespace(finish=lambda: finished.append(self.save_dir))

    monkeypatch.setattr("pytorch_lightning.loggers.WandbLogger", WandbLogger)
    monkeypatch.setattr(tracking, "capture_wandb_output", lambda run_dir: None)
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg, _ = build_run({"task": TASK, "model": {"arch": "gru", "d_model": 8, "n_layers": 1},
                        "logger": {"tensorboard": True}}, 3, "here")
    meta = {"run_id": "0123456789ab", "label": "no_pe", "variant": "pe", "experiment": "tiny"}
    loggers = tracking.make_loggers(cfg, tmp_path, meta)
    assert [type(lg).__name__ for lg in loggers] == ["CSVLogger", "WandbLogger", "TensorBoardLogger"]
    assert (seen["name"], seen["group"], seen["tags"], seen["mode"]) == ("no_pe, seed 3", "tiny", ["pe", "no_pe"],
                                                                        "offline")
    assert seen["id"] == tracking.wandb_id(tmp_path, "0123456789ab") and seen["id"].startswith("0123456789ab-")
    assert Path(loggers[2].log_dir) == tmp_path / "tensorboard"
    assert (tmp_path / "wandb.log").is_file()  # the run started with its output in the log
    tracking.finish(loggers, tmp_path)
    assert finished == [str(tmp_path.resolve())]
    tracking.finish(loggers[:1] + loggers[2:])  # no wandb run: nothing to close
    assert len(finished) == 1


def test_wandb_mode_reads_wandb_mode_as_wandb_does():
    from ablate.train.relog import wandb_mode

    assert wandb_mode(None, {}) == "disabled"
    assert wandb_mode("offline", {}) == "offline"
    assert wandb_mode(None, {"WANDB_MODE": " Dryrun "}) == "offline"
    assert wandb_mode(None, {"WANDB_MODE": "run"}) == "online"
    assert wandb_mode(None, {"WANDB_MODE": "nonsense"}) == "disabled"
    assert wandb_mode("online", {"WANDB_MODE": "offline"}) == "online"  # the experiment's own mode wins
    assert wandb_mode("online", {"WANDB_MODE": "disabled"}) == "disabled"  # except disabled, as in wandb


# ------------------------------------------------------------------ relog: TensorBoard filled after the fact
def _scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard")).Reload()
    return {tag: [(e.step, round(e.value, 4)) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_tensorboard_filled_from_metrics_csv_has_every_value_at_its_step(tmp_path):
    from ablate.train.relog import fill_tensorboard

    with (tmp_path / "metrics.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch", "step", "train/loss", "val/loss", "val/seq_acc", "note"])
        w.writerow([0, 4, 1.5, "", "", ""])
        w.writerow([0, 9, "", 1.25, 0.25, "text"])
        w.writerow([1, 19, "nan", 0.75, 0.5, ""])
    assert fill_tensorboard(tmp_path) is True
    assert _scalars(tmp_path) == {"train/loss": [(4, 1.5)], "val/loss": [(9, 1.25), (19, 0.75)],
                                  "val/seq_acc": [(9, 0.25), (19, 0.5)], "epoch": [(4, 0.0), (9, 0.0), (19, 1.0)]}
    assert fill_tensorboard(tmp_path / "nothing") is False  # no metrics.csv


def test_relog_fills_tensorboard_once_and_names_what_it_could_not(tmp_path, monkeypatch):
    from ablate.train.relog import relog

    monkeypatch.setenv("WANDB_MODE", "disabled")
    logger = SimpleNamespace(tensorboard=True, wandb=SimpleNamespace(mode=None))
    assert relog(tmp_path, logger) == ["TensorBoard (no metrics.csv)"]
    (tmp_path / "metrics.csv").write_text("epoch,step,val/loss\n0,9,1.25\n")
    assert relog(tmp_path, logger) == []
    assert _scalars(tmp_path)["val/loss"] == [(9, 1.25)]
    assert relog(tmp_path, logger) == []  # events already there: not written twice
    assert _scalars(tmp_path)["val/loss"] == [(9, 1.25)]
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert relog(tmp_path, logger) == ["W&B"]


# ------------------------------------------------------------------ reuse: a finished run's weights
def test_a_finished_run_without_a_recorded_checkpoint_is_reused_from_its_last_weights(tmp_path):
    from ablate.train.reuse import checkpoint_of

    assert checkpoint_of(tmp_path, {}) is None
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"w")
    assert checkpoint_of(tmp_path, {}) == (tmp_path / "checkpoints" / "last.ckpt").resolve()
    assert checkpoint_of(tmp_path, {"checkpoint": {"path": "checkpoints/gone.ckpt"}}) == (
        tmp_path / "checkpoints" / "last.ckpt").resolve()
    (tmp_path / "checkpoints" / "best.ckpt").write_bytes(b"w")
    assert checkpoint_of(tmp_path, {"checkpoint": {"path": "checkpoints/best.ckpt"}}) == (
        tmp_path / "checkpoints" / "best.ckpt").resolve()


# ------------------------------------------------------------------ compute: resume keeps the counts
def test_resumed_compute_meter_keeps_its_target_tokens_and_old_checkpoints_read_as_exact():
    from ablate.train.compute import ComputeMeter

    meter = ComputeMeter(SimpleNamespace(seconds=2.0))
    meter.load_state_dict({"flops": 600, "target_tokens": 20, "budget_hit": False, "lower_bound": True,
                           "at_validation": {"3": [300, 1.0]}})
    got = meter.fields({"steps_to_target": 3})
    assert (got["train_flops"], got["train_flops_per_token"], got["flops_per_s"]) == (600, 30.0, 300.0)
    assert (got["flops_lower_bound"], got["flops_to_target"], got["seconds_to_target"]) == (True, 300, 1.0)
    assert ComputeMeter(SimpleNamespace(seconds=0.0)).fields({})["flops_lower_bound"] is False  # nothing counted
    old = ComputeMeter(SimpleNamespace(seconds=2.0))
    old.load_state_dict({"flops": 600, "target_tokens": 20})  # a checkpoint from before these fields
    assert old.fields({})["flops_lower_bound"] is False and old.budget_hit is False


# ------------------------------------------------------------------ checkpointing: the GPU's RNG on resume
def test_resume_restores_the_cuda_rng_when_a_gpu_is_there(monkeypatch):
    from ablate.train import checkpointing

    states = checkpointing.rng_states()
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.append)
    checkpointing.set_rng_states({**states, "cuda": ["gpu0-state"]})
    assert restored == [["gpu0-state"]]
    checkpointing.set_rng_states({**states, "cuda": None})  # saved on a machine without a GPU: left alone
    assert restored == [["gpu0-state"]]


# ------------------------------------------------------------------ sizing: match_flops for every arch
@pytest.mark.parametrize("arch", ["mlp", "seq2seq"])
def test_flops_per_token_of_an_arch_equals_the_count_on_a_built_model(arch):
    """The planner's FLOPs per token (match_flops) equal the count on an ordinary, initialised model at the
    task's mean lengths (the meta-built one is moved to real memory: some archs copy tensors in forward)."""
    from ablate.config import build_run
    from ablate.models import build_model
    from ablate.models.flops import example_forward
    from ablate.tasks import build_task
    from ablate.train.sizing import flops_per_token, info_of

    cfg, _ = build_run({"task": TASK, "model": {"arch": arch, "d_model": 16, "n_layers": 1}}, 0, "t")
    data = build_task(cfg.task)
    src = round(float(data.train.src_len.float().mean()))
    tgt = round(float(data.train.tgt_len.float().mean()))
    expected = example_forward(build_model(cfg.model, info_of(data)), src, tgt).total / tgt
    assert flops_per_token(cfg.model, cfg.task) == pytest.approx(expected)


# ------------------------------------------------------------------ callbacks: early stopping's noise margin
def test_auto_plateau_on_the_loss_needs_a_drop_larger_than_its_standard_error():
    """min_delta None on val/loss: a drop smaller than the loss's standard error is no improvement (patience 1
    stops there); a drop larger than it is. SE here: sqrt((E[nll^2] - loss^2) / tokens) = sqrt((5 - 4) / 10)."""
    from ablate.train.callbacks import PlateauStopping

    def check(cb, loss):
        trainer = SimpleNamespace(callback_metrics={"val/loss": torch.tensor(loss)}, fast_dev_run=False,
                                  should_stop=False, current_epoch=0,
                                  strategy=SimpleNamespace(reduce_boolean_decision=lambda d, all=True: d),
                                  lightning_module=SimpleNamespace(
                                      val_stats={"n": 10, "tokens": 10, "nll_sq_mean": 5.0}))
        cb._run_early_stopping_check(trainer)
        return trainer.should_stop

    cb = PlateauStopping("val/loss", "min", patience=1, min_delta=None)
    assert check(cb, 2.0) is False and float(cb.best_score) == 2.0
    assert math.isclose(cb.used_delta, math.sqrt(0.1))
    assert check(cb, 1.5) is False and float(cb.best_score) == 1.5  # 0.5 > 0.316: an improvement
    assert check(cb, 1.4) is True and cb.plateaued and float(cb.best_score) == 1.5  # 0.1 < SE: none


# ------------------------------------------------------------------ batching
def test_a_token_budget_below_any_example_gives_one_example_per_batch():
    from ablate.train.batching import cut_batches

    src, tgt = torch.tensor([3, 4, 2, 5]), torch.tensor([4, 5, 3, 6])
    assert cut_batches(torch.tensor([2, 0, 3, 1]), src, tgt, 2, 1) == [[2], [0], [3], [1]]
    assert cut_batches(torch.tensor([2, 0, 3, 1]), src, tgt, 2, 0) == [[2, 0], [3, 1]]


def test_bucketed_batches_keep_the_shuffled_order_among_equal_lengths():
    """Within a chunk the examples are sorted by (source, target) length, and examples of equal lengths keep the
    shuffle's order (a stable sort: the same batches on every device and torch version)."""
    from ablate.train.batching import epoch_batches

    n, bs = 256, 8
    lengths = torch.Generator().manual_seed(1)
    src = torch.randint(2, 5, (n,), generator=lengths)
    tgt = src + torch.randint(0, 2, (n,), generator=lengths)
    got = epoch_batches(src, tgt, bs, 0, True, torch.Generator().manual_seed(0), chunk_batches=n // bs)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0)).tolist()  # the epoch's shuffle
    by_length = sorted(order, key=lambda i: (int(src[i]), int(tgt[i])))  # Python's sort is stable
    expected = {tuple(by_length[i:i + bs]) for i in range(0, n, bs)}
    assert {tuple(b) for b in got} == expected and len(got) == n // bs


# ------------------------------------------------------------------ accel: torch.compile's settings
def test_compile_model_compiles_each_child_in_place_with_dynamic_shapes():
    """train.compile: every direct sub-module compiled in place for dynamic shapes (batch lengths vary: one graph,
    not a recompile per length, which would fall back to eager after torch's recompile limit), with inductor."""
    from torch import nn

    from ablate.train.accel import compile_model

    calls = []

    class Recorded(nn.Linear):
        def compile(self, *args, **kwargs):
            calls.append((self, args, kwargs))

    model = nn.Sequential(Recorded(2, 2), Recorded(2, 2))
    assert compile_model(model) is model
    assert [(c[0], c[1], c[2]) for c in calls] == [(model[0], (), {"dynamic": True, "backend": "inductor"}),
                                                    (model[1], (), {"dynamic": True, "backend": "inductor"})]


# ------------------------------------------------------------------ progress_file: what the progress lines say
def test_progress_times_modes_and_interval_read_as_documented(monkeypatch):
    from ablate.train.progress_file import every_seconds, fmt_time, progress_mode

    assert [fmt_time(s) for s in (-5, 0, 59.9, 61, 3599, 3600, 3661, 7322, 90000)] == [
        "0m00s", "0m00s", "0m59s", "1m01s", "59m59s", "1h00m", "1h01m", "2h02m", "25h00m"]
    monkeypatch.delenv("ABLATE_PROGRESS", raising=False)
    assert progress_mode() == "auto"
    for mode in ("lines", "file", "off"):
        monkeypatch.setenv("ABLATE_PROGRESS", mode)
        assert progress_mode() == mode
    monkeypatch.setenv("ABLATE_PROGRESS", "loud")  # unknown: the default
    assert progress_mode() == "auto"
    monkeypatch.delenv("ABLATE_PROGRESS_EVERY", raising=False)
    assert every_seconds() == 30.0
    for value, seconds in (("0.5", 0.5), ("0", 0.0), ("-3", 0.0), ("often", 30.0)):
        monkeypatch.setenv("ABLATE_PROGRESS_EVERY", value)
        assert every_seconds() == seconds


# ------------------------------------------------------------------ progress: the run's line and progress.json
def _progress_trainer(**kw):
    return SimpleNamespace(**{"global_step": 0, "current_epoch": 0, "max_epochs": 10, "max_steps": -1,
                              "estimated_stepping_batches": 1700, "global_rank": 0, "state": SimpleNamespace(fn="fit"),
                              "callback_metrics": {}, "num_val_batches": [3], **kw})


def test_the_progress_line_shows_epoch_step_loss_rate_eta_and_the_monitored_metric(monkeypatch):
    import io

    from ablate.train import progress

    clock = [100.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: clock[0])
    out = io.StringIO()
    bar = progress.RunProgress(label="seq2seq seed 0", monitor="val/bleu", mode="lines", out=out, every_s=30)
    trainer = _progress_trainer()
    bar.on_train_start(trainer, None)
    trainer.global_step, trainer.current_epoch = 340, 1
    clock[0] = 134.0  # 340 steps in 34 s: 10 steps/s, 1360 steps left: 136 s
    bar.on_train_batch_end(trainer, None, {"loss": torch.tensor(2.5)}, None, 0)
    clock[0] = 140.0
    trainer.callback_metrics = {"val/bleu": torch.tensor(12.4)}
    bar.on_validation_end(trainer, None)  # a plain line only every 30 s: none here
    clock[0] = 168.0  # 340 steps in 68 s: 5 steps/s, 272 s left
    bar.on_train_end(trainer, None)  # the last line, whatever the time
    assert out.getvalue().splitlines() == [
        "seq2seq seed 0  ep 1/10  step 0/1700",
        "seq2seq seed 0  ep 2/10  step 340/1700  loss 2.500  10.0 steps/s  ETA 2m16s",
        "seq2seq seed 0  ep 2/10  step 340/1700  loss 2.500  5.0 steps/s  ETA 4m32s  val/bleu 12.4"]


def test_progress_json_carries_the_lines_fields_for_the_driver_and_goes_at_the_end(tmp_path, monkeypatch):
    import io
    import json

    from ablate.train import progress

    clock = [10.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: clock[0])
    bar = progress.RunProgress(label="gru seed 1", run_dir=tmp_path, mode="file", out=io.StringIO())
    trainer = _progress_trainer(max_steps=200, estimated_stepping_batches=999)
    bar.on_train_start(trainer, None)
    trainer.global_step = 50
    clock[0] = 20.0
    bar.on_train_batch_end(trainer, None, {"loss": torch.tensor(1.0)}, None, 0)
    got = json.loads((tmp_path / "progress.json").read_text())
    assert {k: got[k] for k in ("label", "phase", "epoch", "max_epochs", "step", "total", "loss", "steps_per_s",
                                "eta_s", "monitor", "val")} == {
        "label": "gru seed 1", "phase": "train", "epoch": 1, "max_epochs": 10, "step": 50, "total": 200, "loss": 1.0,
        "steps_per_s": 5.0, "eta_s": 30.0, "monitor": "val/loss", "val": None}
    assert bar.out.getvalue() == ""  # file mode prints nothing
    bar.on_test_end(trainer, None)
    assert not (tmp_path / "progress.json").exists()


def test_progress_on_a_terminal_rewrites_one_line(monkeypatch):
    import io

    from ablate.train import progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setenv("ABLATE_PROGRESS", "auto")
    out = Terminal()
    bar = progress.RunProgress(label="mlp seed 0", out=out)
    bar.on_train_start(_progress_trainer(max_epochs=3), None)
    bar.close()
    assert out.getvalue() == "\rmlp seed 0  ep 1/3  step 0/1700\n"


# ------------------------------------------------------------------ fit: what result.json records
def test_a_runs_result_records_its_checkpoint_and_what_reproduces_it(tmp_path):
    """result.json's checkpoint, and its reproduce block: seeds and the versions the report's confound check compares
    (CONFOUND_FIELDS: threads, torch, lightning, python, cpu, device, dtype, dirty)."""
    import os
    import platform

    import pytorch_lightning as pl

    from ablate.config import CONFOUND_FIELDS, build_run
    from ablate.train.fit import fit

    cfg, _ = build_run({"task": {**TASK, "seed": 4}, "model": {"arch": "gru", "d_model": 8, "n_layers": 1},
                        "train": {"batch_size": 32, "max_epochs": 1}}, 2, "t")
    (tmp_path / "r").mkdir()
    result = fit(cfg, tmp_path / "r")
    # the kept best checkpoint: in the run's checkpoints/, weights only (all testing and `attend` need)
    assert result["checkpoint"] == {"test_on": "best", "path": "checkpoints/best.ckpt"}
    assert "optimizer_states" not in torch.load(tmp_path / "r" / "checkpoints" / "best.ckpt", weights_only=False)
    rep = result["reproduce"]
    assert set(CONFOUND_FIELDS) - {"code"} <= set(rep)
    assert (rep["seed"], rep["task_seed"], rep["python"], rep["torch"], rep["lightning"], rep["cpu_count"]) == (
        2, 4, platform.python_version(), str(torch.__version__), pl.__version__, os.cpu_count())
    assert (rep["device"], rep["dtype"], rep["threads"]) == ("cpu", "32-true", torch.get_num_threads())


# ------------------------------------------------------------------ data
def test_the_data_module_validates_on_the_whole_split_unless_asked_for_a_subset():
    from ablate.config import build_run
    from ablate.tasks import build_task
    from ablate.train.data import TaskDataModule

    cfg, _ = build_run({"task": TASK}, 0, "t")
    data = build_task(cfg.task)
    seen = [i for b in TaskDataModule(data, 16, 3).val_dataloader() for i in b["index"].tolist()]
    assert seen == list(range(len(data.val))) == list(range(8))
    assert sum(len(b["index"]) for b in TaskDataModule(data, 16, 3, val_subset=5).val_dataloader()) == 5


def test_several_devices_start_one_rank_process_each_and_every_rank_builds_for_the_whole_world(tmp_path, monkeypatch):
    """train.devices 2: fit() hands the run to launch_ranks (the DDP processes, end to end in test_scale), and a
    rank's fit_rank builds its run knowing the world size (DistributedData, the DDP strategy). Faked here: the
    rank processes are invisible to mutmut."""
    from ablate.config import build_run
    from ablate.train import fit as fit_mod

    cfg, _ = build_run({"task": TASK, "model": {"arch": "gru", "d_model": 8, "n_layers": 1}}, 0, "t")
    launched, built = [], []
    monkeypatch.setattr(fit_mod, "num_devices", lambda t: 2)
    monkeypatch.setattr(fit_mod, "launch_ranks", lambda *args: launched.append(args) or {"rank": 0})
    assert fit_mod.fit(cfg, tmp_path, {"run_id": "r"}) == {"rank": 0}
    assert launched == [(fit_mod.fit_rank, cfg, tmp_path, {"run_id": "r"}, 2)]

    class Stop(Exception):
        pass

    def build(*args):
        built.append(args)
        raise Stop

    monkeypatch.setattr(fit_mod, "build", build)
    with pytest.raises(Stop):
        fit_mod.fit_rank(cfg, str(tmp_path), None, 2)
    assert built == [(cfg, tmp_path, {}, 2)]


# ------------------------------------------------------------------ sizing: the sizes the planner matches on
def test_task_sizes_name_each_sides_vocabulary_and_whether_they_are_one_table():
    from ablate.models import TaskInfo
    from ablate.train.sizing import info_of

    shared = list("abcdefg")
    one = SimpleNamespace(vocab=shared, src_vocab=shared, tgt_vocab=shared, max_src_len=7, max_tgt_len=9)
    assert info_of(one) == TaskInfo(7, 7, 7, 9, shared_vocab=True)
    two = SimpleNamespace(vocab=list("xyz"), src_vocab=list("abcde"), tgt_vocab=list("xyz"), max_src_len=4,
                          max_tgt_len=6)
    assert info_of(two) == TaskInfo(5, 3, 4, 6, shared_vocab=False)
    bare = SimpleNamespace(vocab=shared, max_src_len=3, max_tgt_len=2)  # a task object without the two names
    assert info_of(bare) == TaskInfo(7, 7, 3, 2, shared_vocab=True)


def test_mean_lengths_of_a_classification_split_keep_its_one_label_token():
    """FLOPs per token (match_flops) are counted at the split's mean lengths: a classification target is one
    label token (no <eos>), not two."""
    from ablate.train.sizing import split_mean_lengths

    split = SimpleNamespace(src_len=torch.tensor([5, 6, 8]), tgt_len=torch.tensor([1, 1, 1]))
    assert split_mean_lengths(split) == (6, 1)
    assert split_mean_lengths(SimpleNamespace(src_len=torch.tensor([2, 3]), tgt_len=torch.tensor([4, 7]))) == (2, 6)


# ------------------------------------------------------------------ reuse: which finished run a re-test reuses
def test_a_retest_reuses_only_a_finished_run_that_trained_the_same_thing_itself(tmp_path):
    import json

    from ablate.config import build_run
    from ablate.train.reuse import find_trained, train_id

    cfg, _ = build_run({"task": TASK, "model": {"arch": "gru", "d_model": 8, "n_layers": 1}}, 0, "t")
    tid = train_id(cfg)

    def run(name, ckpt=True, **result):
        d = tmp_path / name
        (d / "checkpoints").mkdir(parents=True)
        if ckpt:
            (d / "checkpoints" / "last.ckpt").write_bytes(b"w")
        (d / "result.json").write_text(json.dumps({"status": "finished", "train_id": tid, **result}))

    run("a_other", train_id="0" * 12)  # trained something else
    run("b_copy", reused_from="e_source")  # itself a re-test
    run("c_failed", status="failed")
    run("d_gone", ckpt=False)  # its weights deleted
    assert find_trained(cfg, tmp_path / "new") is None
    run("e_source")
    run("new")  # the run itself is never its own source
    found = find_trained(cfg, tmp_path / "new")
    assert (found.run_id, found.checkpoint, found.result["train_id"]) == (
        "e_source", (tmp_path / "e_source" / "checkpoints" / "last.ckpt").resolve(), tid)
    assert found.fields()["reused_from"] == "e_source"


# ------------------------------------------------------------------ batching: the planned samplers
def test_token_batching_buckets_and_a_budget_below_any_example_gives_single_examples():
    from ablate.train.batching import train_sampler

    n = 400
    lengths = torch.Generator().manual_seed(3)
    src = torch.randint(1, 30, (n,), generator=lengths)

    class Split(SimpleNamespace):
        def __len__(self):
            return n

    split = Split(src_len=src, tgt_len=src + 1)
    for batching in ("random", "tokens"):  # max_tokens 1: every example alone
        one = list(train_sampler(split, 8, 0, batching, 1))
        assert sorted(i for b in one for i in b) == list(range(n)) and {len(b) for b in one} == {1}
    tokens = list(train_sampler(split, 8, 0, "tokens", 0))
    # bucketed within chunks of 10 batches: a batch's source lengths span far less than the data's 1..29
    spread = sum(int(src[b].max() - src[b].min()) for b in tokens) / len(tokens)
    assert sorted(i for b in tokens for i in b) == list(range(n)) and spread < 6
    assert list(train_sampler(split, 8, 0, "tokens", 0)) == tokens  # the same seed, the same batches


# ------------------------------------------------------------------ module: epoch metrics, train/loss steps
def _tiny_module():
    from ablate.config import TrainConfig, build_run
    from ablate.models import build_model
    from ablate.tasks import build_task
    from ablate.train.module import SeqModule
    from ablate.train.sizing import info_of

    cfg, _ = build_run({"task": TASK, "model": {"arch": "gru", "d_model": 8, "n_layers": 1}}, 0, "t")
    data = build_task(cfg.task)
    return SeqModule(build_model(cfg.model, info_of(data)), TrainConfig(), data.vocab, decode_caps=lambda n: n + 5)


def test_an_epochs_metrics_and_the_plateaus_statistics_come_from_the_summed_counts():
    module = _tiny_module()
    logged = {}
    module.log = lambda key, value, **kw: logged.__setitem__(key, value)
    module.trainer = SimpleNamespace(strategy=SimpleNamespace(reduce=lambda v, reduce_op: v))
    module._sums = {"nll": torch.tensor(20.0), "nll_sq": torch.tensor(50.0), "hit_cap": torch.tensor(3.0),
                    "n": torch.tensor(4.0), "tokens": torch.tensor(10.0), "token_correct": torch.tensor(7.0),
                    "seq_correct": torch.tensor(2.0), "cap_short": torch.tensor(1.0)}
    expected = {"val/loss": 2.0, "val/token_acc": 0.7, "val/seq_acc": 0.5, "val/hit_cap": 3.0, "val/cap_short": 1.0}
    assert module._log_epoch("val") == pytest.approx(expected) and logged == pytest.approx(expected)
    assert module.val_stats == pytest.approx({"n": 4, "tokens": 10, "nll_sq_mean": 5.0})  # E[nll^2] per token
    assert module._sums == {}


def test_train_loss_is_logged_on_the_steps_lightning_writes():
    module = _tiny_module()
    trainer = SimpleNamespace(log_every_n_steps=5, should_stop=False, global_step=0)
    module.trainer = trainer
    logs = []
    for step in range(11):
        trainer.global_step = step
        logs.append(module._logs_this_step())
    assert [s for s, yes in enumerate(logs) if yes] == [4, 9]
    trainer.global_step, trainer.should_stop = 6, True  # the last step of a stopped run
    assert module._logs_this_step() is True
    trainer.log_every_n_steps = 0
    assert module._logs_this_step() is False


# ------------------------------------------------------------------ callbacks: the stopping rules as configured
def test_stop_callbacks_follow_the_configured_early_stopping_and_target():
    from ablate.train.callbacks import PlateauStopping, TrainToTarget, stop_callbacks

    t = SimpleNamespace(monitor="val/seq_acc", early_stopping=SimpleNamespace(patience=3, min_delta=0.01),
                        target=SimpleNamespace(metric="val/loss", value=1.5))
    es, target = stop_callbacks(t)
    assert isinstance(es, PlateauStopping) and isinstance(target, TrainToTarget)
    assert (es.monitor, es.mode, es.patience, es.min_delta, es.auto, es.used_delta) == (
        "val/seq_acc", "max", 3, 0.01, False, 0.01)
    assert (target.metric, target.value, target.mode) == ("val/loss", 1.5, "min")
    auto = stop_callbacks(SimpleNamespace(monitor="val/loss", early_stopping=SimpleNamespace(patience=2,
                                                                                             min_delta=None)))
    assert len(auto) == 1 and auto[0].auto and auto[0].mode == "min"


def test_a_validation_loss_that_is_not_finite_stops_the_run_as_diverged():
    from ablate.train.callbacks import StopRecorder

    def validate(rec, **metrics):
        logged = {k.replace("_", "/", 1): torch.tensor(v) for k, v in metrics.items()}
        trainer = SimpleNamespace(sanity_checking=False, state=SimpleNamespace(fn="fit"), should_stop=False,
                                  callback_metrics=logged)
        rec.on_validation_end(trainer, None)
        return trainer.should_stop

    rec = StopRecorder("val/seq_acc")
    assert validate(rec, val_seq_acc=0.25, val_loss=2.0, val_hit_cap=1.0) is False and not rec.diverged
    assert validate(rec, val_seq_acc=0.5, val_loss=float("inf")) is True and rec.diverged
    assert (rec.values, rec.last_hit_cap) == ([0.25, 0.5], None)
    assert StopRecorder("val/loss").diverged is False


# ------------------------------------------------------------------ fit: the dirty flag in reproduce
def test_git_dirty_says_whether_the_package_directory_has_uncommitted_changes(tmp_path):
    import subprocess

    from ablate.train.fit import git_dirty

    pkg = tmp_path / "repo" / "ablate"
    pkg.mkdir(parents=True)
    (pkg / "a.py").write_text("x = 1\n")
    git = ["git", "-C", str(tmp_path / "repo"), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "c"], check=True)
    assert git_dirty(pkg) is False
    (tmp_path / "repo" / "notes.txt").write_text("outside the package\n")
    assert git_dirty(pkg) is False
    (pkg / "a.py").write_text("x = 2\n")
    assert git_dirty(pkg) is True
    assert git_dirty(tmp_path / "elsewhere") is None  # no git tree: unknown


# ------------------------------------------------------------------ texts: the test samples a report shows
def test_test_samples_show_raw_texts_where_the_task_has_them_and_are_written_in_example_order(tmp_path):
    from ablate.tasks import Vocab
    from ablate.train.texts import TextView, read_samples, write_samples

    src, tgt = Vocab(["a", "b", "c"]), Vocab(["x", "y"])
    ids = lambda v, toks: v.encode(toks) + [Vocab.eos]  # noqa: E731
    plain = TextView(src, tgt)
    assert plain.sample(1, ids(src, ["a", "c"]), ids(tgt, ["x", "y"]), ids(tgt, ["x", "x"]), False) == {
        "index": 1, "source": "a c", "reference": "x x", "hypothesis": "x y", "exact": False}
    raw = TextView(src, tgt, detokenize="".join, refs={"test": ["r0", "xy!"]}, test_sources=["s0", "ac?"])
    assert raw.sample(1, ids(src, ["a", "c"]), ids(tgt, ["x", "y"]), ids(tgt, ["x", "y"]), True) == {
        "index": 1, "source": "ac?", "reference": "xy!", "hypothesis": "xy", "exact": True}
    data = SimpleNamespace(src_vocab=src, vocab=tgt, detokenize="".join, val=SimpleNamespace(tgt_text=["v"]),
                           test=SimpleNamespace(tgt_text=["t"], src_text=["s"]))
    assert TextView.of(data) == TextView(src, tgt, "".join, {"val": ["v"], "test": ["t"]}, ["s"])
    rows = [{"index": 2, "source": "é"}, {"index": 0, "source": "a"}, {"index": 1, "source": "b"}]
    write_samples(tmp_path / "s.jsonl", rows)
    assert read_samples(tmp_path / "s.jsonl") == sorted(rows, key=lambda r: r["index"])
    assert (tmp_path / "s.jsonl").read_text(encoding="utf-8").splitlines()[2] == '{"index": 2, "source": "é"}'
