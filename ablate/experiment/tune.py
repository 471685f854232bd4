"""`tune:`: choose a setting (e.g. the learning rate) per table row before running every seed with it.

    tune:
      train.lr: [3.0e-4, 1.0e-3, 3.0e-3]
      metric: val/seq_acc          # optional; default: each run's train.monitor
      seeds: 1                     # optional; candidates run with the first `seeds` of the experiment's seeds

For each row (variant x grid point) every candidate runs with the first seed
(or first k seeds, averaged); the best by the validation metric wins (ties:
fewer steps_to_target, then the smaller value); then the other seeds run with
it, and the tuning runs of the winner are the row's runs for those seeds (the
same config, so the same run id: reused, not retrained). The choice is recomputed from the run store whenever it
is needed (by `ablate run`, `ablate plan` and the report), so a rerun after a kill
resumes like any run and makes the same choice.
"""

from __future__ import annotations

import csv
import math
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

from ablate.config import Experiment, tune_keys
from ablate.experiment.plan import Plan, PlannedRun, plan
from ablate.experiment.store import FINISHED, read_result

PENDING = "pending tune"


# ------------------------------------------------------------------ the section
def stored_tune_keys(raw: dict[str, Any]) -> dict[str, list[Any]]:
    """tune_keys of a stored experiment.yaml (the report's view: a malformed section tunes nothing)."""
    return tune_keys(raw.get("tune") if isinstance(raw.get("tune"), dict) else None)


def tune_seeds(section: Optional[dict[str, Any]], seeds: list[int]) -> list[int]:
    """The seeds the candidates run with: the first `tune.seeds` (default 1) of the experiment's."""
    return list(seeds[: int((section or {}).get("seeds") or 1)])


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


def _steps(x: Any) -> float:
    return math.inf if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def aggregate(runs: list[tuple[dict[str, Any], float, Optional[float], str]]) -> list[tuple[str, dict[str, Any],
                                                                                           float, float, str]]:
    """Per-run (tuned values, score, steps_to_target, metric) of finished tuning runs -> one entry per candidate
    value: (its key, values, mean score, mean steps_to_target (inf if a seed never reached), metric)."""
    groups: dict[str, list[tuple]] = {}
    for run in runs:
        groups.setdefault(repr(sorted(run[0].items())), []).append(run)
    out = []
    for key, rs in groups.items():
        scores = [r[1] for r in rs]
        out.append((key, rs[0][0], sum(scores) / len(scores), sum(_steps(r[2]) for r in rs) / len(rs), rs[0][3]))
    return out


def best_candidate(candidates: list[tuple[str, dict[str, Any], float, Optional[float], str]]) -> Optional[str]:
    """candidates: (id, tuned values, score, steps_to_target, metric); the winning id (None if none has a
    score): best score, then fewer steps_to_target (never reached = last), then the smaller value."""
    scored = [c for c in candidates if not math.isnan(c[2])]
    if not scored:
        return None

    def key(c: tuple) -> tuple:
        _, values, score, steps, metric = c
        sign = 1 if mode_of(metric) == "min" else -1
        return (sign * score, _steps(steps), tuple(_order(values[k]) for k in sorted(values)))

    return min(scored, key=key)[0]


# ------------------------------------------------------------------ planning
def _full_plan(exp: Experiment) -> tuple[Plan, dict[str, list[PlannedRun]], list[int]]:
    """Every (candidate x seed) run, validated, each with its row's point and its `tuned` values; the
    tuning runs (candidates x tuning seeds) by row label; the tuning seeds."""
    keys = tune_keys(exp.tune)
    wide = replace(exp, grid={**exp.grid, **keys}, tune={})
    p = plan(wide)  # raises ConfigErrors for any candidate at any seed, before anything runs
    for r in p.runs:
        r.tuned = {k: r.point[k] for k in keys}
        r.point = {k: v for k, v in r.point.items() if k not in keys}
    first = tune_seeds(exp.tune, exp.seeds)
    rows: dict[str, list[PlannedRun]] = {}
    for r in p.runs:
        rows.setdefault(r.label, [])
        if r.seed in first:
            rows[r.label].append(r)
    return p, rows, first


