"""Experiment files: schema, loading, overrides and validation.

An experiment is a base config (task, model, train, logger) plus the factors
to vary (grid, variants) and seeds. Every problem is a ConfigError naming the
file, the key, the bad value and what would be valid; nothing here trains.
"""

from __future__ import annotations

import copy
import re
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Optional, Union, get_type_hints

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ablate.errors import ConfigError, ConfigErrors
from ablate.models import ModelConfig, resolve
from ablate.registry import suggest
from ablate.tasks import TASKS, TaskConfig
from ablate.train.stopping import EarlyStoppingConfig, TargetConfig, check_stopping


@dataclass
class TrainConfig:
    max_epochs: int = 10
    max_steps: int = -1  # > 0 stops after this many optimizer steps (whichever of it and max_epochs comes first)
    batch_size: int = 64
    eval_batch_size: int = 256
    lr: float = 1.0e-3
    optimizer: str = "adamw"  # adam | adamw
    weight_decay: float = 0.0
    schedule: str = "none"  # none | noam | cosine
    warmup_steps: int = 0
    label_smoothing: float = 0.0
    grad_clip: float = 1.0  # max gradient norm; 0 = off
    test_on: str = "best"  # best (validation checkpoint) | last
    monitor: str = "val/loss"  # the validation metric that picks "best"
    val_every: int = 1  # validate every N epochs
    val_every_n_steps: int = 0  # > 0: validate every N optimizer steps instead (counted across epochs)
    early_stopping: Optional[EarlyStoppingConfig] = None  # {patience, min_delta} on monitor
    target: Optional[TargetConfig] = None  # {metric, value}: stop once reached; result records steps_to_target
    accelerator: str = "cpu"
    devices: Any = 1
    strategy: str = "auto"
    precision: str = "32-true"
    deterministic: bool = True
    cpus_per_run: int = 1  # for the ray executor


@dataclass
class WandbConfig:
    project: str = "ablate"
    mode: str = "disabled"  # disabled | offline | online
    entity: Optional[str] = None


@dataclass
class LoggerConfig:
    wandb: WandbConfig = field(default_factory=WandbConfig)


@dataclass
class ReportConfig:
    metric: str = "test/seq_acc"
    baseline: Optional[str] = None  # a variant name (or grid-point label) the Δ column compares against
    metrics: Optional[list[str]] = None  # table columns; default: seq_acc, token_acc, loss + the task's own
    samples: Optional[list[str]] = None  # inputs for the attention heatmaps (default: a short test input)


@dataclass
class SlurmConfig:
    partition: Optional[str] = None
    time_min: int = 60
    cpus_per_task: int = 2
    gpus_per_node: int = 0
    mem_gb: int = 8
    array_parallelism: int = 16
    cluster: str = "auto"  # auto (slurm where sbatch/srun exist, else local) | slurm | local (submitit, this machine)


CHOICES = {
    "train.optimizer": ["adam", "adamw"],
    "train.schedule": ["none", "noam", "cosine"],
    "train.test_on": ["best", "last"],
    "train.monitor": ["val/loss", "val/seq_acc", "val/token_acc", "val/acc"],
    "logger.wandb.mode": ["disabled", "offline", "online"],
}
POSITIVE = {"train.max_epochs", "train.batch_size", "train.eval_batch_size", "train.val_every", "train.cpus_per_run",
            "slurm.time_min", "slurm.cpus_per_task", "slurm.array_parallelism"}  # tasks check their own options
NON_NEGATIVE = {"train.weight_decay", "train.warmup_steps", "train.grad_clip", "slurm.gpus_per_node", "task.seed"}
TOP_KEYS = ["name", "description", "task", "model", "train", "logger", "seeds", "grid", "variants", "tune", "report",
            "slurm"]
SECTIONS = {"model": ModelConfig, "train": TrainConfig, "logger": LoggerConfig, "report": ReportConfig,
            "slurm": SlurmConfig}


@dataclass
class RunConfig:
    """Everything that decides one run's numbers (and so its id), plus its logger."""

    task: Any
    model: ModelConfig
    train: TrainConfig
    seed: int
    logger: LoggerConfig = field(default_factory=LoggerConfig)

    def identity(self) -> dict[str, Any]:
        return {"task": asdict(self.task), "model": asdict(self.model), "train": asdict(self.train),
                "seed": self.seed}

    def to_dict(self) -> dict[str, Any]:
        return {**self.identity(), "logger": asdict(self.logger)}


@dataclass
class Experiment:
    name: str
    path: Optional[Path]
    base: dict[str, Any]  # task/model/train/logger as plain dicts, overrides applied
    seeds: list[int]
    grid: dict[str, list[Any]]
    variants: dict[str, dict[str, Any]]
    report: ReportConfig
    slurm: SlurmConfig
    description: str = ""
    tune: dict[str, Any] = field(default_factory=dict)  # dotted key -> candidates, + metric (experiment.tune)
    raw: dict[str, Any] = field(default_factory=dict)  # the file as given plus overrides, for the store


