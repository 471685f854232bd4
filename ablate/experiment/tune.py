"""`tune:`: choose a setting (e.g. the learning rate) per table row before running every seed with it.

    tune:
      train.lr: [3.0e-4, 1.0e-3, 3.0e-3]
      metric: val/seq_acc          # optional; default: each run's train.monitor

For each row (variant x grid point) every candidate runs with the first seed;
the best by the validation metric wins (ties: fewer steps_to_target, then the
smaller value); then the other seeds run with it, and the first seed's tuning
run is the row's run for that seed (the same config, so the same run id: it is
reused, not retrained). The choice is recomputed from the run store whenever it
is needed (by `ablate run`, `ablate plan` and the report), so a rerun after a kill
resumes like any run and makes the same choice.
"""

from __future__ import annotations

import csv
import math
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

from ablate.config import CHOICES, Experiment, flatten
from ablate.errors import ConfigError
from ablate.experiment.plan import Plan, PlannedRun, plan
from ablate.experiment.store import FINISHED, read_result

SECTIONS = ("task.", "model.", "train.")
PENDING = "pending tune"


# ------------------------------------------------------------------ the section
def tune_keys(section: Optional[dict[str, Any]]) -> dict[str, list[Any]]:
    """{dotted key: candidate values} of a tune section (nested or dotted keys alike)."""
    return {k: v for k, v in flatten({k: v for k, v in (section or {}).items() if k != "metric"}).items()}


def check_tune(section: Any, grid: dict[str, Any], where: Optional[str]) -> list[ConfigError]:
    """Errors of a `tune:` section, each naming the key, the value and what is valid."""
    if section is None:
        return []
    if not isinstance(section, dict):
        return [ConfigError("tune", section, "must map dotted keys to lists of candidate values, e.g. "
                            "tune: {train.lr: [3.0e-4, 1.0e-3]}", where)]
    errors = []
    metric = section.get("metric")
    if metric is not None and metric not in CHOICES["train.monitor"]:
        errors.append(ConfigError("tune.metric", metric, f"must be a validation metric: one of "
                                  f"{', '.join(CHOICES['train.monitor'])} (default: train.monitor)", where))
    keys = tune_keys(section)
    if not keys:
        errors.append(ConfigError("tune", section, "names no key to tune, e.g. tune: {train.lr: [3.0e-4, 1.0e-3]}",
                                  where))
    for key, values in keys.items():
        if not key.startswith(SECTIONS):
            errors.append(ConfigError(f"tune.{key}", values, "must be a task., model. or train. key", where))
        elif not isinstance(values, list) or not values:
            errors.append(ConfigError(f"tune.{key}", values, "must be a non-empty list of candidate values", where))
        elif len({repr(v) for v in values}) != len(values):
            errors.append(ConfigError(f"tune.{key}", values, "must not repeat a candidate", where))
        if key in grid:
            errors.append(ConfigError(f"tune.{key}", values, "is also a grid axis: tune it or grid it, not both",
                                      where))
    return errors


# ------------------------------------------------------------------ choosing
def mode_of(metric: str) -> str:
    return "min" if metric.split("/")[-1].endswith("loss") else "max"


def val_score(run_dir: Path, result: dict[str, Any], metric: str) -> float:
    """The run's best validation value of metric: recorded in result.json for train.monitor, else read from
    metrics.csv; NaN when the run never validated it."""
    best = (result.get("best_val") or {}).get(metric)
    if best is not None:
        return float(best)
    values = []
    path = run_dir / "metrics.csv"
    if path.is_file():
        with open(path) as f:
            values = [float(r[metric]) for r in csv.DictReader(f) if r.get(metric) not in (None, "")]
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return math.nan
    return min(values) if mode_of(metric) == "min" else max(values)


