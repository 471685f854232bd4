"""`tune:`: candidates with the first seed, the best by validation wins per row, then every seed with it."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import yaml

from ablate import load_results
from ablate.cli import main
from ablate.config import load_experiment
from ablate.experiment.tune import best_candidate, tuned_plan

TINY = {"task": {"name": "reverse", "vocab_size": 5, "min_len": 2, "max_len": 4, "n_train": 64, "n_val": 16,
                 "n_test": 16},
        "model": {"arch": "gru", "d_model": 16, "n_layers": 1},
        "train": {"max_epochs": 2, "batch_size": 32}}
LRS = [1.0e-5, 3.0e-2]


def write(tmp_path: Path, **extra) -> Path:
    p = tmp_path / "exp.yaml"
    p.write_text(yaml.safe_dump({"name": "tuned", **TINY, "seeds": [0, 1, 2],
                                 "variants": {"gru": {}, "lstm": {"model.arch": "lstm"}},
                                 "tune": {"train.lr": LRS}, **extra}, sort_keys=False))
    return p


def test_best_candidate_by_metric_then_steps_to_target_then_smaller_value():
    c = [("a", {"lr": 0.1}, 0.5, None, "val/loss"), ("b", {"lr": 0.01}, 0.4, None, "val/loss")]
    assert best_candidate(c) == "b"  # loss: lower wins
    c = [("a", {"lr": 0.1}, 0.9, 300, "val/seq_acc"), ("b", {"lr": 0.01}, 0.9, None, "val/seq_acc"),
         ("c", {"lr": 0.3}, 0.9, 200, "val/seq_acc"), ("d", {"lr": 1.0}, 0.8, 10, "val/seq_acc")]
    assert best_candidate(c) == "c"  # accuracy ties: fewer steps to target (never reached counts last)
    c = [("a", {"lr": 0.1}, 0.9, None, "val/seq_acc"), ("b", {"lr": 0.01}, 0.9, None, "val/seq_acc")]
    assert best_candidate(c) == "b"  # then the smaller value
    assert best_candidate([("a", {"lr": 0.1}, math.nan, None, "val/loss")]) is None


def test_plan_shows_tuning_runs_and_pending_finals(tmp_path, capsys):
    assert main(["plan", str(write(tmp_path)), "--runs-dir", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert out.count("train.lr=") == 4 and out.count("pending tune") == 4 + 1  # 2 rows x seeds 1, 2; summary
    assert "tuned: 8 runs (4 new, 0 finished, 0 failed, 4 pending tune)" in out


def test_tuning_chooses_per_row_reuses_the_first_seed_and_resumes(tmp_path, capsys):
    path, runs = write(tmp_path), tmp_path / "runs"
    assert main(["run", str(path), "--runs-dir", str(runs), "--no-report"]) == 0
    root = runs / "tuned"
    df = load_results(root)
    assert len(df) == 2 * 2 + 2 * 2  # 2 candidates per row at seed 0, then seeds 1 and 2: seed 0 not retrained
    for variant in ("gru", "lstm"):
        rows = df[df["variant"] == variant]
        cands = rows[rows["seed"] == 0]
        scores = {r["train.lr"]: json.loads((root / r["run_id"] / "result.json").read_text())["best_val"]["val/loss"]
                  for _, r in cands.iterrows()}
        want = min(scores, key=scores.get)  # val/loss (train.monitor): lower wins
        assert sorted(rows.loc[rows["seed"] != 0, "train.lr"]) == [want, want]
    assert main(["plan", str(path), "--runs-dir", str(runs)]) == 0
    assert "(0 new, 8 finished, 0 failed)" in capsys.readouterr().out
    # A kill that lost a final run's result: the rerun runs exactly that one and keeps the choice.
    final = df[df["seed"] == 2].iloc[0]
    (root / final["run_id"] / "result.json").unlink()
    capsys.readouterr()
    assert main(["run", str(path), "--runs-dir", str(runs)]) == 0
    err = capsys.readouterr().err
    assert "8 runs, 7 already finished, 1 to run" in err and err.count("finished in") == 1
    table = (tmp_path / "runs" / "tuned" / "report" / "table.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("|")]
    above = table.splitlines()[0]  # columns equal in every row are stated once above the table
    assert "| lr |" in rows[0] or "Same in every row: lr " in above  # the chosen value per row
    # each row averages its 3 seeds at its chosen lr, not the losers
    assert all("| 3 |" in line for line in rows[2:4]) or re.search(r"(: |; )n 3[.;]", above)


def test_a_killed_tuning_stage_resumes_without_retraining(tmp_path, capsys):
    path, runs = write(tmp_path, seeds=[0, 1], variants={"gru": {}}), tmp_path / "runs"
    exp = load_experiment(path)
    p, pending = tuned_plan(exp, runs / "tuned")
    assert len(p.runs) == 2 and len(pending) == 1
    assert main(["run", str(path), "--runs-dir", str(runs), "--no-report"]) == 0
    root = runs / "tuned"
    results = {d.name: (d / "result.json").read_text() for d in root.iterdir() if (d / "result.json").is_file()}
    # Lose one tuning run (as a kill mid-run would): rerunning trains it again and nothing else.
    cand = load_results(root).query("seed == 0").iloc[0]["run_id"]
    (root / cand / "result.json").unlink()
    capsys.readouterr()
    assert main(["run", str(path), "--runs-dir", str(runs), "--no-report"]) == 0
    err = capsys.readouterr().err
    assert err.count("finished in") == 1 and f"({cand})" in err
    after = {d.name for d in root.iterdir() if (d / "result.json").is_file()}
    assert after == set(results)


def test_tune_seeds_runs_candidates_with_the_first_k_seeds(tmp_path, capsys):
    path = write(tmp_path, tune={"train.lr": LRS, "seeds": 2})
    assert main(["plan", str(path), "--runs-dir", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "tuned: 10 runs (8 new, 0 finished, 0 failed, 2 pending tune)" in out  # 2 rows x 2 lr x seeds 0, 1
    assert "with seed 0, 1" in out


@pytest.mark.parametrize("tune, key, words", [
    ({"train.lr": [0.1], "seeds": 4}, "tune.seeds", "from 1 to the number of seeds (3)"),
    ({"train.lr": []}, "tune.train.lr", "tune.train.lr=[]: must be a non-empty list"),  # key, value, what is valid
    ([0.1, 0.2], "tune", "tune=[0.1, 0.2]: must map dotted keys to lists"),
    ({"lr": [0.1]}, "tune.lr", "task., model. or train. key"),
    ({"train.lr": [0.1, 0.1]}, "tune.train.lr", "repeat"),
    ({"train.lr": [0.1], "metric": "val/accuracy"}, "tune.metric", "val/seq_acc"),
    ({"metric": "val/loss"}, "tune", "names no key"),
    ({"train.lr": [0.1, -1.0]}, "train.lr", "learning rate > 0"),
    ({"model.d_model": [16, 32]}, "tune.model.d_model", "also a grid axis"),
])
def test_bad_tune_sections_exit_2(tmp_path, capsys, tune, key, words):
    path = write(tmp_path, tune=tune, grid={"model.d_model": [16]})
    assert main(["plan", str(path), "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert f"{key}=" in err and words in err
    assert not (tmp_path / "runs").exists()
