"""When a run validates and stops: max_steps, val_every_n_steps, early stopping, train.target and
steps_to_target (result.json, results.csv, the report table)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ablate import load_results
from ablate.cli import main
from ablate.config import build_run
from ablate.report.tables import summarize, to_markdown
from ablate.train.callbacks import mode_of, stop_callbacks
from ablate.train.fit import fit

TASK = {"name": "reverse", "vocab_size": 5, "min_len": 2, "max_len": 4, "n_train": 64, "n_val": 16, "n_test": 16}
MODEL = {"arch": "gru", "d_model": 16, "n_layers": 1}


def run(tmp_path: Path, **train) -> tuple[dict, list[dict]]:
    """fit() one tiny run (2 steps per epoch); returns its result and its validation rows of metrics.csv."""
    cfg, _ = build_run({"task": TASK, "model": MODEL, "train": {"batch_size": 32, **train}}, 0, "test")
    d = tmp_path / "run"
    d.mkdir()
    result = fit(cfg, d)
    with open(d / "metrics.csv") as f:
        vals = [r for r in csv.DictReader(f) if r.get("val/loss")]
    return result, vals


def test_max_steps_stops_before_max_epochs(tmp_path):
    result, _ = run(tmp_path, max_epochs=100, max_steps=3)
    assert result["steps"] == 3


def test_val_every_n_steps_validates_across_epoch_boundaries(tmp_path):
    result, vals = run(tmp_path, max_epochs=5, val_every_n_steps=3)
    assert result["steps"] == 10
    assert [int(v["step"]) + 1 for v in vals] == [3, 6, 9]  # not at epoch ends (every 2 steps)
    assert "steps_to_target" not in result  # no target, no field


def test_target_stops_the_run_and_records_the_step(tmp_path):
    # val/loss starts near log(vocab) ~ 2.2: a target of 5.0 is reached at the first validation.
    result, vals = run(tmp_path, max_epochs=50, val_every_n_steps=3, target={"metric": "val/loss", "value": 5.0})
    assert (result["steps_to_target"], result["steps"], len(vals)) == (3, 3, 1)


def test_target_never_reached_is_none_and_the_run_goes_on(tmp_path):
    result, vals = run(tmp_path, max_epochs=50, max_steps=6, val_every_n_steps=2,
                       target={"metric": "val/seq_acc", "value": 1.0})
    assert result["steps_to_target"] is None and result["steps"] == 6 and len(vals) == 3


def test_early_stopping_stops_after_patience_validations_without_improvement(tmp_path):
    # min_delta 10 on a loss of ~2: nothing after the first validation counts as an improvement.
    result, vals = run(tmp_path, max_epochs=100, val_every_n_steps=1, early_stopping={"patience": 2, "min_delta": 10})
    assert result["steps"] == 3 and len(vals) == 3


def test_stopping_direction_comes_from_the_metric():
    assert (mode_of("val/loss"), mode_of("val/seq_acc"), mode_of("val/bleu")) == ("min", "max", "max")
    cfg, _ = build_run({"task": TASK, "model": MODEL, "train": {"monitor": "val/token_acc",
                                                                "early_stopping": {"patience": 4}}}, 0, "t")
    (es,) = stop_callbacks(cfg.train)
    assert (es.monitor, es.mode, es.patience, es.min_delta) == ("val/token_acc", "max", 4, 0.0)


@pytest.mark.parametrize("train, key, words", [
    ({"max_steps": 0}, "train.max_steps", "-1 for no limit"),
    ({"val_every_n_steps": -1}, "train.val_every_n_steps", "or 0 (use val_every"),
    ({"early_stopping": {"patience": 0}}, "train.early_stopping.patience", ">= 1"),
    ({"early_stopping": {"patince": 3}}, "train.early_stopping.patince", "did you mean 'patience'"),
    ({"early_stopping": True}, "train.early_stopping", "mapping with keys patience, min_delta"),
    ({"target": {"metric": "val/accuracy", "value": 0.9}}, "train.target.metric", "val/seq_acc"),
    ({"target": {"metric": "val/seq_acc"}}, "train.target.value", "must be given"),
    ({"target": {"value": 99}}, "train.target.value", "(0, 1]"),
])
def test_bad_stopping_keys_exit_2_naming_the_key(tmp_path, capsys, train, key, words):
    p = tmp_path / "e.yaml"
    p.write_text(yaml.safe_dump({"task": TASK, "model": MODEL, "train": train}))
    assert main(["plan", str(p)]) == 2
    err = capsys.readouterr().err
    assert f"{key}=" in err and words in err


def test_steps_to_target_reaches_results_csv_and_the_table(tmp_path):
    exp = {"name": "tgt", "task": TASK, "model": MODEL, "seeds": [0, 1],
           "train": {"batch_size": 32, "max_epochs": 3, "val_every_n_steps": 1},
           "variants": {"easy": {"train.target": {"metric": "val/loss", "value": 5.0}},
                        "never": {"train.target": {"metric": "val/seq_acc", "value": 1.0}}}}
    p = tmp_path / "e.yaml"
    p.write_text(yaml.safe_dump(exp))
    assert main(["run", str(p), "--runs-dir", str(tmp_path / "runs"), "--no-report"]) == 0
    df = load_results(tmp_path / "runs" / "tgt")
    easy, never = df[df["variant"] == "easy"], df[df["variant"] == "never"]
    assert list(easy["steps_to_target"]) == [1, 1] and never["steps_to_target"].isna().all()
    for d in (tmp_path / "runs" / "tgt").iterdir():
        if d.is_dir():
            assert "steps_to_target" in json.loads((d / "result.json").read_text())
    text = (tmp_path / "runs" / "tgt" / "results.csv").read_text().splitlines()
    assert "steps_to_target" in text[0].split(",")
    md = to_markdown(summarize(df))
    assert "steps to target ↓" in md and "**≤ 1 (2/2 reached)**" in md and "≥6 (0/2 reached)" in md


def test_steps_to_target_median_counts_unreached_seeds_as_their_last_step():
    df = pd.DataFrame({"label": ["a"] * 3 + ["b"] * 3 + ["c"] * 2, "variant": [""] * 8, "status": ["finished"] * 8,
                       "seed": [0, 1, 2] * 2 + [0, 1], "test/seq_acc": [1.0] * 8,
                       "train.target.value": [0.9] * 8,
                       "steps_to_target": [100, 300, math.nan, 50, 60, 70, math.nan, math.nan],
                       "steps": [500, 500, 400, 500, 500, 500, 20, 30]})
    f = summarize(df).frame.set_index("label")
    assert f.loc["a", "steps_to_target/median"] == 300 and f.loc["a", "steps_to_target/reached"] == 2
    assert f.loc["c", "steps_to_target/median"] == 25
    md = to_markdown(summarize(df))
    # c has the smallest number but never reached the target: b (every seed reached) is the bold one.
    assert "≥300 (2/3 reached)" in md and "**60 (3/3 reached)**" in md and "≥25 (0/2 reached)" in md
