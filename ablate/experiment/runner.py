"""ablate run: plan -> store -> executor -> results.csv -> report, with progress and a summary."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Optional, TextIO

from ablate.config import Experiment
from ablate.experiment.executors import get_executor
from ablate.experiment.plan import Plan, PlannedRun
from ablate.experiment.store import FAILED, FINISHED, Store, write_json, write_yaml
from ablate.experiment.tune import more_to_run, stage_plan
from ablate.experiment.worker import RunSpec


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


def fmt_time(s: float) -> str:
    s = int(s)
    return f"{s // 3600}h{s // 60 % 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def run_experiment(exp: Experiment, runs_dir: str | Path = "runs", workers: int = 1, executor: str = "local",
                   fresh: bool = False, report: bool = True, reports_dir: Optional[str | Path] = None,
                   executor_options: Optional[dict[str, Any]] = None, plugins: tuple[str, ...] = (),
                   out: Optional[TextIO] = None) -> int:
    """Run every unfinished run of exp; returns the exit code (0 all finished, 1 some failed)."""
    out = out or sys.stderr
    p: Plan = stage_plan(exp, None if fresh else Path(runs_dir) / exp.name)  # ConfigErrors before anything is written
    for note in p.notes:
        print(f"note: {note}", file=out)
    store = Store(Path(runs_dir) / exp.name)
    # The executor first: a missing engine or bad option is an invalid experiment, so nothing is written yet.
    ex = get_executor(executor, workers=workers, experiment=exp, store=store, **(executor_options or {}))
    if fresh:
        store.reset()
    store.root.mkdir(parents=True, exist_ok=True)
    write_yaml(store.root / "experiment.yaml", {**exp.raw, "description": exp.description})
    todo = [r for r in p.runs if store.status(r.run_id) != FINISHED]
    skipped = len(p.runs) - len(todo)
    print(f"{exp.name}: {len(p.runs)} runs, {skipped} already finished, {len(todo)} to run "
          f"({executor}, {workers} worker{'s' * (workers != 1)})", file=out, flush=True)
    by_id = {r.run_id: r for r in todo}
    progress = Progress(len(todo), exp.report.metric, out)
    failed: list[tuple[PlannedRun, str]] = []

    def on_start(spec: RunSpec) -> None:
        d = store.prepare_run(spec.run_id)
        write_yaml(d / "config.yaml", run_config_dict(by_id[spec.run_id]))

    def on_done(spec: RunSpec, result: dict[str, Any]) -> None:
        r = by_id[spec.run_id]
        result = {**result, "variant": r.variant, "label": r.label, "grid_point": r.point, "seed": r.seed}
        write_json(store.run_dir(spec.run_id) / "result.json", result)
        if result["status"] == FAILED:
            failed.append((r, result.get("error", "")))
        progress.update(r, result)

    specs = [RunSpec(r.run_id, exp.name, r.variant, r.label, r.config, plugins) for r in todo]
    try:
        ex.run(specs, store.root, on_done, on_start)
    except KeyboardInterrupt:
        again = "the same command again without --fresh" if fresh else "the same command again"
        print(f"\ninterrupted: {progress.done} runs finished and kept; run {again} to resume", file=out)
        raise
    finally:
        store.rebuild_results()
    if more_to_run(exp, store.root, p):  # tune: the tuning runs chose the rows' settings; now every seed runs
        return max(run_experiment(exp, runs_dir, workers, executor, False, report, reports_dir, executor_options,
                                  plugins, out), 1 if failed else 0)
    print(f"{exp.name}: {progress.done} finished, {len(failed)} failed, {skipped} skipped (already finished) "
          f"-> {store.root / 'results.csv'}", file=out)
    for r, err in failed:
        print(f"  failed: {r.label} seed {r.seed} ({r.run_id}): {err[:300]}", file=out)
    if report:
        write_report(store.root, reports_dir, out)
    return 1 if failed else 0


def default_report_dir(root: Path) -> Path:
    """reports/<name> for runs under ./runs; next to the runs (<runs-dir>/<name>/report) otherwise."""
    if root.resolve().parent == (Path.cwd() / "runs").resolve():
        return Path("reports") / root.name
    return root / "report"


def write_report(root: Path, reports_dir: Optional[str | Path], out: TextIO) -> None:
    """The report at the end of a run; a report that fails never loses the runs (they are in the store)."""
    from ablate.report import build_report

    dest = Path(reports_dir) if reports_dir else default_report_dir(root)
    try:
        path = build_report(root, dest)
    except Exception as e:  # noqa: BLE001 - the runs are safe; say so and how to retry
        print(f"report failed ({type(e).__name__}: {e}); the runs are kept: try `ablate report {root}`", file=out)
        return
    print(f"report: {path}", file=out)
