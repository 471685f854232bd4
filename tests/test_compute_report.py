"""Learning curves on a compute axis (report.x: step | flops | seconds)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import yaml


def test_validation_steps_get_the_compute_logged_around_them():
    # training rows logged at steps 1 and 3 (after 2 and 4 optimizer steps): 100 FLOPs a step
    logged = pd.DataFrame({"run_id": ["a", "a", "a", "a"], "step": [1, 1, 3, 3],
                           "train/flops": [200.0, np.nan, 400.0, np.nan]})
    val = pd.DataFrame({"run_id": ["a", "a", "a", "b"], "step": [0, 2, 5, 0]})
    from ablate.report.plots import at_steps

    got = at_steps(logged, val, "train/flops")
    # step 0: between nothing (0 at step -1) and 200 at step 1; step 2: between 200 and 400; step 5 (6 optimizer
    # steps): beyond the last logged, at its rate; run b logged nothing
    assert list(got[:3]) == [100.0, 300.0, 600.0] and np.isnan(got[3])


EXP = {
    "name": "compute_axis",
    "task": {"name": "reverse", "vocab_size": 5, "min_len": 2, "max_len": 4, "n_train": 32, "n_val": 8,
             "n_test": 8},
    "model": {"arch": "gru", "d_model": 8, "n_layers": 1},
    "train": {"max_epochs": 3, "batch_size": 8, "eval_batch_size": 64},
    "seeds": [0],
    "grid": {"model.arch": ["gru", "cnn"]},
    "report": {"x": "flops"},
}


def test_a_report_with_x_flops_draws_learning_curves_against_training_flops(tmp_path):
    from tiny_runs import report_figures, run_in_process

    import ablate.report.plots as plots

    seen = {}
    real_lines = plots._lines

    def lines(fig_, data, x, metrics, out, xlabel, *rest):
        seen["x"], seen["xlabel"], seen["data"] = x, xlabel, data
        return real_lines(fig_, data, x, metrics, out, xlabel, *rest)

    _, seen["figures"] = report_figures(run_in_process(EXP, tmp_path), tmp_path / "report",
                                        {"ablate.report.plots._lines": lines})
    curves = next(f for f in seen["figures"] if f.name == "learning_curves")
    assert not curves.skipped and (tmp_path / "report" / "plots" / "learning_curves.png").is_file()
    assert seen["xlabel"] == "training FLOPs (cumulative)"
    # the x values are cumulative training FLOPs: growing with the step, and a step's FLOPs differ by arch
    data = seen["data"]
    assert seen["x"] == "compute" and (data["compute"] > data["step"] * 1000).all()
    for _, run in data.groupby("run_id"):
        assert run.sort_values("step")["compute"].is_monotonic_increasing
    assert data.groupby("hue")["compute"].max().nunique() == 2


def test_report_x_is_checked(tmp_path, capsys):
    from ablate.cli import main

    (tmp_path / "e.yaml").write_text(yaml.safe_dump({**EXP, "report": {"x": "flop"}}))
    assert main(["plan", str(tmp_path / "e.yaml"), "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "report.x" in err and "flops" in err
