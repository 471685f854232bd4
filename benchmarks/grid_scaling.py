"""`ablate run` with --workers 2 vs --workers 1, and `ablate plan` start-up vs importing pytorch_lightning.

  grid: eight small runs (seeds 0-7 of one config; a temp experiment yaml), each `ablate run EXP
        --workers N --fresh --no-report --runs-dir <fresh temp dir>` in a subprocess, wall time.
        speed-up = wall(workers 1) / wall(workers 2), i.e. ratio = wall(2) / wall(1).       goal <= 1/1.4
        Also each run's own fit_time_s (from its result.json), workers 2 / workers 1: the local
        executor gives a run cpu_count // workers torch threads, so this shows what the thread
        count does to one run (e.g. 2 threads on a busy 2-core machine).                 no goal
        And like for like: --workers 2 vs --workers 1 run with its CPU affinity set to one CPU, so
        the executor gives it 1 thread per run too (as each of the 2 workers gets); wall ratio. no goal
  plan: wall time of `ablate plan EXP` vs `python -c "import pytorch_lightning"`.           goal <= 0.5x
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from common import Row, cli, finish, interleave, median, spread


def experiment(quick: bool) -> dict:
    return {
        "name": "bench_grid",
        "task": {"name": "reverse", "n_train": 64 if quick else 600, "n_val": 32 if quick else 64,
                 "n_test": 32 if quick else 64, "min_len": 4, "max_len": 10},
        "model": {"arch": "transformer", "d_model": 32, "n_layers": 1, "n_heads": 2},
        "train": {"max_epochs": 1 if quick else 4, "batch_size": 32},
        "seeds": list(range(2 if quick else 8)),
    }


def wall(cmd: list[str], cwd: Path, one_cpu: bool = False) -> float:
    """Wall seconds of cmd; one_cpu: on one CPU only (the executor then counts 1 CPU: 1 thread per run)."""
    env = {**os.environ, "WANDB_MODE": "disabled"}
    pin = (lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})) if one_cpu else None
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                   preexec_fn=pin)
    return time.perf_counter() - t0


def run_fit_times(runs: Path) -> list[float]:
    """fit_time_s of each finished run (trainer.fit alone: no imports, no worker start-up)."""
    return [json.loads(p.read_text())["fit_time_s"] for p in runs.glob("*/*/result.json")]


def ablate(*args: str) -> list[str]:
    return [sys.executable, "-m", "ablate", *args]


def main() -> list[Row]:
    args = cli(__doc__.splitlines()[0])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        exp = tmp / "bench_grid.yaml"
        exp.write_text(yaml.safe_dump(experiment(args.quick), sort_keys=False))

        def grid(workers: int, one_cpu: bool = False):
            def run() -> dict[str, float]:
                with tempfile.TemporaryDirectory(dir=tmp) as runs:
                    s = wall(ablate("run", str(exp), "--workers", str(workers), "--fresh", "--no-report",
                                    "--runs-dir", runs), tmp, one_cpu)
                    return {"wall": s, "run_fit": median(run_fit_times(Path(runs)))}

            return run

        g = interleave({"workers 2": grid(2), "workers 1": grid(1), "workers 1 on 1 CPU": grid(1, one_cpu=True)},
                       repeats=1 if args.quick else 3)
        p = interleave({"ablate plan": lambda: wall(ablate("plan", str(exp), "--runs-dir", str(tmp / "r")), tmp),
                        "import pytorch_lightning": lambda: wall([sys.executable, "-c", "import pytorch_lightning"],
                                                                 tmp)},
                       repeats=2 if args.quick else 7, warmup=1)
    n = len(experiment(args.quick)["seeds"])
    col = lambda side, key: [x[key] for x in g[side]]
    for key, what in (("wall", "whole grid, wall s"), ("run_fit", "median fit_time_s of one run")):
        print(f"{what}: " + "  ".join(f"{side} {spread(col(side, key))}" for side in g))
    print("start-up wall s: " + "  ".join(f"{k} {spread(v)}" for k, v in p.items()))
    rows = [Row.of("grid_scaling", f"{n} runs: wall --workers 2 / --workers 1", "s", col("workers 2", "wall"),
                   col("workers 1", "wall"), round(1 / 1.4, 3), True),
            Row.of("grid_scaling", "one run's fit time, workers 2 / workers 1", "s", col("workers 2", "run_fit"),
                   col("workers 1", "run_fit"), None, True),
            Row.of("grid_scaling", f"{n} runs: wall --workers 2 / --workers 1 on 1 CPU", "s", col("workers 2", "wall"),
                   col("workers 1 on 1 CPU", "wall"), None, True),
            Row.of("grid_scaling", "`ablate plan` / `import pytorch_lightning`", "s", p["ablate plan"],
                   p["import pytorch_lightning"], 0.5, True)]
    return finish(args, "ablate CLI (time ratio, lower is better)", rows)


if __name__ == "__main__":
    main()
