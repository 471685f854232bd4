"""Mutation testing of the code whose mistakes change numbers (`make mutate`; docs/testing.md).

mutmut does the work, configured in pyproject.toml's [tool.mutmut]: it makes the mutants, records which tests call
which function, and runs each mutant against only those tests. This script adds what mutmut lacks: a seeded sample
of a fixed number of mutants per module (the same sample each time the code is the same), so that a run fits in an
hour on 2 cores, and a summary: the kill rate overall and per module, and each survivor's diff.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"
# mutmut's statuses; a timeout is a kill (the mutant made the tests hang or crawl).
KILLED = {"killed", "timeout", "caught by type check", "segfault"}


def generate() -> dict[str, list[str]]:
    """Make every mutant (mutmut's own first step of `mutmut run`) and return their names by module."""
    from mutmut.__main__ import copy_also_copy_files, copy_src_dir, create_mutants, setup_source_paths

    copy_src_dir()
    copy_also_copy_files()
    setup_source_paths()
    create_mutants(max_children=1)
    return {str(path.relative_to(MUTANTS))[: -len(".meta")]: sorted(json.loads(path.read_text())["exit_code_by_key"])
            for path in sorted(MUTANTS.rglob("*.py.meta"))}


def draw(names: dict[str, list[str]], per_module: int, seed: int) -> dict[str, list[str]]:
    """At most `per_module` mutants of each module; each module has its own seeded generator, so an edit to one
    module leaves the other modules' samples as they were."""
    return {module: sorted(random.Random(f"{seed}:{module}").sample(ms, min(per_module, len(ms))))
            for module, ms in names.items() if ms}


def statuses(sample: dict[str, list[str]]) -> dict[str, dict[str, str]]:
    from mutmut.stats import status_by_exit_code

    out = {}
    for module, ms in sample.items():
        codes = json.loads((MUTANTS / f"{module}.meta").read_text())["exit_code_by_key"]
        out[module] = {m: status_by_exit_code[codes.get(m)] for m in ms}
    return out


def _column(status: str) -> str:
    return "killed" if status in KILLED else status if status in ("survived", "no tests") else "other"


def summarise(result: dict[str, dict[str, str]], totals: dict[str, int]) -> list[str]:
    """Summary of one run. Kill rate = killed (timeouts included) / sampled; a mutant no test reaches counts against."""
    lines = [f"{'module':<34} {'mutants':>7} {'sampled':>7} {'killed':>6} {'survived':>8} {'no tests':>8} "
             f"{'other':>5} {'kill rate':>9}"]
    overall: Counter = Counter()
    for module, by_name in result.items():
        c = Counter(_column(s) for s in by_name.values())
        n = len(by_name)
        overall.update(c)
        overall["n"] += n
        lines.append(f"{module:<34} {totals[module]:>7} {n:>7} {c['killed']:>6} {c['survived']:>8} {c['no tests']:>8} "
                     f"{c['other']:>5} {c['killed'] / n:>9.0%}")
    n = overall["n"]
    lines.append(f"{'all':<34} {sum(totals.values()):>7} {n:>7} {overall['killed']:>6} {overall['survived']:>8} "
                 f"{overall['no tests']:>8} {overall['other']:>5} {overall['killed'] / max(n, 1):>9.0%}")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-module", type=int, default=15,
                    help="mutants drawn per module (all of them where a module has fewer)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2, help="mutants tested at once")
    ap.add_argument("--keep", action="store_true",
                    help="reuse mutants/ from the last run (faster; by default it is rebuilt so nothing stale counts)")
    args = ap.parse_args()

    os.chdir(ROOT)  # mutmut reads pyproject.toml and writes mutants/ in the working directory
    if not args.keep:
        shutil.rmtree(MUTANTS, ignore_errors=True)
    started = time.monotonic()
    names = generate()
    sample = draw(names, args.per_module, args.seed)
    chosen = [m for ms in sample.values() for m in ms]
    print(f"{sum(map(len, names.values()))} mutants in {len(names)} modules; testing {len(chosen)} "
          f"(at most {args.per_module} per module, seed {args.seed})", flush=True)

    # Test subprocesses (the CLI, worker processes) must import the mutated copy too; mutmut puts it first on
    # sys.path only in its own process.
    env = dict(os.environ, PYTHONPATH=str(MUTANTS), OMP_NUM_THREADS="1", WANDB_MODE="disabled")
    mutmut = Path(sys.executable).with_name("mutmut")
    run = subprocess.run([str(mutmut), "run", "--max-children", str(args.jobs), *chosen], env=env)
    if run.returncode:
        print(f"mutmut run failed (exit {run.returncode})", file=sys.stderr)
        return run.returncode

    result = statuses(sample)
    print()
    print("\n".join(summarise(result, {m: len(ms) for m, ms in names.items() if m in sample})))
    left = [(m, s) for by_name in result.values() for m, s in by_name.items() if s not in KILLED]
    print(f"\n{len(left)} not killed ({time.monotonic() - started:.0f} s in all):")
    for name, status in left:
        print(f"\n## {status}: {name}")
        sys.stdout.flush()
        subprocess.run([str(mutmut), "show", name], env=env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
