"""Expand an experiment into runs: variants x grid points x seeds, validated and de-duplicated.

A run's id is a hash of its fully resolved config, so key order, YAML style and
toggles that do not apply never make two ids for one model.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import Any

from ablate.config import Experiment, RunConfig, apply, build_run, train_id  # noqa: F401 - train_id: read here too
from ablate.config import config_hash as _hash
from ablate.errors import ConfigError, ConfigErrors
from ablate.experiment.hypotheses import check_hypotheses


@dataclass
class PlannedRun:
    run_id: str
    config: RunConfig
    variant: str  # "" when the experiment has no variants
    point: dict[str, Any]  # grid coordinates, dotted key -> value
    seed: int
    aliases: list[str] = field(default_factory=list)  # other (variant, point) labels that resolved to this run
    tuned: dict[str, Any] = field(default_factory=dict)  # the `tune:` values this run tries (experiment.tune)

    def __repr__(self) -> str:  # one line: the config alone prints thousands of characters
        return (f"PlannedRun(run_id={self.run_id!r}, label={self.label!r}, seed={self.seed}, "
                f"arch={self.config.model.arch!r})")

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
    return _hash(cfg.identity())


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))] or [{}]


def plan(exp: Experiment) -> Plan:
    """Every run of the experiment, validated; raises ConfigErrors listing every problem found."""
    where = str(exp.path) if exp.path else exp.name
    variants = exp.variants or {"": {}}
    errors: list[ConfigError] = []
    notes: dict[str, list[str]] = {note: [] for note in exp.notes}  # note -> the grid points/variants it arose in
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
                    notes.setdefault(n, [])
                    if ctx not in notes[n]:
                        notes[n].append(ctx)
                _track_toggles(toggles, _model_keys({**(v_over or {}), **point}), cfg)
                if cfg.model.match_params and cfg.model.match_flops:
                    errors.append(ConfigError("model.match_flops", cfg.model.match_flops, "cannot be set with "
                                              "model.match_params: size rows to one budget, parameters or FLOPs",
                                              where))
                    break
                if cfg.model.match_params:
                    cfg = match_params(cfg, where)
                elif cfg.model.match_flops:
                    cfg = match_flops(cfg, where)
                rid = run_id(cfg)
                if rid in runs:
                    runs[rid].aliases.append(PlannedRun(rid, cfg, vname, point, seed).label)
                    continue
                runs[rid] = PlannedRun(rid, cfg, vname, point, seed)
    for key, (value, archs, applied) in toggles.items():
        if not applied:  # ignored by every run: an error, never silently dropped
            errors.append(ConfigError(f"model.{key}", value, f"does not apply to arch {', '.join(sorted(archs))} "
                                      f"(see `ablate list` for each arch's toggles)", where))
    if not errors:
        errors += check_report(exp, list(runs.values()), where)
        swept = any(k in (exp.raw.get("grid") or {}) for k in exp.overrides)  # the command line changed the rows
        errors += check_hypotheses(exp.raw.get("hypotheses"), exp.raw, where,
                                   names=None if swept else row_names(exp.raw))
    if errors:
        from ablate.overrides import blame

        raise ConfigErrors(collapse(blame(errors, exp.overrides), len(variants) * len(grid_points(exp.grid))))
    n_rows = len(variants) * len(grid_points(exp.grid))
    out = [_where_note(n, ctxs, n_rows) for n, ctxs in notes.items()]
    dupes = [r for r in runs.values() if r.aliases]
    for r in dupes:
        out.append(f"{r.label} (seed {r.seed}) is the same run as {', '.join(sorted(set(r.aliases)))}: trained once")
    return Plan(exp, list(runs.values()), out)


def _where_note(note: str, ctxs: list[str], n_rows: int) -> str:
    """A note once: bare when it holds for every row, else prefixed with where it arose."""
    ctxs = [c for c in ctxs if c]
    if not ctxs or len(ctxs) == n_rows:
        return note
    return f"{ctxs[0]}{f' and {len(ctxs) - 1} more' if len(ctxs) > 1 else ''}: {note}"


def _model_keys(overrides: dict[str, Any]) -> dict[str, Any]:
    """The model options a variant or grid point sets: 'model.x' keys and the keys of a 'model' mapping."""
    out = {}
    for key, value in overrides.items():
        if key == "model" and isinstance(value, dict):
            out.update(value)
        elif key.startswith("model."):
            out[key.removeprefix("model.")] = value
    return out


SUMMARY_STATS = ["params", "train_time_s", "tokens_per_s", "eval_time_s", "steps_to_target"]


def known_metrics(runs: list[PlannedRun]) -> list[str]:
    """The metrics the runs will record, as report.metric names them (test/... and val/...)."""
    from ablate.tasks import TASKS

    names = ["loss", "token_acc", "seq_acc"]
    for r in runs:
        if TASKS.meta(r.config.task.name).get("kind") == "classification":
            names.append("acc")
        if r.config.task.name in ("translate", "tsv"):
            names += ["bleu", "chrf"]
    names = list(dict.fromkeys(names))
    return [f"{stage}/{n}" for stage in ("test", "val") for n in names] + SUMMARY_STATS


def row_names(raw: dict[str, Any]) -> list[str]:
    """What `rows` may name: the variants, and the report's row labels (variant, grid point)."""
    variants = raw.get("variants") if isinstance(raw.get("variants"), dict) else {}
    grid = raw.get("grid") if isinstance(raw.get("grid"), dict) else {}
    grid = {k: v for k, v in grid.items() if isinstance(v, list) and v}
    labels = [PlannedRun("", None, v, p, 0).label for v in (variants or {"": {}}) for p in grid_points(grid)]
    return list(dict.fromkeys([*variants, *labels]))


