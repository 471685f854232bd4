"""ablate: architecture ablations for sequence models, from RNNs to the Transformer.

The Python API: ablate.run, ablate.plan, ablate.build_report, ablate.hypotheses, ablate.load_results (see
ablate.api).
"""

from typing import Any

__version__ = "0.1.0"

API = ("run", "plan", "build_report", "load_results", "hypotheses")


def __getattr__(name: str) -> Any:
    """ablate.run etc. are ablate.api's functions themselves (real signatures and docs for help()), imported on
    first use so that `import ablate` and the command line start without pandas."""
    if name in API:
        from ablate import api

        return getattr(api, name)
    raise AttributeError(f"module 'ablate' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *API])


__all__ = [*API, "__version__"]
