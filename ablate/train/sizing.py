"""Model sizes without training: parameter counts and FLOPs per token for the planner's match_params and
match_flops."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import torch

from ablate.models import ArchConfig, TaskInfo, build_model
from ablate.tasks import TaskData, build_task


def info_of(data: TaskData) -> TaskInfo:
    """Sizes from a task; source and target vocabularies where the task has both, else its one `vocab`."""
    src, tgt = getattr(data, "src_vocab", None), getattr(data, "tgt_vocab", None)
    src = data.vocab if src is None else src
    tgt = data.vocab if tgt is None else tgt
    return TaskInfo(len(src), len(tgt), data.max_src_len, data.max_tgt_len, shared_vocab=src is tgt)


_INFO: dict[str, TaskInfo] = {}


def task_info(task: Any) -> TaskInfo:
    """Sizes of a task (built once per distinct task config)."""
    key = json.dumps(asdict(task), sort_keys=True)
    if key not in _INFO:
        _INFO[key] = info_of(build_task(task))
    return _INFO[key]


def count_params(model: ArchConfig, info: TaskInfo) -> int:
    with torch.device("meta"):  # shapes only: no memory, no init
        return sum(p.numel() for p in build_model(model, info).parameters())


_LENGTHS: dict[str, tuple[int, int]] = {}


def mean_lengths(task: Any) -> tuple[int, int]:
    """The training split's mean source and target lengths (target: the tokens predicted, <eos> included; the
    decoder reads as many, <bos> first),
    rounded to whole tokens (built once per distinct task config)."""
    key = json.dumps(asdict(task), sort_keys=True)
    if key not in _LENGTHS:
        _LENGTHS[key] = split_mean_lengths(build_task(task).train)
    return _LENGTHS[key]


def split_mean_lengths(split: Any) -> tuple[int, int]:
    """A split's mean source and target lengths (target: <eos> included), rounded to whole tokens."""
    return (max(1, round(float(split.src_len.float().mean()))), max(1, round(float(split.tgt_len.float().mean()))))


def decode_flops_per_token(model: torch.nn.Module, split: Any) -> float:
    """FLOPs per generated token of a free-running greedy decode at the split's mean lengths (one example:
    the source encoded once, then one step per token, as generate runs it; ablate.models.flops.example_decode)."""
    from ablate.models.flops import example_decode

    src, tgt = split_mean_lengths(split)
    return example_decode(model, src, tgt).total / tgt


def flops_per_token(model: ArchConfig, task: Any) -> float:
    """Forward FLOPs of one example at the task's mean lengths, per target token (ablate.models.flops)."""
    from ablate.models.flops import example_forward

    src, tgt = mean_lengths(task)
    with torch.device("meta"):  # built without initialising; the weights' values never change a count
        net = build_model(model, task_info(task))
    net = net.to_empty(device="cpu")
    return example_forward(net, src, tgt).total / tgt