def check_report(exp: Experiment, runs: list[PlannedRun], where: str) -> list[ConfigError]:
    """report.metric(s) and report.baseline against what these runs record and the rows they make."""
    from ablate.registry import suggest

    errors = []
    valid = known_metrics(runs)
    for key, metric in [("report.metric", exp.report.metric),
                        *(("report.metrics", m) for m in exp.report.metrics or [])]:
        if metric not in valid:
            errors.append(ConfigError(key, metric, f"not a metric these runs record{suggest(metric, valid)} "
                                      f"(valid: {', '.join(valid)})", where))
    b = exp.report.baseline
    if b is not None:
        rows = list(dict.fromkeys([*(r.variant for r in runs if r.variant), *(r.label for r in runs)]))
        if str(b) not in rows:
            errors.append(ConfigError("report.baseline", b, f"names no row of this experiment{suggest(b, rows)} "
                                      f"(valid: a variant name or a row label: {', '.join(rows[:12])}"
                                      f"{' ...' if len(rows) > 12 else ''})", where))
    return errors


def _track_toggles(seen: dict[str, tuple[Any, set[str], bool]], given: dict[str, Any], cfg: RunConfig) -> None:
    """Keys a grid or a variant sets: an error if no run at all has them (the base section's only get a note)."""
    for key, value in given.items():
        if key in ("arch", "match_params", "match_flops") or value is None:
            continue
        old_value, archs, applied = seen.get(key, (value, set(), False))
        archs.add(cfg.model.arch)
        seen[key] = (old_value, archs, applied or hasattr(cfg.model, key))


def collapse(errors: list[ConfigError], n_rows: int = 0) -> list[ConfigError]:
    """One error per distinct problem, naming the first run it occurs in and how many more; a problem every row
    has (a typo in the base or on the command line) is named once, without a row."""
    groups: dict[tuple[str, str], list[ConfigError]] = {}
    for e in errors:
        groups.setdefault((e.key, repr(e.value)), []).append(e)
    out = []
    for same in groups.values():
        first = same[0]
        if n_rows > 1 and len(same) == n_rows and len({e.expected.split(" (")[0] for e in same}) == 1:
            where = first.where.split(" (")[0] if first.where else first.where
            out.append(ConfigError(first.key, first.value, _merged([e.expected for e in same]), where))
            continue
        by_text: dict[str, list[ConfigError]] = {}
        for e in same:
            by_text.setdefault(e.expected, []).append(e)
        for alike in by_text.values():
            one = alike[0]
            where = one.where if len(alike) == 1 else f"{one.where} and {len(alike) - 1} more grid points/variants"
            out.append(ConfigError(one.key, one.value, one.expected, where))
    return out


def _merged(texts: list[str]) -> str:
    """One message for texts that differ only in their parenthesised detail (each arch lists its valid keys)."""
    texts = list(dict.fromkeys(texts))
    if len(texts) == 1:
        return texts[0]
    common = texts[0].split(" (")[0]
    return f"{common} (what is valid differs by row: `ablate list` shows every arch's and task's options)"


MIN_WIDTH = 8  # match_params never sizes a width below this (nor d_model below n_heads)


