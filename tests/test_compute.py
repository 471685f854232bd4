"""Training compute: cumulative FLOPs and seconds in metrics.csv, result.json's compute fields, and
train.max_flops stopping a run at its budget."""

from __future__ import annotations

import math

import pandas as pd

# every example 4 tokens long: every batch has one shape, so every step costs the same
TASK = {"name": "reverse", "vocab_size": 5, "min_len": 4, "max_len": 4, "n_train": 64, "n_val": 16, "n_test": 16}
MODEL = {"arch": "gru", "d_model": 16, "n_layers": 1}


def test_max_flops_stops_at_its_budget(tmp_path):
    from ablate.config import build_run
    from ablate.models import build_model
    from ablate.models.flops import example_forward
    from ablate.tasks import build_task
    from ablate.train.fit import fit
    from ablate.train.sizing import info_of

    one, _ = build_run({"task": TASK, "model": MODEL, "train": {"batch_size": 32, "max_steps": 1}}, 0, "t")
    (tmp_path / "one").mkdir()
    (tmp_path / "budget").mkdir()
    step = fit(one, tmp_path / "one")["train_flops"]
    # one step = forward + backward = 3x the forward of 32 examples, counted on the batch's own shape
    data = build_task(one.task)
    S, T = int(data.train.src_len.max()), int(data.train.tgt_len.max())
    model = build_model(one.model, info_of(data))
    assert step == 3 * 32 * example_forward(model, S, T).total

    cfg, _ = build_run({"task": TASK, "model": MODEL, "train": {"batch_size": 32, "max_epochs": 50,
                                                                "max_flops": 2.5 * step}}, 0, "t")
    result = fit(cfg, tmp_path / "budget")
    # the step that reaches the budget is the last: 3 steps, where 2 fall short of 2.5 steps' worth
    assert (result["steps"], result["stop_reason"]) == (3, "max_flops")
    assert result["train_flops"] == 3 * step
    real_target_tokens = 3 * 32 * T  # no padding: every target is T tokens
    assert math.isclose(result["train_flops_per_token"], 3 * step / real_target_tokens)
    assert result["flops_per_s"] > 0 and result["flops_lower_bound"] is False
    curve = pd.read_csv(tmp_path / "budget" / "metrics.csv").dropna(subset=["train/flops"])
    assert len(curve) >= 1
    assert list(curve["train/flops"]) == [step * s for s in curve["step"] + 1]  # cumulative, at each logged step
    assert curve["train/seconds"].is_monotonic_increasing and curve["train/seconds"].iloc[0] > 0
