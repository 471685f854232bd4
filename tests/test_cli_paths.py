"""No silent command-line paths: each case that once did nothing (or the wrong thing) quietly now exits 2, or
prints a note first, naming the culprit; the Python API the CLI is a layer over; quiet tracking."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

import ablate
from ablate.cli import main, parser
from ablate.errors import ConfigErrors

TINY = {"name": "tiny",
        "task": {"name": "reverse", "vocab_size": 5, "min_len": 2, "max_len": 4, "n_train": 32, "n_val": 8,
                 "n_test": 8},
        "model": {"arch": "transformer", "d_model": 16, "n_layers": 1, "n_heads": 2},
        "train": {"max_epochs": 1, "batch_size": 32},
        "grid": {"model.n_heads": [1, 2]},
        "variants": {"base": {}, "no_pe": {"model.pos_encoding": "none"}},
        "report": {"metric": "test/seq_acc", "baseline": "base"}}


def write(tmp_path: Path, exp: dict) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump(exp, sort_keys=False))
    return p


def errors_of(capsys) -> str:
    return capsys.readouterr().err


def test_an_override_the_grid_shadows_is_an_error_naming_the_axis(tmp_path, capsys):
    assert main(["plan", str(write(tmp_path, TINY)), "model.n_heads=4"]) == 2
    err = errors_of(capsys)
    assert "command line" in err and "model.n_heads" in err and "grid axis" in err and "[1, 2]" in err


def test_the_suggested_grid_subset_forms_both_run(tmp_path, capsys):
    """The shadowing error suggests `KEY=v1,v2` or `grid.KEY=[v]`: both must plan just those runs."""
    from ablate.api import plan

    path = write(tmp_path, TINY)
    runs = plan(path, overrides=["grid.model.n_heads=[2]"])
    assert {r.config.model.n_heads for r in runs} == {2} and len(runs) == 2  # 2 variants x 1 seed
    assert {r.label for r in runs} == {"base, model.n_heads=2", "no_pe, model.n_heads=2"}
    runs = plan(path, overrides=["model.n_heads=2,4"])
    assert sorted(r.config.model.n_heads for r in runs) == [2, 2, 4, 4]


def test_an_override_a_variant_shadows_is_an_error_naming_the_variant(tmp_path, capsys):
    assert main(["plan", str(write(tmp_path, TINY)), "model.pos_encoding=learned"]) == 2
    err = errors_of(capsys)
    assert "model.pos_encoding" in err and "no_pe" in err and "command line" in err


def test_an_override_nothing_shadows_still_applies(tmp_path):
    runs = ablate.plan(write(tmp_path, TINY), overrides=["model.d_model=32"])
    assert {r.config.model.d_model for r in runs} == {32}


def test_a_command_line_grid_is_a_multirun_axis_and_replaces_the_files(tmp_path, capsys):
    path = write(tmp_path, TINY)
    runs = ablate.plan(path, overrides=["model.n_heads=1,2,4", "train.lr=0.001,0.01"])
    assert {r.config.model.n_heads for r in runs} == {1, 2, 4}
    assert {r.config.train.lr for r in runs} == {0.001, 0.01}
    assert len(runs) == 2 * 3 * 2  # variants x heads x lr
    assert main(["plan", str(path), "model.n_heads=1,4"]) == 0
    out = capsys.readouterr().out
    assert "note:" in out and "replaces" in out and "model.n_heads" in out


def test_report_metric_and_baseline_are_checked_at_plan_time_with_suggestions(tmp_path, capsys):
    path = write(tmp_path, TINY)
    assert main(["plan", str(path), "report.metric=test/seqacc", "report.baseline=bse"]) == 2
    err = errors_of(capsys)
    assert "report.metric='test/seqacc'" in err and "'test/seq_acc'" in err
    assert "report.baseline='bse'" in err and "'base'" in err
    assert err.count("command line") == 2  # given on the command line: blamed on it, not on the file
    bad = {**TINY, "report": {"metric": "test/acc"}}  # reverse is not a classification task
    assert main(["plan", str(write(tmp_path, bad))]) == 2
    assert "tiny.yaml" in errors_of(capsys)


def test_override_type_errors_name_the_command_line(tmp_path, capsys):
    assert main(["plan", str(write(tmp_path, TINY)), "train.lr=fast"]) == 2
    err = errors_of(capsys)
    assert "command line" in err and "train.lr" in err and "tiny.yaml:" not in err


def test_report_and_load_results_on_the_wrong_folder_list_the_experiments(tmp_path, capsys):
    runs = tmp_path / "runs"
    for name in ("alpha", "beta"):
        run = runs / name / "0123456789ab"
        run.mkdir(parents=True)
        (runs / name / "experiment.yaml").write_text(f"name: {name}\n")
        (run / "config.yaml").write_text("seed: 0\n")
        (run / "result.json").write_text(json.dumps({"status": "finished"}))
    assert main(["report", str(runs)]) == 2
    err = errors_of(capsys)
    assert "alpha" in err and "beta" in err
    assert main(["report", str(runs / "alpha" / "0123456789ab")]) == 2
    assert "one run's directory" in errors_of(capsys)
    for bad in (runs, tmp_path / "nope", runs / "alpha" / "0123456789ab"):
        with pytest.raises(ConfigErrors) as e:
            ablate.load_results(bad)
        assert str(bad) in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigErrors, match="empty"):
        ablate.load_results(tmp_path / "empty")
    assert len(ablate.load_results(runs / "alpha")) == 1


def test_dashed_overrides_get_a_hint_bare_ablate_prints_help_and_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["plan", "exp.yaml", "--model.d_model", "64"])
    assert e.value.code == 2
    assert "model.d_model=64" in errors_of(capsys)
    assert main([]) == 0
    assert "usage: ablate" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and ablate.__version__ in capsys.readouterr().out


def test_every_argument_of_every_command_has_help():
    p = parser()
    sub = next(a for a in p._actions if a.__class__.__name__ == "_SubParsersAction")
    missing = [f"{name} {a.dest}" for name, sp in [("ablate", p), *sub.choices.items()] for a in sp._actions
               if a.help is None and a.dest not in ("help", "command")]
    assert not missing, missing


def test_attend_on_a_missing_run_says_which_experiment_to_run(capsys):
    assert main(["attend", "runs/coreference/0123456789ab", "the animal"]) == 2
    assert "ablate run experiments/coreference.yaml" in errors_of(capsys)


def test_wandb_mode_follows_the_environment_as_wandb_users_expect():
    from ablate.train.tracking import wandb_mode

    assert wandb_mode(None, {}) == "disabled"
    assert wandb_mode(None, {"WANDB_MODE": "offline"}) == "offline"
    assert wandb_mode(None, {"WANDB_MODE": "dryrun"}) == "offline"
    assert wandb_mode("online", {"WANDB_MODE": "disabled"}) == "disabled"
    assert wandb_mode("offline", {}) == "offline"


def test_api_runs_a_dict_and_the_run_is_quiet_with_wandb_and_tensorboard(tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")  # the environment alone turns wandb on
    monkeypatch.delenv("WANDB_SILENT", raising=False)
    exp = {**TINY, "grid": {}, "variants": {}, "report": {"metric": "test/seq_acc"}}
    df = ablate.run(exp, overrides=["logger.tensorboard=true"], workers=1, report=False, out=io.StringIO())
    assert isinstance(df, pd.DataFrame) and list(df["status"]) == ["finished"]
    run = Path("runs/tiny") / df["run_id"].iloc[0]
    assert list(run.glob("wandb/offline-run-*")), "WANDB_MODE=offline was ignored"
    assert (run / "wandb.log").is_file()
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    captured = capfd.readouterr()
    assert "wandb:" not in captured.err + captured.out  # its chatter went to wandb.log
    page = ablate.build_report("runs/tiny", out="reports/_tiny")
    assert page == Path("reports/_tiny/index.html") and page.is_file()


def test_an_override_the_tune_section_picks_is_an_error(tmp_path, capsys):
    exp = {**TINY, "grid": {}, "variants": {}, "report": {"metric": "test/seq_acc"},
           "tune": {"train.lr": [0.001, 0.01], "metric": "val/loss"}}
    assert main(["plan", str(write(tmp_path, exp)), "train.lr=0.1"]) == 2
    err = errors_of(capsys)
    assert "train.lr" in err and "tune" in err and "command line" in err
