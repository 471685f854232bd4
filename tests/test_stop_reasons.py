"""Issue 22: why each run stopped (stop_reason, still_improving), budgets as Lightning means them, the plateau's
min_delta from the metric's standard error, the tested checkpoint, decoding caps that cover the training data."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ablate.experiment.stops import infer_stop, validations
from ablate.train.stopping import still_improving

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- still_improving on synthetic curves
@pytest.mark.parametrize("values,mode,delta,expected", [
    ([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], "max", 0.0, True),  # rising to the end
    ([0.1, 0.5, 0.6, 0.6, 0.6, 0.6], "max", 0.0, False),  # flat over the last three
    ([0.1, 0.5, 0.6, 0.55, 0.58, 0.604], "max", 0.005, False),  # better by 0.004 only: inside min_delta
    ([0.1, 0.5, 0.6, 0.55, 0.58, 0.606], "max", 0.005, True),  # better by 0.006: beyond it
    ([0.1, 0.5, 0.9, 0.3, 0.3, 0.3], "max", 0.0, False),  # a collapse after the best is not improving
    ([2.0, 1.0, 0.9, 0.8], "min", 0.0, True),  # losses: lower is better
    ([2.0, 0.5, 0.9, 0.8, 0.7], "min", 0.0, False),
    ([0.1, 0.2, 0.3], "max", 0.0, None),  # nothing before the window: cannot be judged
    ([0.1, float("nan"), 0.2, 0.3], "max", 0.0, None),  # a NaN validation is no value
])
def test_still_improving_rule_on_synthetic_curves(values, mode, delta, expected):
    assert still_improving(values, mode, delta) is expected


# ---------------------------------------------------------------- the audit's counts over the committed reports
def final_runs(report: Path) -> list[Path]:
    """The runs a committed table rests on: the row's label and, where the table states them (a tuned lr), the
    train.* values of its row; of two runs in one (label, seed) cell the newer."""
    table = pd.read_csv(report / "table.csv")
    keys = [c for c in table.columns if c.startswith("train.")]
    cells: dict[tuple, tuple[float, Path]] = {}
    for d in sorted((report / "runs").iterdir()):
        res = json.loads((d / "result.json").read_text())
        cfg = yaml.safe_load((d / "config.yaml").read_text())
        row = table[table["label"] == res.get("label")]
        if row.empty or any(cfg["train"].get(k.split(".", 1)[1]) != row.iloc[0][k] for k in keys):
            continue
        cell = (res.get("label"), cfg["seed"])
        if cell not in cells or res.get("started", 0) > cells[cell][0]:
            cells[cell] = (res.get("started", 0), d)
    return [d for _, d in cells.values()]


def capped(report: Path) -> tuple[int, int, int]:
    """(runs, runs stopped at a step/epoch cap without their target, of those still improving)."""
    runs = final_runs(report)
    stops = [infer_stop(yaml.safe_load((d / "config.yaml").read_text()),
                        json.loads((d / "result.json").read_text()), d / "metrics.csv") for d in runs]
    cap = [s for s in stops if s["stop_reason"] in ("max_steps", "max_epochs")]
    return len(runs), len(cap), sum(bool(s["still_improving"]) for s in cap)


@pytest.mark.parametrize("name,runs,at_cap,improving", [
    ("quickstart", 24, 15, 14), ("architectures", 48, 5, 3), ("bottleneck", 9, 4, 1), ("scan", 36, 20, 19)])
def test_inferred_stops_find_the_audits_counts(name, runs, at_cap, improving):
    # The audit: quickstart 15 of 24 at the cap without their target, architectures 5/48, bottleneck 4/9,
    # scan 20/36. (Its "8 still improving" in quickstart counted a last validation that is a new best; the
    # rule here, a better best over the last 3 validations by more than min_delta, finds 14.)
    assert capped(ROOT / "reports" / name) == (runs, at_cap, improving)


def test_inference_reads_reasons_in_order(tmp_path):
    (tmp_path / "metrics.csv").write_text("epoch,step,val/seq_acc\n0,249,0.1\n1,499,0.2\n2,749,0.3\n3,999,0.4\n")
    cfg = {"train": {"monitor": "val/seq_acc", "max_steps": 1000, "max_epochs": 200,
                     "early_stopping": {"patience": 3, "min_delta": 0.005}}}
    assert validations(tmp_path / "metrics.csv", "val/seq_acc")[0] == (250, 0.1)
    got = infer_stop(cfg, {"status": "finished", "steps": 1000, "epochs": 3}, tmp_path / "metrics.csv")
    assert got == {"stop_reason": "max_steps", "still_improving": True, "stop_source": "inferred"}
    assert infer_stop(cfg, {"status": "finished", "steps": 1000, "steps_to_target": 1000},
                      tmp_path / "metrics.csv")["stop_reason"] == "target"
    assert infer_stop(cfg, {"status": "finished", "steps": 750}, tmp_path / "metrics.csv")["stop_reason"] == "plateau"
    assert infer_stop({"train": {"max_epochs": 3}}, {"status": "finished", "steps": 750, "epochs": 3},
                      tmp_path / "metrics.csv")["stop_reason"] == "max_epochs"
    assert infer_stop(cfg, {"status": "failed"}, tmp_path / "metrics.csv") == {}
