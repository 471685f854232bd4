"""The Python API (for notebooks and scripts); the command line is a thin layer over these functions.

    import ablate
    df = ablate.run("experiments/quickstart.yaml", overrides=["train.max_epochs=2"], workers=2)
    runs = ablate.plan("experiments/quickstart.yaml")
    page = ablate.build_report("runs/quickstart")          # -> reports/quickstart/index.html
    df = ablate.load_results("runs/quickstart")

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


def plan(experiment: ExperimentLike, overrides: Optional[list[str]] = None) -> list:
    """The runs the experiment would do (ablate.experiment.plan.PlannedRun: run_id, config, variant, point,
    seed, label); trains nothing. Raises ConfigErrors for an invalid experiment."""
    from ablate.experiment.plan import plan as _plan

    return _plan(load(experiment, overrides)).runs


def run(experiment: ExperimentLike, overrides: Optional[list[str]] = None, workers: int = 1,
        executor: str = "local", runs_dir: str | Path = "runs", fresh: bool = False, report: bool = True,
        reports_dir: Optional[str | Path] = None, executor_options: Optional[dict[str, Any]] = None,
        plugins: tuple[str, ...] = (), out: Optional[TextIO] = None) -> pd.DataFrame:
    """Train every unfinished run (skipping finished ones) and return the results table, one row per run
    (failed runs have status 'failed' and their error; check df.status)."""
    exp = load(experiment, overrides)
    run_code(exp, runs_dir, workers=workers, executor=executor, fresh=fresh, report=report,
             reports_dir=reports_dir, executor_options=executor_options, plugins=plugins, out=out)
    return load_results(Path(runs_dir) / exp.name)


def run_code(exp: Experiment, runs_dir: str | Path = "runs", **kwargs: Any) -> int:
    """run() for the CLI: the exit code (0 all finished, 1 some failed) instead of the table."""
    from ablate.errors import ConfigError, ConfigErrors
    from ablate.experiment.runner import run_experiment

    if kwargs.get("workers", 1) < 1:
        raise ConfigErrors([ConfigError("workers", kwargs["workers"], "must be >= 1")])
    kwargs = {k: v for k, v in kwargs.items() if v is not None or k == "reports_dir"}
    return run_experiment(exp, runs_dir, **kwargs)


def build_report(runs_dir: str | Path, out: Optional[str | Path] = None) -> Path:
    """Tables, plots, index.html and README.md for runs/<name>; returns the index.html path.
    out defaults to reports/<name>; for a report's own copies, reports/<name>/runs, to that report (re-rendered
    in place). Raises ConfigErrors when runs_dir is not an experiment's runs."""
    from ablate.experiment.locate import check_experiment_dir
    from ablate.report.page import build_report as _build

    root = check_experiment_dir(runs_dir)
    if out is None:
        own = root.name == "runs" and (root.parent / "index.html").is_file()
        out = root.parent if own else Path("reports") / root.name
    return _build(root, Path(out))


def load_results(path: str | Path) -> pd.DataFrame:
    """The results table of runs/<name>, one row per run (config flattened, test/* metrics)."""
    from ablate.experiment.results import load_results as _load

    return _load(path)


