"""The keys that decide when a run validates and stops (train.val_every_n_steps, train.max_steps,
train.early_stopping, train.target), and their checks. No torch here: planning imports it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

from ablate.errors import ConfigError


@dataclass
class EarlyStoppingConfig:
    patience: int = 5  # validation passes without an improvement of more than min_delta before stopping
    # None: the monitored metric's standard error on the validation set at its best value so far
    # (standard_error); a number: that fixed improvement
    min_delta: Optional[float] = None


@dataclass
class TargetConfig:
    metric: str = "val/seq_acc"  # a validation metric; loss counts as reached at or below value, others at/above
    value: Optional[float] = None


def check_stopping(t: Any, monitors: list[str], where: Optional[str]) -> list[ConfigError]:
    """Errors in the stopping keys of a TrainConfig; monitors: the validation metrics a run logs."""
    errors = []
    if t.max_steps == 0 or t.max_steps < -1:
        errors.append(ConfigError("train.max_steps", t.max_steps, "must be > 0 (stop after that many optimizer "
                                  "steps), or -1 for no limit", where))
    if t.max_epochs == 0 or t.max_epochs < -1:
        errors.append(ConfigError("train.max_epochs", t.max_epochs, "must be > 0 (stop after that many epochs), or -1 "
                                  "for no limit", where))
    if t.max_steps == -1 and t.max_epochs == -1 and (t.schedule == "cosine" or t.warmup_steps > 0):
        errors.append(ConfigError("train.max_steps", t.max_steps, f"must be > 0 (or train.max_epochs > 0): "
                                  f"schedule={t.schedule} with warmup_steps={t.warmup_steps} needs a horizon and "
                                  "neither limit is set", where))
    if t.val_every_n_steps < 0:
        errors.append(ConfigError("train.val_every_n_steps", t.val_every_n_steps,
                                  "must be > 0 (validate every N optimizer steps) or 0 (use val_every, in epochs)",
                                  where))
    es = t.early_stopping
    if es is not None:
        if es.patience < 1:
            errors.append(ConfigError("train.early_stopping.patience", es.patience,
                                      "must be >= 1 (validation passes without improvement before stopping)", where))
        if es.min_delta is not None and es.min_delta < 0:
            errors.append(ConfigError("train.early_stopping.min_delta", es.min_delta, "must be >= 0", where))
    tg = t.target
    if tg is not None:
        if tg.metric not in monitors:
            errors.append(ConfigError("train.target.metric", tg.metric, f"must be one of {', '.join(monitors)}",
                                      where))
        if tg.value is None:
            errors.append(ConfigError("train.target.value", None, f"must be given: the value of {tg.metric} that "
                                      "ends the run, e.g. train.target: {metric: val/seq_acc, value: 0.99}", where))
        elif not tg.metric.endswith("loss") and not 0 < tg.value <= 1 and not tg.metric.endswith("bleu"):
            errors.append(ConfigError("train.target.value", tg.value, f"must be in (0, 1] for {tg.metric}", where))
    return errors


# ------------------------------------------------------------------ why a run stopped (pure: the report uses these)
STOP_REASONS = ("target", "plateau", "max_steps", "max_flops", "max_epochs", "time_limit", "diverged", "interrupted")
IMPROVING_WINDOW = 3  # validations the still-improving rule looks back over


def better_by(new: float, old: float, mode: str, delta: float) -> bool:
    """new beats old by more than delta (mode 'min': lower is better, 'max': higher)."""
    return new < old - delta if mode == "min" else new > old + delta


def still_improving(values: list[float], mode: str, min_delta: float = 0.0,
                    window: int = IMPROVING_WINDOW) -> Optional[bool]:
    """Was the run still improving when it stopped? True when the best monitored value over the last `window`
    validations beats the best value before them by more than min_delta; None with fewer than window + 1
    validations (nothing before the window to compare with). NaN values count as no value."""
    clean = [float(v) for v in values if v is not None and v == v]
    if len(clean) <= window:
        return None
    pick = min if mode == "min" else max
    return better_by(pick(clean[-window:]), pick(clean[:-window]), mode, min_delta)


def standard_error(metric: str, value: float, n_examples: int, n_tokens: int = 0,
                   nll_sq_mean: Optional[float] = None) -> float:
    """The standard error of a validation metric at `value`, the plateau's default min_delta.

    An accuracy p on n examples (seq_acc, acc; token_acc on n target tokens): sqrt(p(1-p)/n). The loss, a mean
    NLL over n_tokens target tokens: sqrt(var/n_tokens), var = E[nll^2] - loss^2 over those tokens (0 when
    nll_sq_mean is unknown). BLEU and chrF (0-100) have no closed form; they are treated as a proportion q =
    value/100 on n examples: 100 sqrt(q(1-q)/n), a rough approximation of a bootstrap's spread."""
    name = metric.split("/")[-1]
    if name.endswith("loss"):
        if not n_tokens or nll_sq_mean is None:
            return 0.0
        return math.sqrt(max(nll_sq_mean - value * value, 0.0) / n_tokens)
    scale = 100.0 if name in ("bleu", "chrf") else 1.0
    n = n_tokens if name == "token_acc" else n_examples
    if not n:
        return 0.0
    p = min(max(value / scale, 0.0), 1.0)
    return scale * math.sqrt(p * (1.0 - p) / n)


def step_budget(t: Any, n_train: Optional[int]) -> tuple[Optional[int], str]:
    """(optimizer steps the run may take at most, the limit that binds first) for n_train training examples
    (None: unknown until the data is read). As in Lightning, max_steps and max_epochs each stop the run,
    whichever comes first; -1 is no limit. Token-budget batches (max_tokens) have no step count before they are
    drawn: then the steps of max_epochs are unknown too. Early stopping and a target may end a run sooner."""
    per_epoch = -(-n_train // t.batch_size) if n_train and not getattr(t, "max_tokens", 0) else None
    epoch_steps = t.max_epochs * per_epoch if t.max_epochs > 0 and per_epoch else None
    if t.max_steps > 0 and (t.max_epochs <= 0 or (epoch_steps is not None and t.max_steps <= epoch_steps)):
        return t.max_steps, "max_steps"
    if t.max_epochs > 0:
        return epoch_steps, "max_epochs" if t.max_steps <= 0 or epoch_steps is not None else "max_epochs or max_steps"
    return None, "none"


def budget_text(t: Any, n_train: Optional[int]) -> str:
    """`ablate plan`'s budget cell: '2000 (max_steps)', '320 (max_epochs 10)', '? (max_epochs 10)'."""
    steps, binds = step_budget(t, n_train)
    where = f"max_epochs {t.max_epochs}" if binds.startswith("max_epochs") else binds
    if binds == "max_epochs or max_steps":
        where = f"max_epochs {t.max_epochs} or max_steps {t.max_steps}"
    if getattr(t, "max_flops", 0):  # a compute budget may bind first; its steps are known only once counted
        where += f"; or max_flops {t.max_flops:.3g}"
    return f"{steps if steps is not None else '?'} ({where})"
