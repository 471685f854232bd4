"""ablate: architecture ablations for sequence models, from RNNs to the Transformer."""

from typing import Any

__version__ = "0.1.0"


def load_results(path: Any) -> Any:
    """runs/<name> -> pandas DataFrame, one row per run (see ablate.experiment.results)."""
    from ablate.experiment.results import load_results as _load

    return _load(path)


__all__ = ["load_results", "__version__"]
