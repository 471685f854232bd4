"""Run a tiny experiment in this process and build its report, keeping the figures the page was handed: the
shared steps of the report tests that look at figures (not a test module)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import yaml


def run_in_process(exp: dict[str, Any], where: Path) -> Path:
    """Write exp to where/<name>.yaml, run it with one worker in this process; return its run store."""
    import torch

    from ablate.api import load
    from ablate.experiment.runner import run_experiment

    path = where / f"{exp['name']}.yaml"
    path.write_text(yaml.safe_dump(exp, sort_keys=False))
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("ablate.experiment.executors.cpu_count", lambda: 1)
        code = run_experiment(load(path), where / "runs", report=False, out=io.StringIO())
    torch.set_num_threads(threads)  # a run sets its own thread count
    assert code == 0
    return where / "runs" / exp["name"]


def report_figures(store: Path, out: Path, patches: dict[str, Any] | None = None) -> tuple[Path, list]:
    """Build store's report into out (with `patches`, {'module.attr': value}, applied meanwhile); return the
    index page and the figures the page was handed."""
    import ablate.report.page as page
    from ablate.api import build_report

    seen: dict[str, list] = {}
    real = page.write_pages

    def keep(ctx, s, figures, tables):
        seen["figures"] = figures
        return real(ctx, s, figures, tables)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(page, "write_pages", keep)
        for target, value in (patches or {}).items():
            mp.setattr(target, value)
        index = build_report(store, out)
    return index, seen["figures"]
