"""Experiment files: schema, loading, overrides and validation.

An experiment is a base config (task, model, train, logger) plus the factors
to vary (grid, variants) and seeds. Every problem is a ConfigError naming the
file, the key, the bad value and what would be valid; nothing here trains.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

import yaml

from ablate.errors import ConfigError, ConfigErrors
from ablate.models import ArchConfig, model_config
from ablate.registry import suggest
from ablate.stopping import EarlyStoppingConfig, TargetConfig, check_stopping
from ablate.structured import default_of, field_errors, option
from ablate.structured import structured as _structured
from ablate.tasks import TASKS, TaskConfig

# The validation metrics a run logs (val/bleu and val/chrf where the task defines them).
MONITORS = ["val/loss", "val/seq_acc", "val/token_acc", "val/acc", "val/bleu", "val/chrf"]


@dataclass
class TrainConfig:
    max_epochs: int = option(10, "epochs at most; -1: no limit (as in Lightning, the default when max_steps is "
                             "set alone)")
    max_steps: int = option(-1, "> 0 stops after this many optimizer steps (whichever of it and max_epochs comes "
                            "first); -1: no limit")
    max_flops: float = option(0, "> 0 stops once the training FLOPs reach this budget (3x the counted forward "
                              "FLOPs per step: ablate.models.flops); 0: no limit", minimum=0)
    max_time: float = option(0, "> 0 stops once the run has spent this many seconds in training steps (validation "
                             "excluded; kept across a resume); 0: no limit. A wall-clock budget: runs stopped by it "
                             "are not repeatable to the step on another machine", minimum=0)
    batch_size: int = option(64, "training batch size", minimum=1)
    eval_batch_size: int = option(256, "validation/test batch size", minimum=1)
    batching: str = option("auto", "training batches: random; bucket (similar lengths batched together, batches "
                           "shuffled); tokens (bucketed, each under a token budget: max_tokens, or batch_size x the "
                           "training split's mean source+target length); auto: tokens for tasks whose lengths vary "
                           "(tsv, translate), random for the others", choices=["auto", "random", "bucket", "tokens"])
    max_tokens: int = option(0, "> 0: token-budget training batches of at most this many padded source+target "
                             "tokens (batch_size then unused for training)", minimum=0)
    lr: float = option(1.0e-3, "learning rate", above=0)
    optimizer: str = option("adamw", "optimizer", choices=["adam", "adamw"])
    weight_decay: float = option(0.0, "weight decay", minimum=0)
    schedule: str = option("none", "learning-rate schedule", choices=["none", "noam", "cosine"])
    warmup_steps: int = option(0, "linear warm-up steps", minimum=0)
    label_smoothing: float = option(0.0, "label smoothing of the training loss", minimum=0, below=1)
    grad_clip: float = option(1.0, "max gradient norm; 0 = off", minimum=0)
    test_on: str = option("best", "test the best validation checkpoint or the last", choices=["best", "last"])
    resume_every_s: float = option(30.0, "the resume state (checkpoints/last.ckpt, what a killed run continues "
                                   "from) is written at a validation once this many seconds have passed since it "
                                   "was last written (or the fit began); 0: at every validation. Not part of the "
                                   "run's identity: it decides no number", minimum=0)
    monitor: str = option("val/loss", "the validation metric that picks 'best' (val/bleu, val/chrf: tasks with "
                          "BLEU; higher is better)", choices=lambda: MONITORS)
    val_every: int = option(1, "validate every N epochs", minimum=1)
    val_every_n_steps: int = option(0, "> 0: validate every N optimizer steps instead (counted across epochs)")
    val_subset: int = option(0, "> 0: validate on a fixed seeded subset of this many validation examples (test "
                             "always uses the whole test split)", minimum=0)
    early_stopping: Optional[EarlyStoppingConfig] = option(None, "{patience, min_delta} on monitor")
    target: Optional[TargetConfig] = option(None, "{metric, value}: stop once reached; the result records "
                                            "steps_to_target")
    accelerator: str = option("cpu", "Lightning accelerator")
    devices: Any = option(1, "Lightning devices")
    strategy: str = option("auto", "Lightning strategy")
    precision: str = option("32-true", "Lightning precision (e.g. bf16-mixed)")
    compile: bool = option(False, "torch.compile the model")
    deterministic: bool = option(True, "deterministic algorithms")
    cpus_per_run: int = option(1, "CPUs per run (ray executor)", minimum=1)


@dataclass
class EvalConfig:
    """How validation and test decode; never what is trained (a run differing only here reuses the trained
    checkpoint of the finished one and only re-tests: ablate.train.reuse)."""

    beam_size: int = option(1, "hypotheses kept per example when decoding; 1 = greedy (seq_acc's default)",
                            minimum=1)
    length_penalty: float = option(1.0, "beam search ranks finished hypotheses by score / length ** this "
                                   "(0: raw log-probability)", minimum=0)


@dataclass
class WandbConfig:
    project: str = option("ablate", "W&B project")
    mode: Optional[str] = option(None, "W&B mode (unset: $WANDB_MODE, else disabled; WANDB_MODE=disabled always wins)",
                                 choices=["disabled", "offline", "online"])
    entity: Optional[str] = option(None, "W&B entity")


@dataclass
class LoggerConfig:
    wandb: WandbConfig = field(default_factory=WandbConfig)
    tensorboard: bool = option(False, "also log to TensorBoard (runs/<name>/<run_id>/tensorboard/; needs "
                               "pip install 'ablate[tensorboard]')")


@dataclass
class ReportConfig:
    metric: str = "test/seq_acc"
    baseline: Optional[str] = None  # a variant name (or grid-point label) the Δ column compares against
    metrics: Optional[list[str]] = None  # table columns; default: seq_acc, token_acc, loss + the task's own
    samples: Optional[list[str]] = None  # inputs for the attention heatmaps (default: a short test input)
    # environment fields in which compared rows may differ on purpose (the page still names them, as accepted)
    accept_confounds: Optional[list[str]] = None
    x: str = option("step", "learning curves' x axis: step, flops (cumulative training FLOPs) or seconds "
                    "(cumulative training seconds)", choices=["step", "flops", "seconds"])
    bold: bool = True  # bold the best value per metric; false for an experiment that measures speed, not learning


CONFOUND_FIELDS = ["threads", "torch", "lightning", "python", "cpu", "device", "dtype", "code", "dirty"]


@dataclass
class SlurmConfig:
    partition: Optional[str] = option(None, "partition")
    time_min: int = option(60, "time limit per job, minutes", minimum=1)
    cpus_per_task: int = option(2, "CPUs per job", minimum=1)
    gpus_per_node: int = option(0, "GPUs per job", minimum=0)
    mem_gb: int = option(8, "memory per job, GB", minimum=1)
    array_parallelism: int = option(16, "jobs of the array running at once", minimum=1)
    cluster: str = option("auto", "auto (slurm where sbatch/srun exist, else local) | slurm | local (submitit, "
                          "this machine)")


CHOICES = {"train.monitor": MONITORS}  # for callers that ask a section's choices by dotted key
TOP_KEYS = ["name", "description", "task", "model", "train", "eval", "logger", "seeds", "grid", "variants", "tune",
            "report", "slurm", "hypotheses"]
SECTIONS = {"train": TrainConfig, "eval": EvalConfig, "logger": LoggerConfig, "report": ReportConfig,
            "slurm": SlurmConfig}


@dataclass
class RunConfig:
    """Everything that decides one run's numbers (and so its id), plus its logger."""

    task: Any
    model: ArchConfig  # the arch's own config class (ARCHS.meta(arch)["config"])
    train: TrainConfig
    seed: int
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def training_identity(self) -> dict[str, Any]:
        """What decides the trained weights: everything but eval (and the logger)."""
        return {"task": asdict(self.task), "model": _identity(self.model), "train": _identity(self.train),
                "seed": self.seed}

    def identity(self) -> dict[str, Any]:
        """What decides the run's numbers; eval enters only when not the default, so runs planned before
        the eval section existed keep their ids."""
        ident = self.training_identity()
        if self.eval != EvalConfig():
            ident["eval"] = asdict(self.eval)
        return ident

    def to_dict(self) -> dict[str, Any]:
        return {**self.identity(), "eval": asdict(self.eval), "logger": asdict(self.logger)}


