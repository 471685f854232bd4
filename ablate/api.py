"""The Python API (for notebooks and scripts); the command line is a thin layer over these functions.

    import ablate
    df = ablate.run("experiments/quickstart.yaml", overrides=["train.max_epochs=2"], workers=2)
    runs = ablate.plan("experiments/quickstart.yaml")
    page = ablate.build_report("runs/quickstart")          # -> reports/quickstart/index.html
    df = ablate.load_results("runs/quickstart")
    print(ablate.hypotheses(["reports/heads", "reports/bottleneck"]))   # declared hypotheses, computed verdicts

Bad input raises ablate.errors.ConfigErrors (the CLI prints it and exits 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, TextIO, Union

import pandas as pd

from ablate.config import Experiment

ExperimentLike = Union[str, Path, dict, Experiment]


def load(experiment: ExperimentLike, overrides: Optional[list[str]] = None) -> Experiment:
    """An Experiment from a YAML path, a dict with the same keys as the file, or an Experiment as is."""
    from ablate.config import load_experiment

    if isinstance(experiment, Experiment):
        if overrides:
            raise TypeError("overrides apply to a file or a dict, not to a loaded Experiment")
        return experiment
    if isinstance(experiment, dict):
        import tempfile

        import yaml

        with tempfile.TemporaryDirectory() as tmp:  # one loader for both: the same validation and messages
            name = str(experiment.get("name") or "experiment")
            path = Path(tmp) / f"{name}.yaml"
            path.write_text(yaml.safe_dump(experiment, sort_keys=False))
            exp = load_experiment(path, overrides)
        exp.path = None
        return exp
    return load_experiment(experiment, overrides)


def plan(experiment: ExperimentLike, overrides: Optional[list[str]] = None,
         runs_dir: Optional[str | Path] = None) -> list:
    """The runs the experiment would do, as `ablate plan` lists them; trains nothing.

    experiment: a YAML path, a dict with the same keys as the file, or an Experiment.
    overrides: KEY=VALUE strings as on the command line (KEY=a,b makes a grid axis).
    runs_dir: where earlier runs are (as the CLI's --runs-dir; the experiment's store is runs_dir/<name>): an
        experiment with `tune:` plans each row with the setting its finished tuning runs there chose; a row still
        tuning lists its candidates and, with run_id "-", each seed waiting for the choice. Without it, nothing
        has run yet.
    Returns ablate.experiment.plan.PlannedRun objects (run_id, config, variant, point, seed, label, tuned).
    Raises ConfigErrors for an invalid experiment.
    """
    from ablate.experiment.plan import plan as _plan

    exp = load(experiment, overrides)
    if exp.tune:
        from ablate.experiment.tune import tuned_plan

        p, pending = tuned_plan(exp, Path(runs_dir) / exp.name if runs_dir is not None else None)
        return [*p.runs, *pending]
    return _plan(exp).runs


def run(experiment: ExperimentLike, overrides: Optional[list[str]] = None, workers: int = 1,
        executor: str = "local", runs_dir: str | Path = "runs", fresh: bool = False, report: bool = True,
        reports_dir: Optional[str | Path] = None, executor_options: Optional[dict[str, Any]] = None,
        plugins: tuple[str, ...] = (), out: Optional[TextIO] = None, force: bool = False) -> pd.DataFrame:
    """Train every unfinished run (skipping finished ones) and return the results table, one row per run
    (failed runs have status 'failed' and their error; check df.status).

    experiment: a YAML path, a dict with the same keys as the file, or an Experiment.
    overrides: KEY=VALUE strings as on the command line (KEY=a,b makes a grid axis).
    workers: runs in parallel on this machine; executor: "local", "ray" or "slurm".
    runs_dir: runs go to runs_dir/<name>/ (the CLI's --runs-dir). fresh: forget earlier runs first (--fresh).
    report: write the report at the end, to reports_dir (default reports/<name> for runs under ./runs, else
        runs_dir/<name>/report); a default folder holding another experiment's report (its manifest.json) is
        left alone and the report goes to reports/_<name>/ instead, unless force.
    executor_options: e.g. {"address": ...} for ray, {"max_retries": 2}. plugins: modules to import first.
    out: where progress goes (default stderr).
    """
    exp = load(experiment, overrides)
    run_code(exp, runs_dir, workers=workers, executor=executor, fresh=fresh, report=report,
             reports_dir=reports_dir, executor_options=executor_options, plugins=plugins, out=out, force=force)
    return load_results(Path(runs_dir) / exp.name)


def run_code(exp: Experiment, runs_dir: str | Path = "runs", force: bool = False, **kwargs: Any) -> int:
    """run() for the CLI: the exit code (0 all finished, 1 some failed) instead of the table."""
    from functools import partial

    from ablate.errors import ConfigError, ConfigErrors
    from ablate.experiment.runner import run_experiment

    if kwargs.get("workers", 1) < 1:
        raise ConfigErrors([ConfigError("workers", kwargs["workers"], "must be >= 1")])
    kwargs = {k: v for k, v in kwargs.items() if v is not None or k == "reports_dir"}
    return run_experiment(exp, runs_dir, reporter=partial(write_report, force=force), **kwargs)


def default_report_dir(root: Path) -> Path:
    """reports/<name> for runs under ./runs; next to the runs (<runs-dir>/<name>/report) otherwise."""
    if root.resolve().parent == (Path.cwd() / "runs").resolve():
        return Path("reports") / root.name
    return root / "report"


def report_dir(root: Path, out: Optional[str | Path], force: bool = False,
               default: Optional[Path] = None) -> tuple[Path, Optional[str]]:
    """(where the report of root goes, a note saying why it is not the default folder, or None).

    out, when given, is used as is; else default (by default default_report_dir(root)). That folder is left
    alone when its manifest.json names another experiment (a committed sample, say, and a run with other
    overrides): the report then goes beside it, to _<name>/, unless force."""
    from ablate.report.manifest import MANIFEST, experiment_hash, read_manifest
    from ablate.report.page import read_experiment

    if out is not None:
        return Path(out), None
    dest = default or default_report_dir(root)
    m = read_manifest(dest)
    if force or m is None or m.get("experiment_hash") == experiment_hash(read_experiment(root)):
        return dest, None
    beside = dest.parent / f"_{root.name}" if dest.name == root.name else dest.parent / f"_{dest.name}"
    return beside, (f"{dest}/ holds the report of another experiment (see its {MANIFEST}): left as it is; this "
                    f"report goes to {beside}/ (--force writes over {dest}/)")


def write_report(root: Path, reports_dir: Optional[str | Path], out: TextIO, force: bool = False) -> None:
    """The report at the end of `ablate run`; a report that fails never loses the runs (they are in the store)."""
    from ablate.report.page import build_report as _build

    dest, note = report_dir(root, reports_dir, force)
    if note:
        print(f"note: {note}", file=out)
    try:
        path = _build(root, dest)
    except Exception as e:  # noqa: BLE001 - the runs are safe; say so and how to retry
        print(f"report failed ({type(e).__name__}: {e}); the runs are kept: try `ablate report {root}`", file=out)
        return
    print(f"report: {path}", file=out)


def build_report(runs_dir: str | Path | list[str | Path], out: Optional[str | Path] = None, force: bool = False,
                 notes: Optional[TextIO] = None, tex_columns: Optional[list[str]] = None) -> Path:
    """Tables, plots, index.html, README.md and manifest.json for runs/<name>; returns the index.html path.

    out: the report's folder; default reports/<name>, except when that folder's manifest.json names another
    experiment: then reports/_<name>/ (said on notes, default stderr), unless force. For a report's own run copies
    (reports/<name>/runs) the default is that report, re-rendered in place. tex_columns: the columns table.tex
    keeps (headings, metric keys or 'delta'; default all). runs_dir may be a list of several experiments' runs:
    one report (out required) whose rows say which experiment they come from.
    Raises ConfigErrors when runs_dir is not an experiment's runs."""
    import sys

    from ablate.errors import ConfigError, ConfigErrors
    from ablate.experiment.locate import check_experiment_dir
    from ablate.experiment.store import writable
    from ablate.report.page import build_report as _build

    if isinstance(runs_dir, (list, tuple)):
        roots = [check_experiment_dir(d) for d in runs_dir]
        if out is None:
            raise ConfigErrors([ConfigError("--out", None, f"is required with several RUNS_DIRs ({len(roots)} "
                                            "given): the folder of the report over them")])
        return _build(roots, writable(out, "--out"), tex_columns)

    root = check_experiment_dir(runs_dir)
    own = root.name == "runs" and (root.parent / "index.html").is_file()  # a report's own run copies
    dest, note = report_dir(root, out, force, root.parent if own else Path("reports") / root.name)
    writable(dest, "--out" if out is not None else "--out (default reports/<name>)")
    if note:
        print(f"note: {note}", file=notes or sys.stderr)
    return _build(root, dest, tex_columns)


def hypotheses(report_dirs: list[str | Path], start: str | Path = ".") -> str:
    """The declared hypotheses' computed verdicts of the reports (their hypotheses.json) as one markdown table;
    links to each report are relative to `start`. Raises ConfigErrors naming a directory that is not a report."""
    from ablate.errors import ConfigError, ConfigErrors
    from ablate.report.verdicts import hypotheses_table

    bad = [d for d in report_dirs if not (Path(d) / "index.html").is_file()]
    if bad:
        raise ConfigErrors([ConfigError("REPORT_DIR", str(d), "is not a report (no index.html there; write one with "
                                        "`ablate report runs/<name>`)") for d in bad])
    return hypotheses_table(list(report_dirs), start)


def load_results(path: str | Path) -> pd.DataFrame:
    """The results table of runs/<name>, one row per run (config flattened, test/* metrics), sorted by row
    label, then seed, then run id."""
    from ablate.experiment.results import load_results as _load

    return _load(path)
