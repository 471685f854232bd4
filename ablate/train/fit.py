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
import importlib
import inspect
import logging
import multiprocessing as mp
import os
import platform
import queue
import resource
import socket
import subprocess
import sys
import threading
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Optional

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.plugins.environments import LightningEnvironment
from pytorch_lightning.strategies import DDPStrategy
from torch.utils.data import DataLoader, DistributedSampler

from ablate.config import RunConfig
from ablate.models import build_model
from ablate.tasks import build_task
from ablate.train.data import TaskDataModule
from ablate.train.module import SeqModule
from ablate.train.sizing import info_of

for _name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
    logging.getLogger(_name).setLevel(logging.ERROR)
warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*number of training batches.*")
warnings.filterwarnings("ignore", ".*LeafSpec.*")
warnings.filterwarnings("ignore", ".*exists and is not empty.*")  # the run dir already holds config.yaml
warnings.filterwarnings("ignore", ".*sync_dist=True.*")  # SeqModule logs totals it has reduced itself
DDP_ARGS = inspect.signature(torch.nn.parallel.DistributedDataParallel.__init__).parameters  # torch >= 2.12 renamed one


class TrainTimer(Callback):
    """Seconds spent in training steps only (validation decoding excluded), for tokens/s."""

    def __init__(self):
        self.seconds, self._t0 = 0.0, 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.seconds += time.perf_counter() - self._t0


def git_commit() -> Optional[str]:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def make_loggers(cfg: RunConfig, run_dir: Path, meta: dict[str, Any]) -> list:
    loggers: list = [CSVLogger(save_dir=str(run_dir), name="", version="")]
    wb = cfg.logger.wandb
    if wb.mode != "disabled":
        from pytorch_lightning.loggers import WandbLogger

        loggers.append(WandbLogger(
            project=wb.project, entity=wb.entity, mode=wb.mode, save_dir=str(run_dir),
            group=meta.get("experiment"), name=meta.get("run_id"), id=meta.get("run_id"),
            tags=[t for t in (meta.get("variant"), meta.get("label")) if t][:2], config=cfg.to_dict(),
            reinit=True))
    return loggers


class EvalShard(DistributedSampler):
    """Rank r of w evaluates examples r, r+w, r+2w, ...: every example exactly once. (Lightning's
    DistributedSampler repeats a few to give every rank as many, and the summed metrics would count
    those twice.) The ranks may run one batch apart, so DDP must not sync buffers (rank_strategy)."""

    def __iter__(self):
        return iter(range(self.rank, len(self.dataset), self.num_replicas))

    def __len__(self) -> int:
        return len(range(self.rank, len(self.dataset), self.num_replicas))


