"""Models: components found by name in registries, composed by presets. Nothing here knows Lightning.

Importing this package is cheap (no torch): the component registries and
classes load on first use, so `ablate plan` can validate without torch.
"""

from importlib import import_module
from typing import Any

from ablate.models.config import TOGGLES, ModelConfig
from ablate.models.presets import ARCHS, build_model, describe, resolve

_LAZY = {
    "ATTENTION": "ablate.models.attention",
    "POSITIONAL": "ablate.models.positional",
    "ENCODERS": "ablate.models.encoders",
    "DECODERS": "ablate.models.decoders",
    "SeqModel": "ablate.models.seq_models",
    "TaskInfo": "ablate.models.seq_models",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ablate.models' has no attribute {name!r}")


__all__ = ["ARCHS", "TOGGLES", "ModelConfig", "build_model", "describe", "resolve", *_LAZY]