# ------------------------------------------------------------------ helpers
def set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    """tree['a']['b'] = value for key 'a.b'; a mapping value is merged under the key."""
    *parents, leaf = key.split(".")
    node = tree
    for p in parents:
        if not isinstance(node.get(p), dict):
            node[p] = {}
        node = node[p]
    if isinstance(value, dict):
        if not isinstance(node.get(leaf), dict):
            node[leaf] = {}
        for k, v in value.items():
            set_dotted(node[leaf], str(k), v)
    else:
        node[leaf] = value


def apply(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    tree = copy.deepcopy(base)
    for k, v in overrides.items():
        set_dotted(tree, k, v)
    return tree


def header_comment(text: str) -> str:
    """The comment block that opens an experiment file: its description."""
    lines = []
    for line in text.splitlines():
        if line.startswith("#"):
            lines.append(line[1:].removeprefix(" "))
        elif line.strip() == "" and lines:
            lines.append("")
        elif line.strip():
            break
    return "\n".join(lines).strip()


def parse_overrides(items: list[str], where: str = "command line") -> dict[str, Any]:
    """KEY=VALUE strings -> {dotted key: YAML-typed value}."""
    out: dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key or not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*", key.strip()):
            raise ConfigErrors([ConfigError("override", item, "must look like KEY=VALUE, e.g. model.d_model=128",
                                            where)])
        try:
            out[key.strip()] = yaml.safe_load(value) if value != "" else None
        except yaml.YAMLError:
            out[key.strip()] = value
    return out


def _structured(section: str, cls: type, data: Any, where: str) -> Any:
    """data merged onto cls's defaults, with unknown keys and wrong types reported by name."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigErrors([ConfigError(section, data, "must be a mapping of keys to values", where)])
    errors = []
    valid = [f.name for f in fields(cls)]
    for key, value in data.items():
        if key not in valid:
            errors.append(ConfigError(f"{section}.{key}", value,
                                      f"unknown key{suggest(key, valid)} (valid: {', '.join(valid)})", where))
        elif is_dataclass(_optional(field_type(cls, key))) and value is not None and not isinstance(value, dict):
            sub = [f.name for f in fields(_optional(field_type(cls, key)))]
            errors.append(ConfigError(f"{section}.{key}", value, f"must be a mapping with keys {', '.join(sub)}",
                                      where))
        elif is_dataclass(_optional(field_type(cls, key))) and isinstance(value, dict):
            try:
                _structured(f"{section}.{key}", _optional(field_type(cls, key)), value, where)
            except ConfigErrors as e:
                errors += e.errors
    if errors:
        raise ConfigErrors(errors)
    try:
        merged = OmegaConf.merge(OmegaConf.structured(cls), data)
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as e:
        key = f"{section}.{e.full_key}" if getattr(e, "full_key", None) else section
        value = _lookup(data, str(getattr(e, "full_key", "") or ""))
        expected = f"wrong type: expected {_type_name(cls, str(e.full_key or ''))}" if e.full_key else str(e)
        raise ConfigErrors([ConfigError(key, value, expected, where)]) from None


def field_type(cls: type, key: str) -> Any:
    return get_type_hints(cls).get(key)


def _optional(t: Any) -> Any:
    """Optional[X] -> X (a section that may be left out, e.g. train.target), else t."""
    args = [a for a in getattr(t, "__args__", ()) if a is not type(None)]
    return args[0] if getattr(t, "__origin__", None) is Union and len(args) == 1 else t


def _type_name(cls: type, dotted: str) -> str:
    t: Any = cls
    for part in dotted.split("."):
        t = field_type(t, part) if is_dataclass(t) else None
    if t is None:
        return "another type"
    args = [a for a in getattr(t, "__args__", ()) if a is not type(None)]
    t = args[0] if getattr(t, "__origin__", None) is Union and len(args) == 1 else t
    return getattr(t, "__name__", str(t))


def _lookup(data: dict, dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _check_values(cfg: RunConfig, where: str) -> list[ConfigError]:
    errors = []
    sections = {"task": asdict(cfg.task), "train": asdict(cfg.train), "logger": asdict(cfg.logger)}
    for section, values in sections.items():
        for key, value in flatten(values, section).items():
            if key in CHOICES and value not in CHOICES[key]:
                errors.append(ConfigError(key, value, f"must be one of {', '.join(CHOICES[key])}"
                                          f"{suggest(value, CHOICES[key])}", where))
            elif key in POSITIVE and isinstance(value, (int, float)) and value <= 0:
                errors.append(ConfigError(key, value, "must be > 0", where))
            elif key in NON_NEGATIVE and isinstance(value, (int, float)) and value < 0:
                errors.append(ConfigError(key, value, "must be >= 0", where))
    tr = cfg.train
    check = TASKS.meta(cfg.task.name).get("check")
    if check is not None:
        try:
            check(cfg.task)
        except ValueError as e:
            errors.append(ConfigError("task", cfg.task.name, str(e), where))
    if not tr.lr > 0:
        errors.append(ConfigError("train.lr", tr.lr, "must be a learning rate > 0", where))
    if not 0 <= tr.label_smoothing < 1:
        errors.append(ConfigError("train.label_smoothing", tr.label_smoothing, "must be in [0, 1)", where))
    errors += check_stopping(tr, CHOICES["train.monitor"], where)
    return errors


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'model': {'d_model': 64}} -> {'model.d_model': 64}."""
    out = {}
    for k, v in tree.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and v:
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


# ------------------------------------------------------------------ building runs
def build_run(tree: dict[str, Any], seed: int, where: str) -> tuple[RunConfig, list[str]]:
    """A validated, fully resolved RunConfig from a config tree; returns (config, notes)."""
    errors: list[ConfigError] = []
    task_data = tree.get("task") or {}
    task = None
    if not isinstance(task_data, dict):
        errors.append(ConfigError("task", task_data, "must be a mapping with at least a name", where))
    else:
        name = task_data.get("name", TaskConfig.name)
        if name not in TASKS:
            errors.append(ConfigError("task.name", name, f"unknown task{suggest(name, TASKS.names())} "
                                      f"(valid: {', '.join(TASKS.names())})", where))
        else:
            try:
                task = _structured("task", TASKS.meta(name)["config"], {**task_data, "name": name}, where)
            except ConfigErrors as e:
                errors += e.errors
    parts: dict[str, Any] = {}
    for section in ("model", "train", "logger"):
        try:
            parts[section] = _structured(section, SECTIONS[section], tree.get(section), where)
        except ConfigErrors as e:
            errors += e.errors
    notes: list[str] = []
    if "model" in parts:
        try:
            parts["model"], notes = resolve(parts["model"], where)
        except ConfigErrors as e:
            errors += e.errors
    if errors:
        raise ConfigErrors(errors)
    cfg = RunConfig(task=task, model=parts["model"], train=parts["train"], seed=seed, logger=parts["logger"])
    errors = _check_values(cfg, where)
    if errors:
        raise ConfigErrors(errors)
    return cfg, notes


def load_experiment(path: str | Path, overrides: Optional[list[str]] = None) -> Experiment:
    """Read and check an experiment file (not its runs: plan() validates each of those)."""
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise ConfigErrors([ConfigError("EXPERIMENT", str(path), "no such file", None)])
    text = path.read_text()
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f"line {mark.line + 1}" if mark else "?"
        raise ConfigErrors([ConfigError("yaml", line, f"not valid YAML: {getattr(e, 'problem', e)}", where)]) from None
    if not isinstance(raw, dict):
        raise ConfigErrors([ConfigError("experiment", type(raw).__name__, "must be a mapping of keys", where)])
    over = parse_overrides(overrides or [])
    raw = apply(raw, over)
    errors = [ConfigError(k, raw[k], f"unknown top-level key{suggest(k, TOP_KEYS)} (valid: {', '.join(TOP_KEYS)})",
                          where) for k in raw if k not in TOP_KEYS]
    name = raw.get("name") or path.stem
    if not isinstance(name, str) or not re.fullmatch(r"[\w.-]+", name):
        errors.append(ConfigError("name", name, "must be a plain name (letters, digits, _ . -)", where))
    seeds = raw.get("seeds", [0])
    seeds = [seeds] if isinstance(seeds, int) and not isinstance(seeds, bool) else seeds
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool)
                                                            for s in seeds):
        errors.append(ConfigError("seeds", raw.get("seeds"), "must be a non-empty list of integers", where))
    elif len(set(seeds)) != len(seeds):
        errors.append(ConfigError("seeds", seeds, "must not repeat a seed", where))
    grid = raw.get("grid") or {}
    if not isinstance(grid, dict):
        errors.append(ConfigError("grid", grid, "must map dotted keys to lists of values", where))
        grid = {}
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            errors.append(ConfigError(f"grid.{key}", values, "a grid axis must be a non-empty list of values", where))
    variants = raw.get("variants") or {}
    if not isinstance(variants, dict):
        errors.append(ConfigError("variants", variants, "must map variant names to override mappings", where))
        variants = {}
    for vname, over_v in variants.items():
        if over_v is not None and not isinstance(over_v, dict):
            errors.append(ConfigError(f"variants.{vname}", over_v,
                                      "must be a mapping of dotted keys to values (or {})", where))
    from ablate.experiment.tune import check_tune  # the experiment package imports this module

    errors += check_tune(raw.get("tune"), grid, where, len(seeds) if isinstance(seeds, list) else 1)
    sections = {}
    for section in ("report", "slurm"):
        try:
            sections[section] = _structured(section, SECTIONS[section], raw.get(section), where)
        except ConfigErrors as e:
            errors += e.errors
    if errors:
        raise ConfigErrors(errors)
    base = {k: raw.get(k) or {} for k in ("task", "model", "train", "logger")}
    return Experiment(name=name, path=path, base=base, seeds=list(seeds), grid={k: list(v) for k, v in grid.items()},
                      variants={k: dict(v or {}) for k, v in variants.items()}, report=sections["report"],
                      slurm=sections["slurm"], description=raw.get("description") or header_comment(text),
                      tune=dict(raw.get("tune") or {}), raw=raw)
