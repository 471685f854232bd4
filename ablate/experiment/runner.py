"""ablate run: plan -> store -> executor -> results.csv -> report, with progress and a summary."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional, TextIO

from ablate.config import Experiment
from ablate.errors import ConfigError, ConfigErrors
from ablate.experiment.claims import CLAIM, DISK_FULL, HOST, Claims, is_stale, read_claim
from ablate.experiment.executors import get_executor
from ablate.experiment.in_flight import InFlightStatus, fmt_time
from ablate.experiment.plan import Plan, PlannedRun
from ablate.experiment.results import rebuild_results
from ablate.experiment.store import (
    FAILED,
    FINISHED,
    Store,
    check_writable,
    inspect,
    read_result,
    write_json,
    write_yaml,
)
from ablate.experiment.tune import more_to_run, stage_plan
from ablate.experiment.worker import RunSpec
from ablate.train.relog import relog_finished, wandb_mode, wandb_sync_hint


def run_config_dict(r: PlannedRun) -> dict[str, Any]:
    return {**r.config.to_dict(), "run": {"id": r.run_id, "variant": r.variant, "label": r.label,
                                           "grid_point": r.point}}


class Progress:
    """'[k/N] label seed s: finished in 12s (test/seq_acc 0.98) | 3 finished, 1 failed | ETA 2m10s'."""

    def __init__(self, total: int, metric: str, out: TextIO):
        self.total, self.metric, self.out = total, metric, out
        self.done = self.failed = 0
        self.t0 = time.time()

    def update(self, r: PlannedRun, result: dict[str, Any]) -> None:
        if result["status"] == FINISHED:
            self.done += 1
            value = result.get("metrics", {}).get(self.metric)
            what = f"finished in {result.get('wall_s', 0):.0f}s" + (f" ({self.metric} {value:.3f})" if value is not None
                                                                     else "")
        else:
            self.failed += 1
            what = f"FAILED: {result.get('error', '?')[:200]}"
        k = self.done + self.failed
        elapsed = time.time() - self.t0
        eta = elapsed / k * (self.total - k) if k else 0
        print(f"[{k}/{self.total}] {r.label} seed {r.seed} ({r.run_id}): {what} | {self.done} finished, "
              f"{self.failed} failed | ETA {fmt_time(eta)}", file=self.out, flush=True)


def run_experiment(exp: Experiment, runs_dir: str | Path = "runs", workers: int = 1, executor: str = "local",
                   fresh: bool = False, report: bool = True, reports_dir: Optional[str | Path] = None,
                   executor_options: Optional[dict[str, Any]] = None, plugins: tuple[str, ...] = (),
                   out: Optional[TextIO] = None, wait: bool = True, stale_after: float = 120.0,
                   reporter: Optional[Callable[[Path, Optional[str | Path], TextIO], None]] = None) -> int:
    """Run every unfinished run of exp; returns the exit code (0 all finished, 1 some failed).

    report: at the end, reporter(runs root, reports_dir, out) writes the report (ablate/api.py passes it: the
    report layer sits above this one).

    Runs claimed by another live driver are left to it ("running elsewhere") and waited for at the end
    (wait=False: not waited for); a claim whose owner is dead is taken over (claims.py).
    """
    out = out or sys.stderr
    p: Plan = stage_plan(exp, None if fresh else Path(runs_dir) / exp.name)  # ConfigErrors before anything is written
    for note in p.notes:
        print(f"note: {note}", file=out)
    store = Store(Path(runs_dir) / exp.name)
    # The executor first: a missing engine or bad option is an invalid experiment, so nothing is written yet.
    ex = get_executor(executor, workers=workers, experiment=exp, **(executor_options or {}))
    usable_store(store.root)
    claims = Claims(stale_after)
    if fresh:
        for kept in reset_unclaimed(store, stale_after):
            print(f"note: --fresh keeps {kept}: a live driver is training it", file=out)
    write_yaml(store.root / "experiment.yaml", {**exp.raw, "description": exp.description})
    todo = []
    for r in p.runs:
        st, why = inspect(store.run_dir(r.run_id))
        if why:
            print(f"note: {r.label} seed {r.seed} ({r.run_id}): {why}", file=out)
        if st != FINISHED:
            todo.append(r)
    skipped = len(p.runs) - len(todo)
    to_run = {r.run_id for r in todo}
    relog_finished([(store.run_dir(r.run_id), r.config.logger, f"{r.label} seed {r.seed} ({r.run_id})")
                    for r in p.runs if r.run_id not in to_run], out)  # a logger turned on after they finished
    print(f"{exp.name}: {len(p.runs)} runs, {skipped} already finished, {len(todo)} to run "
          f"({executor}, {workers} worker{'s' * (workers != 1)}; driver {claims.owner} on {HOST} pid {os.getpid()})",
          file=out, flush=True)
    by_id = {r.run_id: r for r in todo}
    progress = Progress(len(todo), exp.report.metric, out)
    failed: list[tuple[PlannedRun, str]] = []
    elsewhere: dict[str, tuple[PlannedRun, dict[str, Any]]] = {}  # run id -> (run, the live owner's claim)
    stopped: list[str] = []  # why dispatching stopped (a full disk)

    # Parallel local runs: a periodic status line of the runs in flight instead of each run's own progress.
    in_flight = InFlightStatus(out) if executor == "local" and workers > 1 else None

    def fail(spec: RunSpec, reason: str, errno: Optional[int]) -> None:
        on_done(spec, {**spec.meta, "status": FAILED, "error": reason, "errno": errno})

    def on_start(spec: RunSpec) -> bool:
        """Claim the run and prepare its directory; False: not ours to train (done, or running elsewhere)."""
        r, d = by_id[spec.run_id], store.run_dir(spec.run_id)
        if stopped or inspect(d)[0] == FINISHED:
            return False
        try:
            ok, owner = claims.try_claim(d)
            if not ok:
                elsewhere[spec.run_id] = (r, owner or {})
                print(f"running elsewhere: {r.label} seed {r.seed} ({r.run_id}) by {describe(owner)}", file=out,
                      flush=True)
                return False
            elsewhere.pop(spec.run_id, None)
            if inspect(d)[0] == FINISHED:  # finished by its previous owner between our look and our claim
                claims.release(d)
                return False
            d, resumed = store.prepare_run(spec.run_id)
            write_yaml(d / "config.yaml", run_config_dict(r))
        except OSError as e:  # a full disk, or the directory went away: this run fails (fail() releases it)
            fail(spec, f"could not write the run's files: {type(e).__name__}: {e}", e.errno)
            return False
        if resumed:
            print(f"resuming {r.label} seed {r.seed} ({r.run_id}) from its checkpoint", file=out, flush=True)
        if in_flight is not None:
            in_flight.running[spec.run_id] = d
        return True

    def on_done(spec: RunSpec, result: dict[str, Any]) -> None:
        if in_flight is not None:
            in_flight.running.pop(spec.run_id, None)
        r, d = by_id[spec.run_id], store.run_dir(spec.run_id)
        claim = claims.held.get(d / CLAIM)
        result = {**result, "variant": r.variant, "label": r.label, "grid_point": r.point, "seed": r.seed,
                  **({"claim": claim} if claim else {})}
        try:
            write_json(d / "result.json", result)
        except OSError as e:
            result = {**result, "status": FAILED, "error": f"could not write result.json: {type(e).__name__}: {e}",
                      "errno": e.errno}
        if result.get("errno") in DISK_FULL and not stopped:
            stopped.append(f"{d}: {result.get('error', '')}")
        claims.release(d)
        if result["status"] == FAILED:
            failed.append((r, result.get("error", "")))
        progress.update(r, result)

    def dispatch(runs: list[PlannedRun]) -> None:
        ex.run([RunSpec(r.run_id, exp.name, r.variant, r.label, r.config, plugins) for r in runs], store.root,
               on_done, on_start)

    finished_elsewhere = 0
    try:
        if in_flight is not None:
            in_flight.start()
        dispatch(todo)
        while elsewhere and wait and not stopped:  # runs another driver holds: wait, or take over a dead one's
            mine, finished_elsewhere = poll_elsewhere(store, elsewhere, failed, claims.stale_after, out,
                                                      finished_elsewhere)
            dispatch(mine)
    except KeyboardInterrupt:
        again = "the same command again without --fresh" if fresh else "the same command again"
        print(f"\ninterrupted: {progress.done} runs finished and kept; run {again} to resume", file=out)
        raise
    finally:
        if in_flight is not None:
            in_flight.stop()
        claims.close()
        try:
            rebuild_results(store.root)
        except OSError as e:
            print(f"could not rebuild {store.root / 'results.csv'} ({e}); `ablate report` rebuilds it", file=out)
    if not stopped and not elsewhere and more_to_run(exp, store.root, p):
        # tune: the tuning runs chose the rows' settings; now every seed runs
        return max(run_experiment(exp, runs_dir, workers, executor, False, report, reports_dir, executor_options,
                                  plugins, out, wait, stale_after, reporter), 1 if failed else 0)
    print(f"{exp.name}: {progress.done} finished, {len(failed)} failed, {skipped} skipped (already finished)"
          + (f", {finished_elsewhere} finished by another driver" if finished_elsewhere else "")
          + f" -> {store.root / 'results.csv'}", file=out)
    for r, err in failed:
        print(f"  failed: {r.label} seed {r.seed} ({r.run_id}): {err[:300]}", file=out)
    if stopped:
        print(f"stopped dispatching: the disk is full ({stopped[0][:300]}); finished runs are kept; free space "
              "and run the same command again", file=out)
    for r, owner in elsewhere.values():
        print(f"  still running elsewhere: {r.label} seed {r.seed} ({r.run_id}) by {describe(owner)}", file=out)
    if any(wandb_mode(r.config.logger.wandb.mode) == "offline" for r in p.runs) and wandb_sync_hint(store.root):
        print(wandb_sync_hint(store.root), file=out)
    if report and reporter is not None and not stopped:
        reporter(store.root, reports_dir, out)
    return 1 if failed or stopped else 0


def describe(claim: Optional[dict[str, Any]]) -> str:
    if not claim:
        return "another driver (its claim is being written)"
    return f"driver {claim.get('owner', '?')} on {claim.get('host', '?')} pid {claim.get('pid', '?')}"


def poll_elsewhere(store: Store, elsewhere: dict[str, tuple[PlannedRun, dict[str, Any]]],
                   failed: list[tuple[PlannedRun, str]], stale_after: float, out: TextIO,
                   finished: int) -> tuple[list[PlannedRun], int]:
    """Wait until a run held elsewhere ends (counted) or its claim is released or stale (returned: ours to run)."""
    print(f"waiting for {len(elsewhere)} run(s) running elsewhere", file=out, flush=True)
    while True:
        mine = []
        for rid, (r, _owner) in list(elsewhere.items()):
            d = store.run_dir(rid)
            st = inspect(d)[0]
            if st in (FINISHED, FAILED):
                del elsewhere[rid]
                finished += 1
                if st == FAILED:
                    failed.append((r, (read_result(d) or {}).get("error", "failed elsewhere")))
                print(f"{st} elsewhere: {r.label} seed {r.seed} ({rid})", file=out, flush=True)
                continue
            claim = read_claim(d)
            if claim is None or is_stale(claim, stale_after, d / CLAIM):
                mine.append(r)
        if mine or not elsewhere:
            return mine, finished
        time.sleep(min(2.0, stale_after / 4))


def usable_store(root: Path) -> None:
    """The runs directory must exist (or be creatable) and be writable: otherwise an invalid experiment."""
    try:
        check_writable(root)
    except OSError as e:
        where = e.filename or root
        raise ConfigErrors([ConfigError("--runs-dir", str(where), f"cannot be created or written: "
                                        f"{e.strerror or e}")]) from None


def reset_unclaimed(store: Store, stale_after: float) -> list[str]:
    """--fresh: forget every run of this experiment, except those a live driver is training now."""
    kept = []
    for d in sorted(store.root.iterdir()) if store.root.is_dir() else []:
        claim = read_claim(d) if d.is_dir() else None
        if claim is not None and not is_stale(claim, stale_after, d / CLAIM):
            kept.append(d.name)
            continue
        shutil.rmtree(d) if d.is_dir() and not d.is_symlink() else d.unlink()
    return kept
