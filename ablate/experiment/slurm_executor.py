"""The slurm executor: the runs of a grid as one SLURM job array, through submitit.

    ablate run exp.yaml --executor slurm slurm.partition=gpu slurm.gpus_per_node=1

The experiment's `slurm:` section sets each job's request (partition,
time_min, cpus_per_task, gpus_per_node, mem_gb) and how many run at once
(array_parallelism). Each job runs one run in its directory of the store,
which must be on a file system the nodes share (as it is on any SLURM
cluster); the driver waits for the jobs, then records each result. submitit
keeps each job's script, stdout and stderr under runs/<name>/slurm/<job id>/.

Jobs are submitit checkpointables (ResumableRun): on preemption or near the
time limit submitit requeues them and the run resumes from its last.ckpt
(`max_retries` requeues after a timeout). The driver holds each run's claim.

slurm.cluster: auto (SLURM where its commands exist, else this machine) |
slurm | local (submitit's local executor: the same path without a cluster,
array_parallelism jobs at once, for tests and laptops).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Optional

import submitit

from ablate.config import Experiment, SlurmConfig
from ablate.errors import ConfigError, ConfigErrors
from ablate.experiment.store import FAILED
from ablate.experiment.worker import RunSpec, execute

OnDone = Callable[[RunSpec, dict[str, Any]], None]
CLUSTERS = ("auto", "slurm", "local")


class ResumableRun(submitit.helpers.Checkpointable):
    """One run as a job, in submitit's checkpointing protocol: on preemption or timeout submitit calls
    checkpoint() (inherited: the same call again) and requeues the job, which then resumes from the run's
    checkpoints/last.ckpt in its directory on the shared file system."""

    def __call__(self, spec: RunSpec, run_dir: str, threads: int) -> dict[str, Any]:
        return execute(spec, run_dir, threads)


class SlurmExecutor:
    def __init__(self, workers: int = 1, experiment: Optional[Experiment] = None, out: Any = None,
                 max_retries: int = 3, **_: Any):
        self.cfg: SlurmConfig = experiment.slurm if experiment is not None else SlurmConfig()
        self.name = experiment.name if experiment is not None else "ablate"
        self.out = out or sys.stderr
        cluster = getattr(self.cfg, "cluster", "auto")
        if cluster not in CLUSTERS:
            raise ConfigErrors([ConfigError("slurm.cluster", cluster, f"must be one of {', '.join(CLUSTERS)}")])
        self.cluster = cluster
        self.max_retries = max_retries  # requeues after a timeout (preemptions requeue without limit)

    def check(self, specs: list[RunSpec]) -> None:
        """Runs that ask for more GPUs than a job gets would fail on the node: say so before submitting."""
        errors = []
        for spec in specs:
            t = spec.config.train
            if t.accelerator in ("gpu", "cuda"):
                n = len(t.devices) if isinstance(t.devices, (list, tuple)) else t.devices
                if not isinstance(n, int) or n < 1 or n > self.cfg.gpus_per_node:
                    errors.append(ConfigError("slurm.gpus_per_node", self.cfg.gpus_per_node,
                                              f"run {spec.run_id} ({spec.label}) trains on train.devices={t.devices}"
                                              " GPUs: give a number of GPUs <= slurm.gpus_per_node"))
        if errors:
            raise ConfigErrors(errors[:1])

    def executor(self, root: Path) -> submitit.AutoExecutor:
        c = self.cfg
        try:
            ex = submitit.AutoExecutor(folder=str(root / "slurm" / "%j"),
                                       cluster=None if self.cluster == "auto" else self.cluster,
                                       slurm_max_num_timeout=self.max_retries)
        except RuntimeError as e:  # slurm.cluster=slurm where SLURM's commands are missing
            raise ConfigErrors([ConfigError("slurm.cluster", self.cluster, f"{e} (run from a SLURM login node, "
                                            "or use slurm.cluster=local to run the jobs on this machine)")]) from None
        params: dict[str, Any] = {"name": f"ablate-{self.name}", "timeout_min": c.time_min, "nodes": 1,
                                  "tasks_per_node": 1, "cpus_per_task": c.cpus_per_task, "mem_gb": c.mem_gb,
                                  "gpus_per_node": c.gpus_per_node}
        if ex.cluster == "slurm":
            params["slurm_array_parallelism"] = c.array_parallelism
            if c.partition:
                params["slurm_partition"] = c.partition
        ex.update_parameters(**params)
        return ex

    def run(self, specs: Iterable[RunSpec], root: Path, on_done: OnDone, on_start: Callable = lambda s: True) -> None:
        specs = list(specs)
        if not specs:
            return
        self.check(specs)
        root = Path(root).resolve()  # jobs may start in another directory
        ex = self.executor(root)
        on_slurm = ex.cluster == "slurm"
        # SLURM takes the whole array and runs array_parallelism of it at once; locally this loop does that.
        limit = len(specs) if on_slurm else self.cfg.array_parallelism
        todo, running = list(specs), []
        print(f"submitit ({ex.cluster}): logs in {root / 'slurm'}", file=self.out, flush=True)

        def submit(batch: list[RunSpec]) -> None:
            batch = [spec for spec in batch if on_start(spec)]  # claimed by this driver, or not ours to run
            if not batch:
                return
            jobs = ex.map_array(ResumableRun(), batch, [str(root / s.run_id) for s in batch],
                                [self.cfg.cpus_per_task] * len(batch))
            running.extend(zip(jobs, batch, strict=True))

        try:
            while todo and not running:  # the first batch (skipping the runs that are not ours)
                submit(todo[:limit])
                del todo[:limit]
            while running:
                finished = [(job, spec) for job, spec in running if job.done()]
                for job, spec in finished:
                    running.remove((job, spec))
                    on_done(spec, self.result(job, spec))
                if todo and len(running) < limit:
                    n = limit - len(running)
                    submit(todo[:n])
                    del todo[:n]
                if not finished:
                    time.sleep(5.0 if on_slurm else 0.5)
        except BaseException:
            for job, _spec in running:  # Ctrl-C: cancel what is queued or running; finished runs stay
                job.cancel(check=False)
            raise
        finally:
            if not on_slurm:  # submitit's local controller leaves an empty folder named after the pattern
                with contextlib.suppress(OSError):
                    (root / "slurm" / "%j").rmdir()

    @staticmethod
    def result(job: Any, spec: RunSpec) -> dict[str, Any]:
        try:
            return job.result()
        except Exception as e:  # the job itself failed: killed, timed out, out of memory, node failure
            text = " ".join(str(e).split())
            return {**spec.meta, "status": FAILED,
                    "error": f"slurm job {job.job_id} failed: {type(e).__name__}: {text[-1500:]}"}