# Fields added after runs were stored: in a run's identity only away from their default, so stored runs keep
# their ids (and a run that sets one is another run).
LATE_FIELDS = ("max_flops", "match_flops", "max_time")
# Fields that decide how a run is kept, never its numbers: in no identity (a rerun with another value is the
# same run, and finds it finished).
NOT_IDENTITY = ("resume_every_s",)


def _identity(section: Any) -> dict[str, Any]:
    d = asdict(section)
    for key in LATE_FIELDS:
        if key in d and d[key] == default_of(type(section), key):
            del d[key]
    for key in NOT_IDENTITY:
        d.pop(key, None)
    return d


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
    overrides: list[str] = field(default_factory=list)  # dotted keys the command line set (errors name it)
    notes: list[str] = field(default_factory=list)  # printed before anything runs


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
        head, _, axis = k.partition(".")
        if head in ("grid", "tune") and axis:  # their keys are dotted paths themselves: grid.model.n_heads=[2]
            if not isinstance(tree.get(head), dict):
                tree[head] = {}
            tree[head][axis] = v
        else:
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
    """KEY=VALUE strings -> {dotted key: YAML-typed value} (grid axes KEY=a,b as lists: see ablate.overrides)."""
    from ablate.overrides import parse

    over = parse(items, where)
    return {**over.values, **over.sweeps}


