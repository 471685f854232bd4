"""Expand an experiment into runs: variants x grid points x seeds, validated and de-duplicated.

A run's id is a hash of its fully resolved config, so key order, YAML style and
toggles that do not apply never make two ids for one model.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field, replace
from typing import Any

from ablate.config import Experiment, RunConfig, apply, build_run
from ablate.errors import ConfigError, ConfigErrors


@dataclass
class PlannedRun:
    run_id: str
    config: RunConfig
    variant: str  # "" when the experiment has no variants
    point: dict[str, Any]  # grid coordinates, dotted key -> value
    seed: int
    aliases: list[str] = field(default_factory=list)  # other (variant, point) labels that resolved to this run
    tuned: dict[str, Any] = field(default_factory=dict)  # the `tune:` values this run tries (experiment.tune)

    @property
    def label(self) -> str:
        """The row this run belongs to in a report: variant and grid point, without the seed."""
        parts = [self.variant] if self.variant else []
        parts += [f"{k}={_short(v)}" for k, v in self.point.items()]
        return ", ".join(parts) or "base"


@dataclass
class Plan:
    experiment: Experiment
    runs: list[PlannedRun]
    notes: list[str]


def _short(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ",".join(f"{k}={_short(x)}" for k, x in v.items()) + "}"
    return str(v)


def run_id(cfg: RunConfig) -> str:
    blob = json.dumps(cfg.identity(), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))] or [{}]


def plan(exp: Experiment) -> Plan:
    """Every run of the experiment, validated; raises ConfigErrors listing every problem found."""
    where = str(exp.path) if exp.path else exp.name
    variants = exp.variants or {"": {}}
    errors: list[ConfigError] = []
    notes: dict[str, None] = {}
    runs: dict[str, PlannedRun] = {}
    toggles: dict[str, tuple[Any, set[str], bool]] = {}  # model key -> (a value, archs, applied anywhere)
    for vname, v_over in variants.items():
        for point in grid_points(exp.grid):
            tree = apply(apply(exp.base, v_over), point)
            ctx = ", ".join(([f"variant {vname!r}"] if vname else []) + [f"{k}={_short(x)}" for k, x in point.items()])
            for seed in exp.seeds:
                try:
                    cfg, run_notes = build_run(tree, seed, f"{where} ({ctx})" if ctx else where)
                except ConfigErrors as e:
                    errors += e.errors
                    break  # the same problem would repeat for every seed
                for n in run_notes:
                    notes[f"{ctx}: {n}" if ctx else n] = None
                _track_toggles(toggles, tree.get("model") or {}, cfg)
                if cfg.model.match_params:
                    cfg = match_params(cfg, where)
                rid = run_id(cfg)
                if rid in runs:
                    runs[rid].aliases.append(PlannedRun(rid, cfg, vname, point, seed).label)
                    continue
                runs[rid] = PlannedRun(rid, cfg, vname, point, seed)
    for key, (value, archs, applied) in toggles.items():
        if not applied:  # ignored by every run: an error, never silently dropped
            errors.append(ConfigError(f"model.{key}", value, f"does not apply to arch {', '.join(sorted(archs))} "
                                      f"(see `ablate list` for each arch's toggles)", where))
    if errors:
        raise ConfigErrors(collapse(errors))
    dupes = [r for r in runs.values() if r.aliases]
    for r in dupes:
        notes[f"{r.label} (seed {r.seed}) is the same run as {', '.join(sorted(set(r.aliases)))}: trained once"] = None
    return Plan(exp, list(runs.values()), list(notes))


def _track_toggles(seen: dict[str, tuple[Any, set[str], bool]], given: dict[str, Any], cfg: RunConfig) -> None:
    for key, value in given.items():
        if key in ("arch", "match_params") or value is None:
            continue
        old_value, archs, applied = seen.get(key, (value, set(), False))
        archs.add(cfg.model.arch)
        seen[key] = (old_value, archs, applied or getattr(cfg.model, key, None) is not None)


def collapse(errors: list[ConfigError]) -> list[ConfigError]:
    """One error per distinct problem, naming the first run it occurs in and how many more."""
    groups: dict[tuple[str, str, str], list[ConfigError]] = {}
    for e in errors:
        groups.setdefault((e.key, repr(e.value), e.expected), []).append(e)
    out = []
    for same in groups.values():
        first = same[0]
        where = first.where if len(same) == 1 else f"{first.where} and {len(same) - 1} more grid points/variants"
        out.append(ConfigError(first.key, first.value, first.expected, where))
    return out


def match_params(cfg: RunConfig, where: str) -> RunConfig:
    """The run with its width chosen so its parameter count is within 5% of model.match_params.

    d_model moves in steps that keep heads whole; where the arch has d_ff, that is
    tuned after, for the finer grain small models need.
    """
    from ablate.train.sizing import count_params, task_info  # torch: only when asked for

    target = cfg.model.match_params
    info = task_info(cfg.task)
    step = cfg.model.n_heads or 1
    if cfg.model.pos_encoding == "rotary" and cfg.model.n_heads:
        step *= 2
    model, n = _closest(lambda k: _with_width(cfg, k * step), lambda m: count_params(m, info), target, 4096 // step)
    if cfg.model.d_ff is not None:
        model, n = _closest(lambda k: replace(model, d_ff=k), lambda m: count_params(m, info), target, 65536)
    if abs(n - target) > 0.05 * target:
        raise ConfigErrors([ConfigError("model.match_params", target,
                                        f"arch {cfg.model.arch!r} gets no closer than {n} parameters "
                                        f"(d_model={model.d_model}); change n_layers or the target", where)])
    return replace(cfg, model=model)


def _closest(make, count, target: int, hi: int):
    """Binary search over k in 1..hi (count grows with k) for the model whose count is closest to target."""
    best = None
    lo = 1
    while lo <= hi:
        mid = (lo + hi) // 2
        model = make(mid)
        n = count(model)
        if best is None or abs(n - target) < abs(best[1] - target):
            best = (model, n)
        if n < target:
            lo = mid + 1
        else:
            hi = mid - 1
    return best


def _with_width(cfg: RunConfig, d_model: int):
    m = replace(cfg.model, d_model=d_model)
    if m.n_heads:
        m = replace(m, d_head=d_model // m.n_heads)
    if cfg.model.d_ff and cfg.model.arch != "mlp":
        m = replace(m, d_ff=4 * d_model)
    return m
