"""Fit one run: build task and model, train with Lightning, test, write the run's files.

Raises on failure; the caller (experiment.worker) records the failure. The
run's result.json is written by the caller, last, so a killed run leaves none.

Several devices (train.devices=2, on GPUs or CPU): fit() spawns one process per
device itself (launch_ranks) and each joins the process group from the usual
MASTER_ADDR/MASTER_PORT/RANK/LOCAL_RANK/WORLD_SIZE variables, so Lightning
starts no processes of its own. (Lightning's "ddp" would re-run sys.argv, that
is the whole `ablate run` grid, once per device; "ddp_spawn" would keep the
test rows, timings and token counts in its children.) Only rank 0 writes the
run directory; validation and test metrics are sums over all ranks, each
example counted once (EvalShard).
"""

from __future__ import annotations

import csv
import logging
import os
import platform
import resource
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.plugins.environments import LightningEnvironment

from ablate.config import RunConfig
from ablate.models import build_model
from ablate.tasks import TaskData, build_task
from ablate.tasks.textmetrics import signatures
from ablate.train.accel import compile_model
from ablate.train.batching import reload_every
from ablate.train.callbacks import (
    BestCheckpoint,
    StopRecorder,
    TimeLimit,
    stop_callbacks,
    stop_fields,
    stop_record,
    val_schedule,
)
from ablate.train.checkpointing import ResumeCheckpoint, finish_resume, resume_path
from ablate.train.compute import ComputeMeter
from ablate.train.data import TaskDataModule
from ablate.train.decoding import decode_caps
from ablate.train.distributed import DistributedData, launch_ranks, num_devices, rank_strategy
from ablate.train.lengths import split_length
from ablate.train.module import SeqModule
from ablate.train.peak import utilization
from ablate.train.progress import EvalTimer, RunProgress
from ablate.train.reuse import Trained, find_trained, train_id
from ablate.train.sizing import decode_flops_per_token, info_of
from ablate.train.texts import SAMPLES_FILE, TextView, write_samples
from ablate.train.tracking import finish, make_loggers

for _name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
    logging.getLogger(_name).setLevel(logging.ERROR)
warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*number of training batches.*")
warnings.filterwarnings("ignore", ".*LeafSpec.*")
warnings.filterwarnings("ignore", ".*exists and is not empty.*")  # the run dir already holds config.yaml
warnings.filterwarnings("ignore", ".*sync_dist=True.*")  # SeqModule logs totals it has reduced itself


class TrainTimer(Callback):
    """Seconds spent in training steps only (validation decoding excluded), for tokens/s."""

    def __init__(self):
        self.seconds, self._t0 = 0.0, 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.seconds += time.perf_counter() - self._t0
        self._t0 = 0.0

    def running(self) -> float:
        """The seconds so far, the step in progress included."""
        return self.seconds + (time.perf_counter() - self._t0 if self._t0 else 0.0)


def git_commit() -> Optional[str]:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def git_dirty(package: Optional[Path] = None) -> Optional[bool]:
    """Whether the project's git tree has uncommitted changes (untracked files included) under the package
    directory (ablate/) now: then git_commit alone does not say which code trained a run. None without git."""
    here = package or Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--", "."], capture_output=True,
                             text=True, timeout=10)
        return bool(out.stdout.strip()) if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def cpu_model() -> str:
    """What the report names as the machine: the CPU's model name (Linux), else the platform's word for it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def fit(cfg: RunConfig, run_dir: str | Path, meta: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """Train and test one run in run_dir; returns the result fields (metrics, timing, reproduction)."""
    world = num_devices(cfg.train)
    if world > 1:
        return launch_ranks(fit_rank, cfg, run_dir, meta, world)
    return fit_rank(cfg, run_dir, meta)


def fit_rank(cfg: RunConfig, run_dir: str | Path, meta: Optional[dict[str, Any]] = None,
             world: int = 1) -> dict[str, Any]:
    """fit() in this process: the only one (world 1), or one of the ranks launch_ranks started."""
    run = build(cfg, Path(run_dir), meta or {}, world)
    train(run)
    tested = evaluate(run)
    if run.trainer.global_rank != 0:
        return {}
    return record(run, tested)


@dataclass
class Run:
    """One run's parts, from build() through train() and evaluate() to record()."""

    cfg: RunConfig
    run_dir: Path
    data: TaskData
    module: SeqModule
    dm: pl.LightningDataModule
    trainer: pl.Trainer
    ckpt: BestCheckpoint
    timer: TrainTimer
    eval_timer: EvalTimer
    resume: ResumeCheckpoint
    stoppers: list[Callback]
    recorder: StopRecorder
    progress: RunProgress
    loggers: list
    params: int
    trained: Optional[Trained] = None  # a finished run differing only in eval.*: its weights are tested
    fit_time: float = 0.0
    dirty: Optional[bool] = None  # uncommitted changes under ablate/ when the run started (git_dirty)
    meter: Optional[ComputeMeter] = None  # training FLOPs and seconds, train.max_flops


