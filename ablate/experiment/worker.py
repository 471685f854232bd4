"""One run, as any executor runs it: train in a directory, return the result (never raise for a run's failure)."""

from __future__ import annotations

import importlib
import os
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ablate.config import RunConfig
from ablate.experiment.store import FAILED, FINISHED


@dataclass
class RunSpec:
    """What a worker needs: picklable, so it travels to processes, Ray tasks and SLURM jobs."""

    run_id: str
    experiment: str
    variant: str
    label: str
    config: RunConfig
    plugins: tuple[str, ...] = ()  # modules to import first, so their registrations exist in any process

    @property
    def meta(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "experiment": self.experiment, "variant": self.variant, "label": self.label,
                "plugins": list(self.plugins)}


def set_threads(n: int | None) -> None:
    if n:
        import torch

        torch.set_num_threads(n)


def pool_worker(n: int | None) -> None:
    """Initializer of a local worker process: its threads, and exit with the driver (a killed driver's
    claims are taken over by the next one, which must not find this process still writing the run)."""
    set_threads(n)
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def load_plugins(modules: tuple[str, ...] | list[str]) -> None:
    for name in modules:
        importlib.import_module(name)


def execute(spec: RunSpec, run_dir: str | Path, threads: int | None = None) -> dict[str, Any]:
    """Train spec in run_dir; the result records status finished or failed (with the reason)."""
    set_threads(threads)
    load_plugins(spec.plugins)
    t0 = time.time()
    base = {**spec.meta, "started": t0}
    try:
        from ablate.train.fit import fit

        out = fit(spec.config, run_dir, spec.meta)
        return {**base, **out, "status": FINISHED, "wall_s": time.time() - t0}
    except KeyboardInterrupt:
        raise
    except SystemExit as e:  # Lightning turns Ctrl-C into sys.exit(1): still an interrupt, not a failed run
        if e.code not in (None, 0, 1):
            raise  # another exit, e.g. submitit's after checkpointing a preempted job: its code requeues it
        raise KeyboardInterrupt from None
    except Exception as e:  # a failing run must never take the grid down
        (Path(run_dir) / "traceback.txt").write_text(traceback.format_exc())
        reason = f"{type(e).__name__}: {e}".strip()
        errno = {"errno": e.errno} if isinstance(e, OSError) else {}  # ENOSPC: the driver stops dispatching
        return {**base, "status": FAILED, "error": reason[:2000], "wall_s": time.time() - t0, **errno}