def _check_values(cfg: RunConfig, where: str) -> list[ConfigError]:
    """Each section's values against its dataclass's declared choices and bounds, plus the checks between keys."""
    errors = (field_errors(cfg.train, "train", where) + field_errors(cfg.eval, "eval", where)
              + field_errors(cfg.logger, "logger", where))
    if isinstance(cfg.task.seed, int) and cfg.task.seed < 0:  # tasks check their own options
        errors.append(ConfigError("task.seed", cfg.task.seed, "must be >= 0", where))
    check = TASKS.meta(cfg.task.name).get("check")
    if check is not None:
        try:
            check(cfg.task)
        except ValueError as e:
            errors.append(ConfigError("task", cfg.task.name, str(e), where))
    task_metrics = TASKS.meta(cfg.task.name).get("metrics", ())  # corpus metrics a task defines (BLEU, chrF)
    wanted = cfg.train.monitor.removeprefix("val/")
    if wanted in ("bleu", "chrf") and wanted not in task_metrics:
        having = ", ".join(n for n in TASKS if wanted in TASKS.meta(n).get("metrics", ()))
        errors.append(ConfigError("train.monitor", cfg.train.monitor, f"task {cfg.task.name!r} has no {wanted} "
                                  f"(tasks with it: {having})", where))
    errors += check_stopping(cfg.train, MONITORS, where)
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
def resolve_batching(task: str) -> str:
    """What `train.batching: auto` means for a task: token-budget bucketed batches where example lengths vary
    (a task registered with lengths_vary=True: padding would otherwise be half of a random batch), else random
    batches. Tasks of fixed or narrow lengths keep random batches, and so the ids their runs always had."""
    return "tokens" if TASKS.meta(task).get("lengths_vary") else "random"


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
    notes: list[str] = []
    try:
        parts["model"], notes = model_config(tree.get("model"), where)
    except ConfigErrors as e:
        errors += e.errors
    for section in ("train", "eval", "logger"):
        try:
            parts[section] = _structured(section, SECTIONS[section], tree.get(section), where)
        except ConfigErrors as e:
            errors += e.errors
    if errors:
        raise ConfigErrors(errors)
    given = tree.get("train") if isinstance(tree.get("train"), dict) else {}
    if "max_epochs" not in given and parts["train"].max_steps > 0:  # Lightning: max_steps alone, no epoch limit
        parts["train"] = replace(parts["train"], max_epochs=-1)
    if parts["train"].batching == "auto":  # resolved here, so a run's config and id hold what it trains with
        parts["train"].batching = resolve_batching(task.name)
    cfg = RunConfig(task=task, model=parts["model"], train=parts["train"], seed=seed, logger=parts["logger"],
                    eval=parts["eval"])
    errors = _check_values(cfg, where)
    if cfg.logger.tensorboard and importlib.util.find_spec("tensorboard") is None:
        errors.append(ConfigError("logger.tensorboard", True, "needs TensorBoard, an extra: pip install "
                                  "'ablate[tensorboard]' (or leave logger.tensorboard false)", where))
    if errors:
        raise ConfigErrors(errors)
    return cfg, notes