def choices(exp: Experiment, root: str | Path, rows: dict[str, list[PlannedRun]]) -> dict[str, Optional[dict]]:
    """Row label -> the winning candidate's tuned values; None when none of its tuning runs finished (a label
    missing from the result: a tuning run is still to run)."""
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
            scored.append((r.tuned, val_score(root / r.run_id, res, m), res.get("steps_to_target"), m))
        entries = aggregate(scored)
        win = best_candidate(entries)
        out[label] = next(e[1] for e in entries if e[0] == win) if win else None
    return out


def tuned_plan(exp: Experiment, root: Optional[str | Path]) -> tuple[Plan, list[PlannedRun]]:
    """(the runs that can run now: every tuning run, plus the final runs of rows whose choice is made;
    the final runs still waiting for their row's choice, one per row and seed, `tuned` empty).
    root: the experiment's run store (None: as if empty, e.g. for --fresh)."""
    full, rows, first = _full_plan(exp)
    chosen = choices(exp, root, rows) if root is not None else {}
    tuned_of = {label: values for label, values in chosen.items() if values is not None}
    runs = [r for r in full.runs if r.seed in first]
    runs += [r for r in full.runs if r.seed not in first and tuned_of.get(r.label) == r.tuned]
    pending, seen = [], set()
    for r in full.runs:
        if r.seed not in first and r.label not in tuned_of and (r.label, r.seed) not in seen:
            seen.add((r.label, r.seed))
            pending.append(replace(r, run_id="-", tuned={}, aliases=[]))
    notes = list(full.notes)
    notes += [f"{label}: no tuning run finished, so its other seeds do not run" for label, v in chosen.items()
              if v is None]
    if exp.tune and full.runs:
        metric = exp.tune.get("metric") or f"train.monitor ({full.runs[0].config.train.monitor})"
        notes.append(f"tune: {', '.join(tune_keys(exp.tune))} chosen per row by {metric} with seed "
                     f"{', '.join(map(str, first))}")
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
    keys = stored_tune_keys(raw)
    if not keys or df.empty or any(k not in df for k in keys):
        return df, df, []
    import pandas as pd
    root = Path(root)
    seeds = raw.get("seeds", [0])
    first = tune_seeds(raw["tune"], seeds if isinstance(seeds, list) else [seeds])
    metric = raw["tune"].get("metric")
    keep, loser = [], []
    for _, rows in df.groupby("label", sort=False):
        cands = rows[rows["seed"].isin(first)]
        scored = []
        for _, r in cands[cands["status"] == FINISHED].iterrows():
            m = metric or r.get("train.monitor") or "val/loss"
            res = read_result(root / str(r["run_id"])) or {}
            scored.append(({k: r[k] for k in keys}, val_score(root / str(r["run_id"]), res, m),
                           r.get("steps_to_target"), m))
        entries = aggregate(scored)
        win = best_candidate(entries)
        if win is None:
            keep += list(rows.index)
            continue
        values = pd.Series(next(e[1] for e in entries if e[0] == win))
        at = (rows[list(keys)].astype(str) == values.astype(str)).all(axis=1)
        keep += list(rows.index[at])
        loser += list(rows.index[~at])
    final = df.loc[keep]
    every = df.copy()
    every.loc[loser, "label"] = [f"{every.at[i, 'label']} [tuning: " + ", ".join(f"{k}={every.at[i, k]}"
                                                                               for k in keys) + "]" for i in loser]
    candidates = "; ".join(f"{k} from {', '.join(map(str, v))}" for k, v in keys.items())
    notes = [f"Tuned per row: {candidates}, by the best {metric or 'train.monitor'} on validation with seed "
             f"{', '.join(map(str, first))} (ties: fewer steps to target, then the smaller value); the tuning runs "
             "that lost are listed with the runs, not averaged."]
    return final, every, notes


def chosen_columns(summary: Any, final: Any, raw: dict[str, Any]) -> None:
    """Make the table show each row's chosen value, even when every row chose the same one."""
    keys = stored_tune_keys(raw)
    for k in keys:
        if k in summary.keys or k not in final:
            continue
        first = final.drop_duplicates("label").set_index("label")[k]
        summary.keys.append(k)
        summary.frame[k] = summary.frame["label"].map(first)
