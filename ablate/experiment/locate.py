"""Which directory is an experiment's run store: runs/<name>, not its parent and not one run inside it.

`ablate report`, `ablate.load_results` and `ablate.build_report` take runs/<name>; given anything else they
raise a ConfigError that lists the experiments found there, so a wrong path never makes an empty report.
"""

from __future__ import annotations

from pathlib import Path

from ablate.errors import ConfigError, ConfigErrors


def is_run_dir(d: Path) -> bool:
    return (d / "config.yaml").is_file() and ((d / "result.json").is_file() or (d / "checkpoints").is_dir())


def is_experiment_dir(d: Path) -> bool:
    if (d / "experiment.yaml").is_file() or (d / "results.csv").is_file():
        return True
    return d.is_dir() and any(is_run_dir(c) for c in d.iterdir() if c.is_dir())


def experiments_under(d: Path, depth: int = 2) -> list[Path]:
    """Experiment directories at or below d (at most depth levels down), sorted."""
    if not d.is_dir():
        return []
    if is_experiment_dir(d):
        return [d]
    if depth == 0:
        return []
    return sorted(p for c in sorted(d.iterdir()) if c.is_dir() for p in experiments_under(c, depth - 1))


def check_experiment_dir(path: str | Path, key: str = "RUNS_DIR", need_runs: bool = False) -> Path:
    """path if it is an experiment's run store (runs/<name>); else ConfigErrors saying what it is instead."""
    d = Path(path)
    if is_run_dir(d):
        raise ConfigErrors([ConfigError(key, str(d), f"is one run's directory, not an experiment's: give its "
                                        f"experiment, {d.parent}")])
    if d.is_dir() and is_experiment_dir(d):
        if need_runs and not any(is_run_dir(c) for c in d.iterdir() if c.is_dir()):
            raise ConfigErrors([ConfigError(key, str(d), "has no runs yet: run the experiment first "
                                            f"(ablate run experiments/{d.name}.yaml)")])
        return d
    found = experiments_under(d)
    if found:
        listing = ", ".join(str(p) for p in found[:20]) + (" ..." if len(found) > 20 else "")
        raise ConfigErrors([ConfigError(key, str(d), f"holds {len(found)} experiment{'s' * (len(found) != 1)}, "
                                        f"give one of them: {listing}")])
    what = "is empty" if d.is_dir() else "does not exist"
    raise ConfigErrors([ConfigError(key, str(d), f"{what}: expected an experiment's runs, runs/<name> "
                                    "(made by `ablate run experiments/<name>.yaml`)")])