# What PyYAML's terse problems usually mean, said as what was expected there.
YAML_HINTS = {"mapping values are not allowed here": "expected one `key: value` a line, nested keys indented alike "
                                                     "(quote a value that holds ': ')",
              "expected <block end>": "expected this line at the indentation of the keys above it",
              "found character '\\t'": "expected spaces: YAML indents with spaces, not tabs",
              "found unexpected end of stream": "expected the closing quote or bracket"}


def yaml_problem(e: yaml.YAMLError) -> tuple[str, str]:
    """('line 4, column 11', 'what is wrong there (and what was expected)') of a YAML error."""
    mark = getattr(e, "problem_mark", None)
    line = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
    problem = str(getattr(e, "problem", None) or e)
    context, cmark = getattr(e, "context", None), getattr(e, "context_mark", None)
    if context and cmark is not None and cmark.line != getattr(mark, "line", None):
        problem += f" ({context} that starts on line {cmark.line + 1})"
    hints = [h for k, h in YAML_HINTS.items() if k in problem]
    return line, problem + (f"; {hints[0]}" if hints and "expected" not in problem.split(" (")[0] else "")


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
        line, problem = yaml_problem(e)
        raise ConfigErrors([ConfigError("yaml", line, f"not valid YAML: {problem}", where)]) from None
    if not isinstance(raw, dict):
        raise ConfigErrors([ConfigError("experiment", type(raw).__name__, "must be a mapping of keys", where)])
    if not raw:
        raise ConfigErrors([ConfigError("experiment", "empty", "holds no keys (an empty or comment-only file): an "
                                        "experiment needs at least task: {name: ...}, e.g. experiments/"
                                        "quickstart.yaml; `ablate list` shows the tasks", where)])
    from ablate.overrides import blame, check_shadowing, parse

    over = parse(overrides or [])
    shadowed, notes = check_shadowing(raw, over)
    if shadowed:
        raise ConfigErrors(shadowed)
    raw = apply(raw, over.values)
    if over.sweeps:
        raw["grid"] = {**(raw.get("grid") if isinstance(raw.get("grid"), dict) else {}), **over.sweeps}
    try:
        return _experiment(path, text, raw, where, over.keys(), notes)
    except ConfigErrors as e:
        raise ConfigErrors(blame(e.errors, over.keys())) from None


def _sets_task(raw: dict[str, Any]) -> bool:
    """Whether every row gets its task from the grid or the variants instead of the base."""
    grid = raw.get("grid") if isinstance(raw.get("grid"), dict) else {}
    variants = raw.get("variants") if isinstance(raw.get("variants"), dict) else {}
    sets = lambda keys: any(str(k) == "task" or str(k).startswith("task.") for k in keys)
    return sets(grid) or bool(variants) and all(isinstance(v, dict) and sets(v) for v in variants.values())