def width_floor(model: Any) -> int:
    """The smallest d_model match_params may choose: at least MIN_WIDTH and n_heads, in whole width steps."""
    step = model.width_step()
    least = max(MIN_WIDTH, getattr(model, "n_heads", None) or 1)
    return -(-least // step) * step


def match_params(cfg: RunConfig, where: str) -> RunConfig:
    """The run with its width chosen so its parameter count is within 5% of model.match_params.

    d_model moves in steps that keep heads whole; where the arch has d_ff, that is tuned after, for the finer
    grain small models need. No width lands below its floor (width_floor; the fine width: MIN_WIDTH): where the
    closest fit would, the widths start at the floor and, if that is still too big, layers are taken away; a
    target even the smallest model misses is an error naming the smallest size the arch can build.
    """
    from ablate.train.sizing import count_params, task_info  # torch: only when asked for

    info = task_info(cfg.task)
    return _match(cfg, where, "model.match_params", cfg.model.match_params, lambda m: count_params(m, info),
                  "parameters")


def match_flops(cfg: RunConfig, where: str) -> RunConfig:
    """The run with its width chosen so its forward FLOPs per target token (one example at the task's mean
    lengths: ablate.train.sizing.flops_per_token) are within 5% of model.match_flops; as match_params otherwise."""
    from ablate.train.sizing import flops_per_token  # torch: only when asked for

    return _match(cfg, where, "model.match_flops", cfg.model.match_flops, lambda m: flops_per_token(m, cfg.task),
                  "FLOPs per token")


def _match(cfg: RunConfig, where: str, key: str, target: float, count, unit: str) -> RunConfig:
    """The run at the width whose count(model), which grows with the width, lands within 5% of target."""
    fine = type(cfg.model).fine_width
    model, n = _fit_width(cfg.model, count, target, 1, 1)  # unbounded first: runs sized before the floor keep it
    floor = width_floor(cfg.model)
    if model.d_model < floor or (fine is not None and getattr(model, fine) < MIN_WIDTH):
        model, n = _fit_width(cfg.model, count, target, floor, MIN_WIDTH)
        while n > target * 1.05 and model.n_layers > 1:  # too big even at the floor: fewer layers
            model, n = _fit_width(replace(cfg.model, n_layers=model.n_layers - 1), count, target, floor, MIN_WIDTH)
    if abs(n - target) > 0.05 * target:
        if n > target:
            smallest = _fit_width(replace(model, n_layers=1), count, 0, floor, MIN_WIDTH)
            sizes = f"d_model={floor}" + (f", {fine}={MIN_WIDTH}" if fine else "") + ", n_layers=1"
            raise ConfigErrors([ConfigError(key, target,
                                            f"arch {cfg.model.arch!r} cannot be built that small with no width below "
                                            f"its floor (>= n_heads and >= {MIN_WIDTH}): the smallest it can build "
                                            f"has {_amount(smallest[1])} {unit} ({sizes}); ask for at least that",
                                            where)])
        raise ConfigErrors([ConfigError(key, target,
                                        f"arch {cfg.model.arch!r} gets no closer than {_amount(n)} {unit} "
                                        f"(d_model={model.d_model}); change n_layers or the target", where)])
    return replace(cfg, model=model)


def model_sizes(cfg: RunConfig) -> tuple[int, float]:
    """(parameters, forward FLOPs per target token at the task's mean lengths) of a run's model (`plan --flops`)."""
    from ablate.train.sizing import count_params, flops_per_token, task_info  # torch: only when asked for

    return count_params(cfg.model, task_info(cfg.task)), flops_per_token(cfg.model, cfg.task)


def _amount(n: float) -> str:
    return str(n) if isinstance(n, int) else f"{n:.4g}"


def _fit_width(start: Any, count, target: int, floor: int, fine_floor: int):
    """(model, parameters) closest to target with d_model >= floor (then the fine width >= fine_floor)."""
    step = start.width_step()
    model, n = _closest(lambda k: start.with_width(k * step), count, target, 4096 // step, -(-floor // step))
    fine = type(start).fine_width
    if fine is not None:
        model, n = _closest(lambda k: replace(model, **{fine: k}), count, target, 65536, fine_floor)
    return model, n


def _closest(make, count, target: int, hi: int, lo: int = 1):
    """Binary search over k in lo..hi (count grows with k) for the model whose count is closest to target."""
    best = None
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
