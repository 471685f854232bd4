"""The shipped experiment files keep the promises the README makes of them: each one plans (a typo in a key
would otherwise surface only when `make reports` reaches it, hours in), opens with the claim it tests and its
runtime on 2 cores, and a claim is tested with >= 3 seeds, every run trained to a target or a plateau.
Planning generates no data and trains nothing, so this stays fast."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import ablate

ROOT = Path(__file__).resolve().parent.parent
FILES = sorted((ROOT / "experiments").glob("*.yaml"))
# Not claims trained to a target: throughput measures speed over a fixed number of steps (a target would make
# the timings incomparable; its 3 seeds give the timing noise); my_corpus walks a user's own files through the
# tool with one seed.
NOT_CLAIMS = {"throughput", "my_corpus"}
ONE_SEED = {"my_corpus"}


def header(path: Path) -> str:
    lines = path.read_text().splitlines()
    return "\n".join(line for line in lines[: next(i for i, s in enumerate(lines) if not s.startswith("#"))])


def test_the_shipped_experiments_are_there():
    shipped = {"quickstart", "scan", "scan_attention", "translate", "heads", "transformer_ablation"}
    assert shipped <= {p.stem for p in FILES}


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_a_shipped_experiment_plans_and_says_what_it_tests_and_how_long_it_takes(path):
    runs = ablate.plan(path)
    assert runs
    head = header(path)
    assert head, f"{path.name} opens with no comment"
    assert re.search(r"\bminutes\b", head), f"{path.name}'s header gives no runtime"
    if path.stem not in ONE_SEED:
        assert len({r.seed for r in runs}) >= 3, f"{path.name}: a measurement needs >= 3 seeds for its spread"
    if path.stem in NOT_CLAIMS:
        return
    assert re.search(r"^# Claim", head, re.M), f"{path.name}'s header names no claim"
    for r in runs:  # stops at a target or a plateau, not at an arbitrary step count
        assert r.config.train.target is not None or r.config.train.early_stopping is not None, (path.name, r.label)