def _order(value: Any) -> tuple:
    """Sort key for candidate values: numbers by size, anything else by its text, None first."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return (1, str(value)) if value is not None else (-1, "")
    return (0, float(value))


def best_candidate(candidates: list[tuple[str, dict[str, Any], float, Optional[float], str]]) -> Optional[str]:
    """candidates: (run_id, tuned values, score, steps_to_target, metric); the winning run id (None if none
    has a score): best score, then fewer steps_to_target (never reached = last), then the smaller value."""
    scored = [c for c in candidates if not math.isnan(c[2])]
    if not scored:
        return None

    def key(c: tuple) -> tuple:
        _, values, score, steps, metric = c
        sign = 1 if mode_of(metric) == "min" else -1
        steps = math.inf if steps is None or (isinstance(steps, float) and math.isnan(steps)) else steps
        return (sign * score, steps, tuple(_order(values[k]) for k in sorted(values)))

    return min(scored, key=key)[0]


# ------------------------------------------------------------------ planning
def _full_plan(exp: Experiment) -> tuple[Plan, dict[str, list[PlannedRun]], int]:
    """Every (candidate x seed) run, validated, each with its row's point and its `tuned` values; the
    candidates (first seed) by row label; the first seed."""
    keys = tune_keys(exp.tune)
    wide = replace(exp, grid={**exp.grid, **keys}, tune={})
    p = plan(wide)  # raises ConfigErrors for any candidate at any seed, before anything runs
    for r in p.runs:
        r.tuned = {k: r.point[k] for k in keys}
        r.point = {k: v for k, v in r.point.items() if k not in keys}
    first = exp.seeds[0]
    rows: dict[str, list[PlannedRun]] = {}
    for r in p.runs:
        rows.setdefault(r.label, [])
        if r.seed == first:
            rows[r.label].append(r)
    return p, rows, first


def choices(exp: Experiment, root: str | Path, rows: dict[str, list[PlannedRun]]) -> dict[str, Optional[str]]:
    """Row label -> the winning candidate's run id; None while a candidate has not ended or none finished
    (a label missing from the result means: still waiting)."""
    root = Path(root)
    out: dict[str, Optional[str]] = {}
    metric = (exp.tune or {}).get("metric")
    for label, cands in rows.items():
        results = {r.run_id: read_result(root / r.run_id) for r in cands}
        if any(res is None for res in results.values()):
            continue  # a candidate still to run
        scored = []
        for r in cands:
            res = results[r.run_id] or {}
            if res.get("status") != FINISHED:
                continue
            m = metric or r.config.train.monitor
            scored.append((r.run_id, r.tuned, val_score(root / r.run_id, res, m), res.get("steps_to_target"), m))
        out[label] = best_candidate(scored)
    return out


def tuned_plan(exp: Experiment, root: Optional[str | Path]) -> tuple[Plan, list[PlannedRun]]:
    """(the runs that can run now: every tuning run, plus the final runs of rows whose choice is made;
    the final runs still waiting for their row's choice, one per row and seed, `tuned` empty).
    root: the experiment's run store (None: as if empty, e.g. for --fresh)."""
    full, rows, first = _full_plan(exp)
    chosen = choices(exp, root, rows) if root is not None else {}
    winners = {rid: label for label, rid in chosen.items() if rid}
    tuned_of = {label: next(r.tuned for r in rows[label] if r.run_id == rid) for rid, label in winners.items()}
    runs = [r for r in full.runs if r.seed == first]
    runs += [r for r in full.runs if r.seed != first and tuned_of.get(r.label) == r.tuned]
    pending, seen = [], set()
    for r in full.runs:
        if r.seed != first and r.label not in tuned_of and (r.label, r.seed) not in seen:
            seen.add((r.label, r.seed))
            pending.append(replace(r, run_id="-", tuned={}, aliases=[]))
    notes = list(full.notes)
    notes += [f"{label}: no tuning run finished, so its other seeds do not run" for label, rid in chosen.items()
              if rid is None]
    if exp.tune and full.runs:
        metric = exp.tune.get("metric") or f"train.monitor ({full.runs[0].config.train.monitor})"
        notes.append(f"tune: {', '.join(tune_keys(exp.tune))} chosen per row by {metric} with seed {first}")
    return Plan(exp, runs, notes), pending


def stage_plan(exp: Experiment, root: Optional[str | Path]) -> Plan:
    """What `ablate run` runs now: plan(exp) without tune:, else tuned_plan's runnable runs."""
    return tuned_plan(exp, root)[0] if exp.tune else plan(exp)


def more_to_run(exp: Experiment, root: str | Path, done: Plan) -> bool:
    """After a stage: did the tuning runs just finished make final runs plannable that `done` lacked?"""
    if not exp.tune:
        return False
    ids = {r.run_id for r in done.runs}
    return any(r.run_id not in ids for r in tuned_plan(exp, root)[0].runs)


# ------------------------------------------------------------------ reporting
def report_runs(df: Any, raw: dict[str, Any], root: str | Path) -> tuple[Any, Any, list[str]]:
    """(the runs the table averages: each row's runs at its chosen setting; every run, losing tuning runs
    labelled as such; notes). Without tune: (df, df, [])."""
    keys = tune_keys(raw.get("tune") if isinstance(raw.get("tune"), dict) else None)
    if not keys or df.empty or any(k not in df for k in keys):
        return df, df, []
    root = Path(root)
    seeds = raw.get("seeds", [0])
    first = seeds[0] if isinstance(seeds, list) and seeds else seeds
    metric = raw["tune"].get("metric")
    keep, loser = [], []
    chosen_text = []
    for label, rows in df.groupby("label", sort=False):
        cands = rows[rows["seed"] == first]
        scored = []
        for _, r in cands[cands["status"] == FINISHED].iterrows():
            m = metric or r.get("train.monitor") or "val/loss"
            res = read_result(root / str(r["run_id"])) or {}
            scored.append((r["run_id"], {k: r[k] for k in keys}, val_score(root / str(r["run_id"]), res, m),
                           r.get("steps_to_target"), m))
        win = best_candidate(scored)
        if win is None:
            keep += list(rows.index)
            continue
        values = rows.loc[rows["run_id"] == win, list(keys)].iloc[0]
        at = (rows[list(keys)].astype(str) == values.astype(str)).all(axis=1)
        keep += list(rows.index[at])
        loser += list(rows.index[~at])
        chosen_text.append(f"{label}: " + ", ".join(f"{k}={values[k]}" for k in keys))
    final = df.loc[keep]
    every = df.copy()
    every.loc[loser, "label"] = [f"{every.at[i, 'label']} [tuning: " + ", ".join(f"{k}={every.at[i, k]}"
                                                                               for k in keys) + "]" for i in loser]
    notes = [f"{', '.join(keys)} chosen per row from {', '.join(map(str, next(iter(keys.values()))))} "
             f"by the best {metric or 'train.monitor'} on validation with seed {first} (ties: fewer steps to "
             f"target, then the smaller value); the tuning runs that lost are listed with the runs, not averaged."]
    return final, every, notes


def chosen_columns(summary: Any, final: Any, raw: dict[str, Any]) -> None:
    """Make the table show each row's chosen value, even when every row chose the same one."""
    keys = tune_keys(raw.get("tune") if isinstance(raw.get("tune"), dict) else None)
    for k in keys:
        if k in summary.keys or k not in final:
            continue
        first = final.drop_duplicates("label").set_index("label")[k]
        summary.keys.append(k)
        summary.frame[k] = summary.frame["label"].map(first)
