"""Models: components found by name in registries, composed by presets. Nothing here knows Lightning.

Importing this package is cheap (no torch): the component registries and
classes load on first use, so `ablate plan` can validate without torch.
"""

from importlib import import_module
from typing import Any

from ablate.models.components import ATTENTION, POSITIONAL
from ablate.models.config import ARCHS, ArchConfig, ModelConfig, model_config, resolve
from ablate.models.presets import build_model

_LAZY = {
    "ENCODERS": "ablate.models.encoders",
    "DECODERS": "ablate.models.decoders",
    "SeqModel": "ablate.models.seq_models",
    "TaskInfo": "ablate.models.seq_models",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ablate.models' has no attribute {name!r}")


__all__ = ["ARCHS", "ATTENTION", "POSITIONAL", "ArchConfig", "ModelConfig", "build_model", "model_config", "resolve",
           *_LAZY]
