"""Model sizes without training: parameter counts for the planner's match_params."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import torch

from ablate.models import ModelConfig, TaskInfo, build_model
from ablate.tasks import TaskData, build_task


def info_of(data: TaskData) -> TaskInfo:
    return TaskInfo(len(data.src_vocab), len(data.tgt_vocab), data.max_src_len, data.max_tgt_len,
                    shared_vocab=data.shared_vocab)


_INFO: dict[str, TaskInfo] = {}


def task_info(task: Any) -> TaskInfo:
    """Sizes of a task (built once per distinct task config)."""
    key = json.dumps(asdict(task), sort_keys=True)
    if key not in _INFO:
        _INFO[key] = info_of(build_task(task))
    return _INFO[key]


def count_params(model: ModelConfig, info: TaskInfo) -> int:
    with torch.device("meta"):  # shapes only: no memory, no init
        return sum(p.numel() for p in build_model(model, info).parameters())