def _experiment(path: Path, text: str, raw: dict[str, Any], where: str, keys: list[str],
                notes: list[str]) -> Experiment:
    errors = [ConfigError(k, raw[k], f"unknown top-level key{suggest(k, TOP_KEYS)} (valid: {', '.join(TOP_KEYS)})",
                          where) for k in raw if k not in TOP_KEYS]
    if "task" not in raw and not _sets_task(raw):  # no silent default task: say what is missing
        errors.append(ConfigError("task", None, "missing: every experiment names its task, e.g. task: {name: "
                                  f"reverse}} (valid names: {', '.join(TASKS.names())})", where))
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
    errors += check_tune(raw.get("tune"), grid, where, len(seeds) if isinstance(seeds, list) else 1)
    sections = {}
    for section in ("report", "slurm"):
        try:
            sections[section] = _structured(section, SECTIONS[section], raw.get(section), where)
            errors += field_errors(sections[section], section, where)
        except ConfigErrors as e:
            errors += e.errors
    for f in (getattr(sections.get("report"), "accept_confounds", None) or []):
        if f not in CONFOUND_FIELDS:
            errors.append(ConfigError("report.accept_confounds", f, "is not an environment field"
                                      f"{suggest(str(f), CONFOUND_FIELDS)} (valid: {', '.join(CONFOUND_FIELDS)})",
                                      where))
    if errors:
        raise ConfigErrors(errors)
    base = {k: raw.get(k) or {} for k in ("task", "model", "train", "eval", "logger")}
    return Experiment(name=name, path=path, base=base, seeds=list(seeds), grid={k: list(v) for k, v in grid.items()},
                      variants={k: dict(v or {}) for k, v in variants.items()}, report=sections["report"],
                      slurm=sections["slurm"], description=raw.get("description") or header_comment(text),
                      tune=dict(raw.get("tune") or {}), raw=raw, overrides=keys, notes=notes)


# ------------------------------------------------------------------ the tune section (experiment/tune.py uses it)
TUNE_SECTIONS = ("task.", "model.", "train.")
TUNE_OPTIONS = ("metric", "seeds")  # the section's own keys; everything else is a key to tune


def tune_keys(section: Optional[dict[str, Any]]) -> dict[str, list[Any]]:
    """{dotted key: candidate values} of a tune section (nested or dotted keys alike)."""
    return dict(flatten({k: v for k, v in (section or {}).items() if k not in TUNE_OPTIONS}))


def check_tune(section: Any, grid: dict[str, Any], where: Optional[str], n_seeds: int = 1) -> list[ConfigError]:
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
    k = section.get("seeds", 1)
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= max(n_seeds, 1):
        errors.append(ConfigError("tune.seeds", k, f"must be an integer from 1 to the number of seeds ({n_seeds}): "
                                  "how many of the first seeds each candidate runs with", where))
    keys = tune_keys(section)
    if not keys:
        errors.append(ConfigError("tune", section, "names no key to tune, e.g. tune: {train.lr: [3.0e-4, 1.0e-3]}",
                                  where))
    for key, values in keys.items():
        if not key.startswith(TUNE_SECTIONS):
            errors.append(ConfigError(f"tune.{key}", values, "must be a task., model. or train. key", where))
        elif not isinstance(values, list) or not values:
            errors.append(ConfigError(f"tune.{key}", values, "must be a non-empty list of candidate values", where))
        elif len({repr(v) for v in values}) != len(values):
            errors.append(ConfigError(f"tune.{key}", values, "must not repeat a candidate", where))
        if key in grid:
            errors.append(ConfigError(f"tune.{key}", values, "is also a grid axis: tune it or grid it, not both",
                                      where))
    return errors


# ------------------------------------------------------------------ identities (experiment/plan.py: run_id)
def config_hash(ident: dict[str, Any]) -> str:
    blob = json.dumps(ident, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def train_id(cfg: RunConfig) -> str:
    """The id of what a run trains (its config without eval): runs sharing it can share one checkpoint."""
    return config_hash(cfg.training_identity())