def build(cfg: RunConfig, run_dir: Path, meta: dict[str, Any], world: int = 1) -> Run:
    """Task, model, LightningModule, data and Trainer of one run (seeded first)."""
    t = cfg.train
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    data = build_task(cfg.task)
    if int(os.environ.get("RANK", 0) if world > 1 else 0) == 0:
        data.vocab.save(run_dir / "vocab.json")  # the target vocabulary (the source one too when shared)
        if not data.shared_vocab:
            data.src_vocab.save(run_dir / "src_vocab.json")
    info = info_of(data)
    model = build_model(cfg.model, info)
    params = sum(p.numel() for p in model.parameters())
    if t.compile:
        model = compile_model(model)
    module = SeqModule(model, t, data.vocab, data.kind, data.metrics, texts=TextView.of(data),
                       decode_caps=decode_caps(data, info.max_tgt_len),
                       test_decoding={"beam_size": cfg.eval.beam_size, "length_penalty": cfg.eval.length_penalty}
                       if cfg.eval.beam_size > 1 else None)
    trained = find_trained(cfg, run_dir) if world == 1 else None  # only eval.* differs: test its weights
    dm = (DistributedData if world > 1 else TaskDataModule)(data, t.batch_size, t.eval_batch_size, seed=cfg.seed,
                                                            batching=t.batching, max_tokens=t.max_tokens,
                                                            val_subset=t.val_subset)
    mode = "min" if t.monitor.endswith("loss") else "max"
    ckpt = BestCheckpoint(dirpath=str(run_dir / "checkpoints"), filename="best", monitor=t.monitor, mode=mode,
                           save_top_k=1, enable_version_counter=False, save_on_train_epoch_end=False,
                           save_weights_only=True)  # weights only: all testing and `attend` need; saves faster
    timer, eval_timer = TrainTimer(), EvalTimer()
    meter = ComputeMeter(timer, t.max_flops)  # before the timer: counting a new batch shape is not timed
    resume = ResumeCheckpoint(run_dir, dm, timer, t.resume_every_s)  # full state in last.ckpt: a rerun continues
    rules, time_limit = stop_callbacks(t), [TimeLimit(timer, t.max_time)] if t.max_time > 0 else []
    stoppers = rules + time_limit
    recorder = StopRecorder(t.monitor)
    label = " ".join(str(x) for x in (meta.get("label"), f"seed {cfg.seed}") if x)
    progress = RunProgress(label, t.monitor, run_dir)
    loggers = make_loggers(cfg, run_dir, meta)
    trainer = pl.Trainer(
        max_epochs=t.max_epochs, max_steps=t.max_steps, accelerator=t.accelerator, devices=t.devices,
        strategy=rank_strategy(t.strategy) if world > 1 else t.strategy, precision=t.precision,
        plugins=[LightningEnvironment()] if world > 1 else None, deterministic=t.deterministic, logger=loggers,
        # the time limit decides a step's stop before the meter logs that step (it logs only the steps written)
        callbacks=[ckpt, resume, *time_limit, meter, timer, eval_timer, progress, recorder, *rules],
        gradient_clip_val=t.grad_clip or None,
        **val_schedule(t), reload_dataloaders_every_n_epochs=reload_every(t.batching, t.max_tokens),
        num_sanity_val_steps=0, enable_progress_bar=True, enable_model_summary=False, use_distributed_sampler=False,
        log_every_n_steps=max(1, min(50, len(data.train) // t.batch_size)), default_root_dir=str(run_dir),
    )
    return Run(cfg, run_dir, data, module, dm, trainer, ckpt, timer, eval_timer, resume, stoppers, recorder, progress,
               loggers, params, trained, dirty=git_dirty(), meter=meter)


def train(run: Run) -> None:
    """Fit (resuming from last.ckpt when there is one); nothing to fit when a trained checkpoint is reused."""
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    if run.trained is None:
        run.trainer.fit(run.module, datamodule=run.dm, ckpt_path=resume_path(run.run_dir))
    run.fit_time = time.perf_counter() - t0
    if run.trainer.interrupted:  # Lightning swallows Ctrl-C; an interrupted run must not count as finished
        raise KeyboardInterrupt


def _test_checkpoint(run: Run) -> tuple[bool, Optional[str]]:
    """(tested on the best validation checkpoint?, its path; None: the weights as training left them)."""
    if run.trained is not None:
        return run.cfg.train.test_on == "best", str(run.trained.checkpoint)
    use_best = bool(run.cfg.train.test_on == "best" and run.ckpt.best_model_path)
    return use_best, run.ckpt.best_model_path if use_best else None


def evaluate(run: Run) -> dict[str, float]:
    """Test metrics of the chosen checkpoint; then the resume state and loggers are closed."""
    _, path = _test_checkpoint(run)
    try:
        tested = run.trainer.test(run.module, datamodule=run.dm, ckpt_path=path, verbose=False)[0]
    finally:
        run.progress.close()
    finish_resume(run.run_dir, run.trainer, keep_last_weights=run.cfg.train.test_on == "last")
    finish(run.loggers)
    return tested


def eval_seconds(run: Run) -> float:
    """Validation + test seconds. A re-test validated nothing itself: its source's validation seconds count, so
    the column compares like with like (beam 4 read 3x cheaper than the greedy run it re-tests)."""
    src = run.trained.result if run.trained is not None else None
    if src is None or src.get("eval_time_s") is None or src.get("test_time_s") is None:
        return run.eval_timer.seconds  # a source from before test_time_s was recorded: this run's test alone
    return src["eval_time_s"] - src["test_time_s"] + run.eval_timer.test_seconds


def compute_fields(run: Run) -> dict[str, Any]:
    """FLOPs per generated token (what decoding costs, counted on the trained model), and for a trained run
    the training compute fields with achieved FLOP/s as a fraction of the devices' peak (null on a CPU or a
    device the table does not know)."""
    out: dict[str, Any] = {"decode_flops_per_token": decode_flops_per_token(run.module.model, run.data.train)}
    if run.trained is not None:  # a re-test: the training fields are its source's (trained.fields())
        return out
    out |= run.meter.fields(stop_fields(run.stoppers))
    device = run.trainer.strategy.root_device
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return out | utilization(out["flops_per_s"], name, str(run.trainer.precision), run.trainer.world_size,
                             torch.get_float32_matmul_precision())


def record(run: Run, tested: dict[str, float]) -> dict[str, Any]:
    """Write the test samples and by_length.csv; return the result fields (rank 0 only)."""
    cfg, t, module, run_dir, data = run.cfg, run.cfg.train, run.module, run.run_dir, run.data
    if module.test_samples:
        write_samples(run_dir / SAMPLES_FILE, module.test_samples)
    rows = module.by_length()
    if rows:
        with open(run_dir / "by_length.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    if torch.cuda.is_available() and t.accelerator != "cpu":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS, MiB
    use_best, test_ckpt = _test_checkpoint(run)
    timer = run.timer
    val_cap = run.ckpt.best_hit_cap if use_best else run.recorder.last_hit_cap  # the tested weights' validation
    return {
        "metrics": {k: float(v) for k, v in tested.items()} | ({"val/hit_cap": val_cap} if val_cap is not None
                                                               else {}),
        "best_val": {t.monitor: float(run.ckpt.best_model_score) if run.ckpt.best_model_score is not None else None},
        "params": run.params,
        # Positions beyond these were never trained (a learned table's rows there stay at their init).
        "max_train_src_len": int(data.train.src_len.max()),
        "max_train_tgt_len": int(data.train.tgt_len.max()),  # <eos> included, as the decoder reads it
        # by_length.csv's column the task's split is defined by, and its longest training value in that unit
        # (the by-length figure shades the lengths beyond it)
        **split_length(data),
        **signatures(data.metrics),  # bleu_signature, chrf_signature: how BLEU and chrF were computed
        "train_time_s": timer.seconds,
        "eval_time_s": eval_seconds(run),  # validation + test loops, free-running decoding included
        "test_time_s": run.eval_timer.test_seconds,
        "fit_time_s": run.fit_time,
        "tokens_per_s": module.train_tokens / timer.seconds if timer.seconds else None,
        "pad_fraction": module.pad_fraction,  # padding share of the training batches' token slots
        "decode_tokens_per_s": module.decode_tokens_per_s,  # greedy free-running decoding of the test split
        "peak_mem_mb": peak,
        "epochs": run.trainer.current_epoch,
        "steps": run.trainer.global_step,
        "resumed_at_step": run.resume.resumed_at_step,
        **stop_fields(run.stoppers),
        **compute_fields(run),
        # why training ended, and the optimizer step of the weights the test metrics come from (a re-test: its
        # source's, from trained.fields())
        **({**stop_record(run.trainer, [*run.stoppers, run.meter], run.recorder),
            "tested_step": run.ckpt.best_step if use_best else run.trainer.global_step} if run.trained is None else {}),
        "checkpoint": {"test_on": "best" if use_best else "last",
                       "path": os.path.relpath(test_ckpt, run_dir) if test_ckpt else None},
        "train_id": train_id(cfg),
        **(run.trained.fields() if run.trained is not None else {}),
        "reproduce": {
            "seed": cfg.seed, "task_seed": getattr(cfg.task, "seed", None), "deterministic": t.deterministic,
            "python": platform.python_version(), "torch": str(torch.__version__), "lightning": pl.__version__,
            "git_commit": git_commit(), "threads": torch.get_num_threads(),
            "cpu": cpu_model(), "cpu_count": os.cpu_count(), "dirty": run.dirty,
            "device": str(run.trainer.strategy.root_device), "dtype": str(run.trainer.precision),
        },
    }
