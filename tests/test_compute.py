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


SIZED = {"name": "reverse", "vocab_size": 5, "min_len": 2, "max_len": 6, "n_train": 64, "n_val": 16, "n_test": 16}


def test_match_flops_lands_within_5_percent():
    from ablate.config import build_run
    from ablate.experiment.plan import match_flops, width_floor
    from ablate.models import build_model
    from ablate.models.flops import example_forward
    from ablate.tasks import build_task
    from ablate.train.sizing import info_of

    data = build_task(build_run({"task": SIZED}, 0, "t")[0].task)
    src, tgt = round(float(data.train.src_len.float().mean())), round(float(data.train.tgt_len.float().mean()))
    for arch in ("lstm", "transformer", "ssm"):
        cfg, _ = build_run({"task": SIZED, "model": {"arch": arch, "match_flops": 150000}}, 0, "t")
        sized = match_flops(cfg, "t").model
        # counted afresh on an initialised model: forward FLOPs of one example at the mean lengths, per token
        per_token = example_forward(build_model(sized, info_of(data)), src, tgt).total / tgt
        assert abs(per_token - 150000) <= 0.05 * 150000, (arch, per_token)
        assert sized.d_model >= width_floor(sized) and sized.d_model != cfg.model.d_model


def test_plan_flops_shows_params_and_flops_per_token(tmp_path, capsys):
    import yaml

    from ablate.cli import main

    p = tmp_path / "e.yaml"
    p.write_text(yaml.safe_dump({"task": SIZED, "model": {"arch": "gru", "d_model": 16, "n_layers": 1}}))
    assert main(["plan", str(p), "--flops", "--runs-dir", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    head, row = out.splitlines()[:2]
    assert head.split()[-2:] == ["params", "FLOPs/token"]
    assert "params" not in (main(["plan", str(p), "--runs-dir", str(tmp_path / "runs")]) or capsys.readouterr().out)
    # a GRU of width 16 over the embedding: its parameters, as the plain count gives them
    from ablate.config import build_run
    from ablate.train.sizing import count_params, task_info

    cfg, _ = build_run({"task": SIZED, "model": {"arch": "gru", "d_model": 16, "n_layers": 1}}, 0, "t")
    assert row.split()[-2] == f"{count_params(cfg.model, task_info(cfg.task)):,}"


def test_match_flops_with_match_params_is_one_clear_error(tmp_path, capsys):
    import yaml

    from ablate.cli import main

    p = tmp_path / "e.yaml"
    p.write_text(yaml.safe_dump({"task": SIZED, "model": {"arch": "gru", "match_params": 5000,
                                                          "match_flops": 100000}}))
    assert main(["plan", str(p), "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "model.match_flops=100000" in err and "match_params" in err


def test_flops_and_seconds_to_target_are_those_of_the_validation_that_reached_it(tmp_path):
    from ablate.config import build_run
    from ablate.train.fit import fit

    (tmp_path / "r").mkdir()
    # a loss of at most 100 is reached at the first validation: after epoch 1, 2 steps of 32 examples
    cfg, _ = build_run({"task": TASK, "model": MODEL, "train": {
        "batch_size": 32, "max_epochs": 5, "target": {"metric": "val/loss", "value": 100}}}, 0, "t")
    result = fit(cfg, tmp_path / "r")
    assert (result["steps_to_target"], result["stop_reason"], result["steps"]) == (2, "target", 2)
    assert result["flops_to_target"] == result["train_flops"] > 0
    assert 0 < result["seconds_to_target"] == result["train_time_s"]


def test_to_target_fields_read_the_reaching_validation_not_the_end():
    from types import SimpleNamespace

    from ablate.train.compute import ComputeMeter

    meter = ComputeMeter(SimpleNamespace(seconds=9.0))
    meter.flops, meter.target_tokens = 300, 30
    meter.at_validation = {2: (100, 1.5), 4: (200, 3.0)}  # step -> (FLOPs, seconds) at each validation
    got = meter.fields({"steps_to_target": 4})
    assert (got["flops_to_target"], got["seconds_to_target"]) == (200, 3.0)
    assert (got["train_flops"], got["train_flops_per_token"], got["flops_per_s"]) == (300, 10.0, 300 / 9.0)
    unreached = meter.fields({"steps_to_target": None})
    assert (unreached["flops_to_target"], unreached["seconds_to_target"]) == (None, None)
    assert "flops_to_target" not in meter.fields({})  # no target set