class DistributedData(TaskDataModule):
    """Several devices: each rank reads its own share of every split. (Lightning would inject samplers
    itself, but it loses the batch size of a batch_sampler loader and repeats evaluation examples.)"""

    def _shard(self, loader: DataLoader, sampler_cls: type, batch_size: int, **kw: Any) -> DataLoader:
        t = self.trainer
        sampler = sampler_cls(loader.dataset, num_replicas=t.world_size, rank=t.global_rank, **kw)
        return DataLoader(loader.dataset, sampler=sampler, batch_size=batch_size, collate_fn=loader.collate_fn)

    def train_dataloader(self) -> DataLoader:  # reshuffled each epoch (Lightning calls set_epoch)
        return self._shard(super().train_dataloader(), DistributedSampler, self.batch_size, shuffle=True,
                           seed=self.seed)

    def val_dataloader(self) -> DataLoader:
        return self._shard(super().val_dataloader(), EvalShard, self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._shard(super().test_dataloader(), EvalShard, self.eval_batch_size, shuffle=False)


def num_devices(t: Any) -> int:
    """How many devices (so processes) train.devices asks for, as Lightning counts them."""
    d, gpu = t.devices, t.accelerator in ("gpu", "cuda") or (t.accelerator == "auto" and torch.cuda.is_available())
    if isinstance(d, str):
        d = d.strip()
        if "," in d:  # "0,1": device indices
            return len([x for x in d.split(",") if x.strip()])
        d = (-1 if gpu else 1) if d == "auto" else int(d)
    if isinstance(d, (list, tuple)):
        return len(d)
    if d == -1:
        return torch.cuda.device_count() if gpu else (os.cpu_count() or 1)
    return int(d)


def rank_strategy(name: str) -> Any:
    """The strategy of one rank of a multi-device run; launch_ranks has started the processes already."""
    name = name.replace("_spawn", "").replace("_fork", "").replace("_notebook", "")
    if name in ("auto", "ddp", "ddp_find_unused_parameters_true", "ddp_find_unused_parameters_false"):
        # broadcast_buffers=False: buffers here are constant tables (positional encodings), and syncing them on
        # every forward would hang a rank that validates one batch more than the others (EvalShard).
        no_sync = {"forward_sync_buffers" if "forward_sync_buffers" in DDP_ARGS else "broadcast_buffers": False}
        return DDPStrategy(find_unused_parameters=name.endswith("_true"), **no_sync)
    return name  # fsdp, deepspeed, ...: they also find their processes started (LOCAL_RANK is set)


class RankTraceback(Exception):
    """A rank's traceback, shown as the cause of the error the launcher raises."""

    def __str__(self) -> str:
        return self.args[0]


def _rank_main(rank: int, world: int, port: int, threads: int, plugins: list[str], cfg: RunConfig, run_dir: str,
               meta: dict[str, Any], results: Any) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), NODE_RANK="0",
                      RANK=str(rank), LOCAL_RANK=str(rank))
    launcher = os.getppid()

    def orphaned() -> None:  # the launcher was killed (Ctrl-C, a cancelled Ray task or SLURM job): stop too
        while os.getppid() == launcher:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=orphaned, daemon=True).start()
    try:
        torch.set_num_threads(threads)
        for name in plugins:
            importlib.import_module(name)
        results.put((rank, "ok", fit_rank(cfg, run_dir, meta, world)))
    except BaseException as e:  # noqa: B036 -- reported to the launcher, which stops the other ranks
        results.put((rank, "error", (f"{type(e).__name__}: {e}", traceback.format_exc())))
    results.close()
    results.join_thread()  # the report is sent, the run's files are closed: skip the interpreter's slow
    sys.stdout.flush()     # teardown of torch (seconds per process)
    sys.stderr.flush()
    os._exit(0)


