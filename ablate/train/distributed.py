"""Multi-device runs: one process per device, started here (never by re-running sys.argv).

Lightning's own ddp launcher re-executes the command line, which would re-run a
whole grid in every rank; so fit() starts `world` spawned processes, each running
fit_rank() with LightningEnvironment, and only rank 0 reports the result.
"""

from __future__ import annotations

import importlib
import inspect
import multiprocessing as mp
import os
import queue
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import torch
from pytorch_lightning.strategies import DDPStrategy
from torch.utils.data import DataLoader, DistributedSampler

from ablate.config import RunConfig
from ablate.train.batching import budgeted, train_sampler
from ablate.train.checkpointing import ResumableBatchSampler
from ablate.train.data import SplitDataset, TaskDataModule, _identity

RankFn = Callable[[RunConfig, str, dict[str, Any], int], dict[str, Any]]  # fit_rank's signature

DDP_ARGS = inspect.signature(torch.nn.parallel.DistributedDataParallel.__init__).parameters  # torch >= 2.12 renamed one


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
        t, ds = self.trainer, self.data.train
        # Bucketed or token-budget batches: every rank plans the same epoch and takes every world-th batch.
        if not (budgeted(self.batching, self.max_tokens) and self.train_sampler is not None):  # kept on a reload
            self.train_sampler = train_sampler(ds, self.batch_size, self.seed, self.batching, self.max_tokens,
                                               t.global_rank, t.world_size)
        if self.train_sampler is None:
            sampler = DistributedSampler(SplitDataset(ds), num_replicas=t.world_size, rank=t.global_rank,
                                         shuffle=True, seed=self.seed)
            self.train_sampler = ResumableBatchSampler(sampler, self.batch_size)  # its place survives a resume
        if self.resume_sampler is not None:
            self.train_sampler.load_state_dict(self.resume_sampler)
            self.resume_sampler = None
        return DataLoader(SplitDataset(ds), batch_sampler=self.train_sampler, collate_fn=_identity)

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


def _rank_main(rank: int, target: RankFn, world: int, port: int, threads: int, plugins: list[str], cfg: RunConfig,
               run_dir: str, meta: dict[str, Any], results: Any) -> None:
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
        results.put((rank, "ok", target(cfg, run_dir, meta, world)))
    except BaseException as e:  # noqa: B036 -- reported to the launcher, which stops the other ranks
        results.put((rank, "error", (f"{type(e).__name__}: {e}", traceback.format_exc())))
    results.close()
    results.join_thread()  # the report is sent, the run's files are closed: skip the interpreter's slow
    sys.stdout.flush()     # teardown of torch (seconds per process)
    sys.stderr.flush()
    os._exit(0)


def launch_ranks(target: RankFn, cfg: RunConfig, run_dir: str | Path, meta: Optional[dict[str, Any]],
                 world: int) -> dict[str, Any]:
    """Run target (fit_rank, passed in so this module needs nothing of fit's) in `world` fresh processes on
    this machine; rank 0's result, or raise if any rank fails. target must be a module-level function."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")  # fresh interpreters: nothing of this process (or its sys.argv) is re-run
    results = ctx.Queue()
    threads = max(1, torch.get_num_threads() // world)
    args = (world, port, threads, list((meta or {}).get("plugins", ())), cfg, str(run_dir), meta or {}, results)
    procs = [ctx.Process(target=_rank_main, args=(rank, target, *args)) for rank in range(world)]
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
