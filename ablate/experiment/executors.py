"""Executors run a list of RunSpecs and hand each result back to the driver as it finishes.

The driver (runner.py) owns the store: it claims a run and writes its
config.yaml in on_start (which returns False for a run not to start: finished
or claimed elsewhere meanwhile, or the store failed) and result.json after it
ends, whichever executor ran it.
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib
import multiprocessing as mp
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Optional

from ablate.errors import ConfigError, ConfigErrors
from ablate.experiment.plan import train_id
from ablate.experiment.worker import RunSpec, execute, pool_worker
from ablate.registry import Registry

EXECUTORS = Registry("executor")
OnDone = Callable[[RunSpec, dict[str, Any]], None]


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def threads_per_run(workers: int) -> int:
    """The cores divided among the workers; OMP_NUM_THREADS, when set, caps it (on a busy or shared machine
    extra threads only spin)."""
    threads = max(1, cpu_count() // workers)
    cap = os.environ.get("OMP_NUM_THREADS", "")
    return min(threads, int(cap)) if cap.isdigit() and int(cap) > 0 else threads


@EXECUTORS.register("local", help="this machine: --workers N processes, threads split between them")
class LocalExecutor:
    def __init__(self, workers: int = 1, **_: Any):
        self.workers = max(1, workers)
        self.threads = threads_per_run(self.workers)

    def run(self, specs: Iterable[RunSpec], root: Path, on_done: OnDone, on_start: Callable = lambda s: True) -> None:
        specs = list(specs)
        if self.workers == 1:  # in this process: no start-up cost per run
            for spec in specs:
                if on_start(spec):
                    on_done(spec, execute(spec, root / spec.run_id, self.threads))
            return
        broken = self._pool(specs, self.workers, root, on_done, on_start)
        if len(broken) > 1:  # a dead worker breaks the whole pool: retry one by one to find the culprit
            broken = [b for spec in broken for b in self._pool([spec], 1, root, on_done, on_start)]
        for spec in broken:
            on_done(spec, {**spec.meta, "status": "failed", "error": "worker process died (killed, out of memory "
                           "or crashed); see the run's directory"})

    def _pool(self, specs: list[RunSpec], workers: int, root: Path, on_done: OnDone,
              on_start: Callable) -> list[RunSpec]:
        """Run specs in a process pool; returns those lost to a broken pool (a worker process died)."""
        ctx = mp.get_context("spawn")  # fresh interpreters: no forked torch thread pools
        pool = cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=pool_worker, initargs=(self.threads,))
        broken = []
        try:
            # At most `workers` in flight: a run is claimed (on_start) only when a worker is free to train it,
            # so a second driver on the same experiment gets the runs this one has not started.
            futures: dict[cf.Future, RunSpec] = {}
            todo = list(specs)
            trains = {spec.run_id: train_id(spec.config) for spec in specs}
            while todo or futures:
                while todo and len(futures) < workers and not broken:
                    spec = _next_startable(todo, futures.values(), trains)
                    if spec is None:  # each one left trains what a run in flight trains: wait for it
                        break
                    if on_start(spec):
                        try:
                            futures[pool.submit(execute, spec, root / spec.run_id, self.threads)] = spec
                        except cf.process.BrokenProcessPool:  # a worker died since the last wait: claimed, not run
                            broken.append(spec)
                if not futures and not broken:  # every run left was not ours to start
                    break
                if not broken:
                    done, _ = cf.wait(futures, return_when=cf.FIRST_COMPLETED)
                    for fut in done:
                        spec = futures.pop(fut)
                        try:
                            on_done(spec, fut.result())
                        except cf.process.BrokenProcessPool:
                            broken.append(spec)
                if broken:  # a dead worker breaks the pool: the runs in flight are lost, the rest get a new pool
                    pool.shutdown(wait=True)  # each future now holds its result or the broken-pool error
                    for fut, spec in futures.items():
                        try:
                            on_done(spec, fut.result())  # finished before the pool broke: keep it
                        except cf.process.BrokenProcessPool:
                            broken.append(spec)
                    futures.clear()
                    return broken + (self._pool(todo, workers, root, on_done, on_start) if todo else [])
        except BaseException:
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.terminate()  # Ctrl-C: stop the runs in flight now; they stay unfinished
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return broken


def _next_startable(todo: list[RunSpec], in_flight: Iterable[RunSpec], trains: dict[str, str]) -> Optional[RunSpec]:
    """Pop the first run that trains something no run in flight trains (trains: run id -> train_id). A run that
    differs from one in flight only in eval (beam 4 beside greedy) tests that run's checkpoint once it is
    finished (train/reuse.py); started beside it, it would train an identical copy."""
    busy = {trains[s.run_id] for s in in_flight}
    for i, spec in enumerate(todo):
        if trains[spec.run_id] not in busy:
            return todo.pop(i)
    return None


def _lazy(name: str, module: str, cls: str, package: str, extra: str) -> Callable[..., Any]:
    """An executor whose module (and its engine, ray or submitit) is imported only when it is chosen."""

    def make(**options: Any) -> Any:
        try:
            return getattr(importlib.import_module(module), cls)(**options)
        except ImportError as e:
            if (e.name or "").split(".")[0] != package:
                raise
            raise ConfigErrors([ConfigError("--executor", name, f"needs {package}, which is not installed: "
                                            f"pip install 'ablate[{extra}]'")]) from None

    return make


EXECUTORS.register("ray", help="a Ray cluster (--address, $RAY_ADDRESS) or a local one; one task per run")(
    _lazy("ray", "ablate.experiment.ray_executor", "RayExecutor", "ray", "ray"))
EXECUTORS.register("slurm", help="SLURM job array through submitit (experiment's slurm: section)")(
    _lazy("slurm", "ablate.experiment.slurm_executor", "SlurmExecutor", "submitit", "slurm"))


def get_executor(name: str, **options: Any):
    return EXECUTORS.get(name)(**options)
