"""Mutation testing of the code whose mistakes change numbers (`make mutate`; docs/testing.md).

mutmut does the work, configured in pyproject.toml's [tool.mutmut]: it makes the mutants, records which tests call
which function, and runs each mutant against only those tests. This script adds what mutmut lacks: a seeded sample
of a fixed number of mutants per module (the same sample each time the code is the same), a wall-clock cap (an hour
by default: at the cap mutmut is stopped and the summary covers the mutants it finished), a choice of modules
(`--only`), and a summary: the kill rate overall and per module, and each survivor's diff.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"
# mutmut's statuses; a timeout is a kill (the mutant made the tests hang or crawl).
KILLED = {"killed", "timeout", "caught by type check", "segfault"}
NOT_RUN = "not checked"  # mutmut's status of a mutant it has not tested (a run cut off at the time limit)


def generate() -> dict[str, list[str]]:
    """Make every mutant (mutmut's own first step of `mutmut run`) and return their names by module."""
    from mutmut.__main__ import copy_also_copy_files, copy_src_dir, create_mutants, setup_source_paths

    copy_src_dir()
    copy_also_copy_files()
    setup_source_paths()
    create_mutants(max_children=1)
    return {str(path.relative_to(MUTANTS))[: -len(".meta")]: sorted(json.loads(path.read_text())["exit_code_by_key"])
            for path in sorted(MUTANTS.rglob("*.py.meta"))}


def module_name(given: str) -> str:
    """'tasks/vocab.py', 'ablate/tasks/vocab.py' -> mutmut's name of the module, 'ablate/tasks/vocab.py'."""
    given = given.strip().removeprefix("./")
    return given if given.startswith("ablate/") else f"ablate/{given}"


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
    if status in KILLED:
        return "killed"
    return {"survived": "survived", "no tests": "no tests", NOT_RUN: "not run"}.get(status, "other")


def _rate(killed: int, tested: int) -> str:
    return f"{killed / tested:>9.0%}" if tested else f"{'-':>9}"


def summarise(result: dict[str, dict[str, str]], totals: dict[str, int]) -> list[str]:
    """Summary of one run. Kill rate = killed (timeouts included) / tested, where tested = sampled less the mutants
    a time limit left unrun; a mutant no test reaches counts against."""
    cols = ("killed", "survived", "no tests", "other", "not run")
    head = " ".join(f"{c:>8}" for c in cols)
    lines = [f"{'module':<34} {'mutants':>7} {'sampled':>7} {head} {'kill rate':>9}"]
    overall: Counter = Counter()
    for module, by_name in result.items():
        c = Counter(_column(s) for s in by_name.values())
        n = len(by_name)
        overall.update(c)
        overall["n"] += n
        lines.append(f"{module.removeprefix('ablate/'):<34} {totals[module]:>7} {n:>7} "
                     f"{' '.join(f'{c[k]:>8}' for k in cols)} {_rate(c['killed'], n - c['not run'])}")
    n = overall["n"]
    lines.append(f"{'all':<34} {sum(totals.values()):>7} {n:>7} {' '.join(f'{overall[k]:>8}' for k in cols)} "
                 f"{_rate(overall['killed'], n - overall['not run'])}")
    return lines


def run_capped(cmd: list[str], env: dict[str, str], limit_s: float) -> tuple[int, bool]:
    """Run mutmut for at most limit_s seconds. mutmut records each mutant's result as it finishes, so at the limit
    its whole process group (the forkserver and the mutants in flight) is ended: SIGTERM, then SIGKILL 10 s later.
    (A Ctrl-C does not do: the forkserver's children take it, and mutmut starts a new forkserver and goes on.)
    Returns (exit code, whether it was cut off)."""
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)  # its own group, so that one signal ends it all
    try:
        return proc.wait(timeout=max(limit_s, 1.0)), False
    except subprocess.TimeoutExpired:
        print("\ntime limit reached: stopping mutmut", file=sys.stderr, flush=True)
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        return 0, True


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-module", type=int, default=10,
                    help="mutants drawn per module (all of them where a module has fewer)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2, help="mutants tested at once")
    ap.add_argument("--only", action="append", default=[], metavar="MODULE",
                    help="test only this module's sample (e.g. tasks/textmetrics.py; repeatable); default: every "
                         "module of [tool.mutmut] only_mutate")
    ap.add_argument("--time-limit", type=float, default=3600, metavar="SECONDS",
                    help="stop mutmut after this much wall time and report the mutants tested so far (default 3600)")
    ap.add_argument("--keep", action="store_true",
                    help="reuse mutants/ and mutmut's test records from the last run and re-test only the sampled "
                         "mutants not killed yet (by default mutants/ is rebuilt so nothing stale counts)")
    args = ap.parse_args()

    os.chdir(ROOT)  # mutmut reads pyproject.toml and writes mutants/ in the working directory
    if not args.keep:
        shutil.rmtree(MUTANTS, ignore_errors=True)
    started = time.monotonic()
    names = generate()
    if args.only:
        wanted = [module_name(m) for m in args.only]
        unknown = [m for m in wanted if not names.get(m)]
        if unknown:
            print(f"--only {', '.join(unknown)}: not a mutated module; valid: "
                  f"{', '.join(m.removeprefix('ablate/') for m, ms in names.items() if ms)}", file=sys.stderr)
            return 2
        names = {m: names[m] for m in wanted}
    sample = draw(names, args.per_module, args.seed)
    chosen = [m for ms in sample.values() for m in ms]
    if args.keep:  # a kill stands, as in mutmut's own reruns (the mutants of an edited function were reset above)
        chosen = [m for by_name in statuses(sample).values() for m, s in by_name.items() if s not in KILLED]
    print(f"{sum(map(len, names.values()))} mutants in {len(names)} modules; sampled "
          f"{sum(map(len, sample.values()))} (at most {args.per_module} per module, seed {args.seed}); testing "
          f"{len(chosen)}{' (the others were killed before)' if args.keep else ''}", flush=True)
    if not chosen:
        print("\n".join(summarise(statuses(sample), {m: len(ms) for m, ms in names.items() if m in sample})))
        return 0

    # Test subprocesses (the CLI, worker processes) must import the mutated copy too; mutmut puts it first on
    # sys.path only in its own process.
    env = dict(os.environ, PYTHONPATH=str(MUTANTS), OMP_NUM_THREADS="1", WANDB_MODE="disabled")
    mutmut = Path(sys.executable).with_name("mutmut")
    left_s = args.time_limit - (time.monotonic() - started)
    code, cut = run_capped([str(mutmut), "run", "--max-children", str(args.jobs), *chosen], env, left_s)
    if code:
        print(f"mutmut run failed (exit {code})", file=sys.stderr)
        return code

    result = statuses(sample)
    print()
    print("\n".join(summarise(result, {m: len(ms) for m, ms in names.items() if m in sample})))
    if cut:
        print(f"\nCUT OFF at the time limit ({args.time_limit:.0f} s): 'not run' mutants were not tested; the kill "
              "rates are over the tested ones only.")
    left = [(m, s) for by_name in result.values() for m, s in by_name.items() if s not in KILLED | {NOT_RUN}]
    print(f"\n{len(left)} tested and not killed ({time.monotonic() - started:.0f} s in all):")
    for name, status in left:
        print(f"\n## {status}: {name}")
        sys.stdout.flush()
        subprocess.run([str(mutmut), "show", name], env=env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