def launch_ranks(cfg: RunConfig, run_dir: str | Path, meta: Optional[dict[str, Any]], world: int) -> dict[str, Any]:
    """Run fit_rank in `world` fresh processes on this machine; rank 0's result, or raise if any rank fails."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")  # fresh interpreters: nothing of this process (or its sys.argv) is re-run
    results = ctx.Queue()
    threads = max(1, torch.get_num_threads() // world)
    args = (world, port, threads, list((meta or {}).get("plugins", ())), cfg, str(run_dir), meta or {}, results)
    procs = [ctx.Process(target=_rank_main, args=(rank, *args)) for rank in range(world)]
    for p in procs:
        p.start()
    out, done = {}, set()
    try:
        while len(done) < world:
            try:
                rank, status, payload = results.get(timeout=1.0)
            except queue.Empty:
                dead = [r for r, p in enumerate(procs) if r not in done and p.exitcode not in (None, 0)]
                if dead:
                    code = procs[dead[0]].exitcode
                    raise RuntimeError(f"rank {dead[0]} of {world} died (exit code {code})") from None
                continue
            if status == "error":
                raise RuntimeError(f"rank {rank} of {world}: {payload[0]}") from RankTraceback(payload[1])
            done.add(rank)
            out = payload if rank == 0 else out
    finally:
        for p in procs:
            p.join(timeout=10 if len(done) == world else 0)
            if p.is_alive():  # a failed or interrupted run: the others may wait in a collective forever
                p.kill()
                p.join()
    return out


def fit(cfg: RunConfig, run_dir: str | Path, meta: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """Train and test one run in run_dir; returns the result fields (metrics, timing, reproduction)."""
    world = num_devices(cfg.train)
    if world > 1:
        return launch_ranks(cfg, run_dir, meta, world)
    return fit_rank(cfg, run_dir, meta)


def fit_rank(cfg: RunConfig, run_dir: str | Path, meta: Optional[dict[str, Any]] = None,
             world: int = 1) -> dict[str, Any]:
    """fit() in this process: the only one (world 1), or one of the ranks launch_ranks started."""
    run_dir, meta, t = Path(run_dir), meta or {}, cfg.train
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    data = build_task(cfg.task)
    if int(os.environ.get("RANK", 0) if world > 1 else 0) == 0:
        data.vocab.save(run_dir / "vocab.json")
    model = build_model(cfg.model, info_of(data))
    params = sum(p.numel() for p in model.parameters())
    module = SeqModule(model, t, data.vocab, data.kind, data.metrics)
    dm = (DistributedData if world > 1 else TaskDataModule)(data, t.batch_size, t.eval_batch_size, seed=cfg.seed)
    mode = "min" if t.monitor.endswith("loss") else "max"
    ckpt = ModelCheckpoint(dirpath=str(run_dir / "checkpoints"), filename="best", monitor=t.monitor, mode=mode,
                           save_top_k=1, save_last=t.test_on == "last", enable_version_counter=False)
    timer = TrainTimer()
    loggers = make_loggers(cfg, run_dir, meta)
    trainer = pl.Trainer(
        max_epochs=t.max_epochs, max_steps=t.max_steps, accelerator=t.accelerator, devices=t.devices,
        strategy=rank_strategy(t.strategy) if world > 1 else t.strategy, precision=t.precision,
        plugins=[LightningEnvironment()] if world > 1 else None, deterministic=t.deterministic, logger=loggers,
        callbacks=[ckpt, timer], gradient_clip_val=t.grad_clip or None, check_val_every_n_epoch=t.val_every,
        num_sanity_val_steps=0, enable_progress_bar=False, enable_model_summary=False,
        log_every_n_steps=max(1, min(50, len(data.train) // t.batch_size)), default_root_dir=str(run_dir),
    )
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    trainer.fit(module, datamodule=dm)
    fit_time = time.perf_counter() - t0
    if trainer.interrupted:  # Lightning swallows Ctrl-C; an interrupted run must not count as finished
        raise KeyboardInterrupt
    use_best = t.test_on == "best" and ckpt.best_model_path
    test_ckpt = ckpt.best_model_path if use_best else None
    tested = trainer.test(module, datamodule=dm, ckpt_path=test_ckpt, verbose=False)[0]
    for lg in loggers[1:]:
        lg.experiment.finish()
    if trainer.global_rank != 0:
        return {}
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
    return {
        "metrics": {k: float(v) for k, v in tested.items()},
        "best_val": {t.monitor: float(ckpt.best_model_score) if ckpt.best_model_score is not None else None},
        "params": params,
        "train_time_s": timer.seconds,
        "fit_time_s": fit_time,
        "tokens_per_s": module.train_tokens / timer.seconds if timer.seconds else None,
        "peak_mem_mb": peak,
        "epochs": trainer.current_epoch,
        "steps": trainer.global_step,
        "checkpoint": {"test_on": "best" if use_best else "last",
                       "path": os.path.relpath(test_ckpt, run_dir) if test_ckpt else None},
        "reproduce": {
            "seed": cfg.seed, "task_seed": getattr(cfg.task, "seed", None), "deterministic": t.deterministic,
            "python": platform.python_version(), "torch": torch.__version__, "lightning": pl.__version__,
            "git_commit": git_commit(), "threads": torch.get_num_threads(),
        },
    }
