"""ablate: architecture ablations for sequence models, from RNNs to the Transformer.

The Python API: ablate.run, ablate.plan, ablate.build_report, ablate.hypotheses, ablate.load_results (see
ablate.api).
"""

from typing import Any

__version__ = "0.1.0"


def run(*args: Any, **kwargs: Any) -> Any:
    """ablate.run(path_or_dict, overrides=[...], workers=1, ...) -> results DataFrame (see ablate.api.run)."""
    from ablate.api import run as _run

    return _run(*args, **kwargs)


def plan(*args: Any, **kwargs: Any) -> Any:
    """ablate.plan(path_or_dict, overrides=[...]) -> the planned runs (see ablate.api.plan)."""
    from ablate.api import plan as _plan

    return _plan(*args, **kwargs)


def build_report(*args: Any, **kwargs: Any) -> Any:
    """ablate.build_report("runs/<name>", out=None) -> path of the report's index.html (see ablate.api)."""
    from ablate.api import build_report as _build

    return _build(*args, **kwargs)


def hypotheses(*args: Any, **kwargs: Any) -> Any:
    """ablate.hypotheses(["reports/<name>", ...]) -> markdown table of the declared hypotheses' verdicts."""
    from ablate.api import hypotheses as _hypotheses

    return _hypotheses(*args, **kwargs)


def load_results(path: Any) -> Any:
    """runs/<name> -> pandas DataFrame, one row per run (see ablate.experiment.results)."""
    from ablate.api import load_results as _load

    return _load(path)


__all__ = ["run", "plan", "build_report", "hypotheses", "load_results", "__version__"]
