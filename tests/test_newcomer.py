"""The rough edges a new user hits (issue 24): bad output paths, empty experiments, override errors that read
once, and a Python API that reads like one. Each test runs in well under a second: nothing here trains."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
import yaml

import ablate
from ablate.cli import EXITS, main

TINY = {"name": "tiny",
        "task": {"name": "reverse", "vocab_size": 5, "min_len": 2, "max_len": 4, "n_train": 32, "n_val": 8,
                 "n_test": 8},
        "model": {"arch": "transformer", "d_model": 16, "n_layers": 1, "n_heads": 2},
        "train": {"max_epochs": 1, "batch_size": 32}}


def write(tmp_path: Path, exp, name: str = "tiny.yaml") -> Path:
    p = tmp_path / name
    p.write_text(exp if isinstance(exp, str) else yaml.safe_dump(exp, sort_keys=False))
    return p


def fake_runs(root: Path, runs: dict[str, tuple[str, int]]) -> Path:
    """runs/<name> with finished runs {run_id: (label, seed)} as the store writes them (no training)."""
    root.mkdir(parents=True)
    (root / "experiment.yaml").write_text(yaml.safe_dump(TINY))
    for rid, (label, seed) in runs.items():
        (root / rid).mkdir()
        (root / rid / "config.yaml").write_text(f"seed: {seed}\n")
        (root / rid / "result.json").write_text(json.dumps({"status": "finished", "label": label,
                                                            "metrics": {"test/seq_acc": 0.5}}))
    return root


def one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in captured.err, captured.err
    return lines[0]


# ------------------------------------------------------------------ 1. bad output paths
def test_an_output_path_under_a_file_or_unwritable_fails_in_one_line_and_writes_nothing(tmp_path, capsys,
                                                                                         monkeypatch):
    exp = write(tmp_path, TINY)
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    assert main(["data", str(exp), "--out", str(a_file / "data")]) == 2
    line = one_error_line(capsys)
    assert "--out" in line and str(a_file / "data") in line and "directory" in line
    runs = fake_runs(tmp_path / "runs" / "tiny", {"0123456789ab": ("base", 0)})
    assert main(["report", str(runs), "--out", str(a_file / "report")]) == 2
    assert "--out" in one_error_line(capsys)

    # A folder the user may not write (or a read-only file system): root ignores permissions, so say it is one.
    def refuse(*args, **kwargs):
        raise OSError(30, "Read-only file system", str(tmp_path / "ro"))

    monkeypatch.setattr("tempfile.mkstemp", refuse)
    assert main(["data", str(exp), "--out", str(tmp_path / "ro")]) == 2
    line = one_error_line(capsys)
    assert "--out" in line and "Read-only file system" in line
    assert not (tmp_path / "ro").exists(), "nothing half-written, not even the folder made for the check"


# ------------------------------------------------------------------ 2. empty experiments
@pytest.mark.parametrize("text, missing", [("", "holds no keys"), ("# only a comment\n\n", "holds no keys"),
                                           ("model: {arch: mlp}\n", "task")])
def test_an_empty_or_taskless_experiment_is_refused_naming_what_is_missing(tmp_path, capsys, text, missing):
    assert main(["plan", str(write(tmp_path, text, "mine.yaml"))]) == 2
    line = one_error_line(capsys)
    assert missing in line and "task: {name:" in line and "mine.yaml" in line


def test_a_task_set_by_every_variant_needs_no_base_task(tmp_path):
    exp = {k: v for k, v in TINY.items() if k != "task"}
    exp["variants"] = {"a": {"task": TINY["task"]}, "b": {"task": {**TINY["task"], "name": "copy"}}}
    assert len(ablate.plan(write(tmp_path, exp))) == 2


# ------------------------------------------------------------------ 3. override errors read once
def test_an_override_typo_is_printed_once_without_an_unrelated_grid_point(tmp_path, capsys):
    exp = write(tmp_path, {**TINY, "grid": {"model.arch": ["mlp", "cnn", "lstm", "transformer"]}})
    assert main(["plan", str(exp), "model.d_modle=32"]) == 2
    line = one_error_line(capsys)
    assert line.startswith("error: command line: model.d_modle=32: unknown key; did you mean 'd_model'?"), line
    assert "model.arch=" not in line
    # A problem that differs by row keeps the row it is about: that grid point is not unrelated.
    exp = write(tmp_path, {**TINY, "grid": {"model.d_model": [16, 32]}})
    assert main(["plan", str(exp), "model.n_heads=3"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "(model.d_model=16)" in err[0] and "d_model=32 is not divisible" in err[1]


@pytest.mark.parametrize("override, says", [("model.d_model=16,,32", "empty value"),
                                            ("model.d_model=16,32,", "empty value"),
                                            ("model.n_layers=1,1", "repeats the value 1")])
def test_an_empty_or_repeated_grid_value_is_named(tmp_path, capsys, override, says):
    assert main(["plan", str(write(tmp_path, TINY)), override]) == 2
    line = one_error_line(capsys)
    assert says in line and override.partition("=")[0] in line and "command line" in line


@pytest.mark.parametrize("text, line_no, expected", [
    ("name: x\ntask: {name: reverse\nmodel: {arch: mlp}\n", "line 3", "expected ',' or '}'"),
    ("name: x\ntask:\n  name: reverse\n   max_len: 3\n", "line 4", "expected one `key: value` a line"),
    ("name: x\ntask:\n\tname: reverse\n", "line 3", "expected spaces")])
def test_a_yaml_error_names_the_line_and_what_was_expected(tmp_path, capsys, text, line_no, expected):
    assert main(["plan", str(write(tmp_path, text))]) == 2
    line = one_error_line(capsys)
    assert line_no in line and expected in line


def test_a_subcommand_usage_error_prints_its_usage_and_its_help_only_its_exit_codes(capsys):
    with pytest.raises(SystemExit) as e:
        main(["report", "runs/x", "--stray"])  # several RUNS_DIRs are valid (one report over them)
    assert e.value.code == 2
    assert "usage: ablate report" in capsys.readouterr().err
    for command, codes in EXITS.items():
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = " ".join(capsys.readouterr().out.split())
        assert codes in out, command
        assert ("1 some runs failed" in out) == (command == "run"), command


# ------------------------------------------------------------------ 4. logging after the fact
def test_ablate_list_shows_the_train_eval_and_logger_options_with_defaults(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for line in ("train.lr=0.001", "train.max_epochs=10", "eval.beam_size=1", "logger.tensorboard=False",
                 "logger.wandb.mode=unset [disabled|offline|online]"):
        assert line in out, line


def test_tensorboard_without_its_extra_is_a_one_line_error_naming_it(tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    assert main(["plan", str(write(tmp_path, {**TINY, "seeds": [0, 1]})), "logger.tensorboard=true"]) == 2
    line = one_error_line(capsys)
    assert "logger.tensorboard" in line and "pip install 'ablate[tensorboard]'" in line


def test_a_logger_turned_on_after_the_runs_finished_fills_tensorboard_and_names_what_it_did_not(tmp_path,
                                                                                                 monkeypatch):
    """Finished runs are not trained again: TensorBoard gets their metrics.csv; W&B is named per run."""
    import io

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    exp = write(tmp_path, {**TINY, "seeds": [0, 1]})
    runs = ablate.plan(exp)
    for r in runs:  # finished earlier, with no logger but the CSV
        d = Path("runs/tiny") / r.run_id
        d.mkdir(parents=True)
        (d / "config.yaml").write_text(f"seed: {r.seed}\n")
        (d / "result.json").write_text(json.dumps({"status": "finished", "label": r.label}))
        (d / "metrics.csv").write_text("epoch,step,train/loss,val/loss,val/seq_acc\n0,9,1.5,,\n0,9,,1.2,0.25\n")
    (Path("runs/tiny") / runs[0].run_id / "wandb" / "offline-run-1").mkdir(parents=True)  # this one had W&B
    out = io.StringIO()
    df = ablate.run(exp, overrides=["logger.tensorboard=true"], report=False, out=out)
    assert list(df["status"]) == ["finished", "finished"]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for r in runs:
        events = EventAccumulator(str(Path("runs/tiny") / r.run_id / "tensorboard")).Reload()
        assert [(e.step, round(e.value, 3)) for e in events.Scalars("val/seq_acc")] == [(9, 0.25)]
        assert {"train/loss", "val/loss", "val/seq_acc"} <= set(events.Tags()["scalars"])
    text = out.getvalue()
    notes = [line for line in text.splitlines() if "not re-logged" in line]
    assert len(notes) == 1 and runs[1].run_id in notes[0] and "W&B" in notes[0], text
    assert "wandb sync runs/tiny/*/wandb/offline-run-*" in text


def test_the_wandb_run_is_named_by_its_row_and_seed(tmp_path, monkeypatch):
    from ablate.config import build_run
    from ablate.train import tracking

    seen = {}

    class FakeWandb:
        def __init__(self, **kwargs):
            seen.update(kwargs)
            self.experiment = None

    monkeypatch.setattr("pytorch_lightning.loggers.WandbLogger", FakeWandb)
    monkeypatch.setattr(tracking, "capture_wandb_output", lambda run_dir: None)
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg, _ = build_run({k: TINY[k] for k in ("task", "model", "train")}, 1, "here")
    tracking.make_loggers(cfg, tmp_path, {"run_id": "0123456789ab", "label": "no_pe, model.n_heads=2"})
    assert seen["name"] == "no_pe, model.n_heads=2, seed 1" and seen["mode"] == "offline"


# ------------------------------------------------------------------ 5. committed reports are left alone
def test_a_report_of_another_experiment_is_left_alone_unless_forced(tmp_path, monkeypatch, capsys):
    """The README's `ablate run experiments/quickstart.yaml <overrides>` once rewrote reports/quickstart/: a
    default report folder whose manifest names another experiment now gets its report beside it."""
    import io

    from ablate.api import write_report
    from ablate.report.manifest import read_manifest, write_manifest

    monkeypatch.chdir(tmp_path)
    built = []
    monkeypatch.setattr("ablate.report.page.build_report", lambda root, dest, *_: built.append(Path(dest)) or dest)
    runs = fake_runs(Path("runs/tiny"), {"0123456789ab": ("base", 0)})
    committed = Path("reports/tiny")
    write_manifest(committed, {**TINY, "train": {**TINY["train"], "lr": 0.5}}, ["fedcba987654"])  # other lr
    out = io.StringIO()
    write_report(runs, None, out)  # what `ablate run` does at the end
    assert built == [Path("reports/_tiny")] and "reports/_tiny" in out.getvalue() and "--force" in out.getvalue()
    assert main(["report", "runs/tiny"]) == 0  # `ablate report` without --out: the same
    assert built[-1] == Path("reports/_tiny") and "reports/_tiny" in capsys.readouterr().err
    assert read_manifest(committed)["run_ids"] == ["fedcba987654"], "the committed report was touched"
    assert main(["report", "runs/tiny", "--force"]) == 0 and built[-1] == committed
    write_manifest(committed, yaml.safe_load((runs / "experiment.yaml").read_text()), ["0123456789ab"])
    write_report(runs, None, io.StringIO())  # the same experiment again (more runs, a rerun): its own folder
    assert built[-1] == committed


# ------------------------------------------------------------------ 6. the Python API
def test_the_api_has_real_signatures_a_runs_dir_a_stable_order_and_short_runs(tmp_path):
    for name, params in (("run", {"experiment", "overrides", "workers", "runs_dir", "force"}),
                         ("plan", {"experiment", "overrides", "runs_dir"}), ("build_report", {"runs_dir", "out"}),
                         ("load_results", {"path"})):
        fn = getattr(ablate, name)
        assert params <= set(inspect.signature(fn).parameters), name
        assert "runs_dir" in (fn.__doc__ or "") or name == "load_results", name
    exp = write(tmp_path, {**TINY, "seeds": [0, 1], "tune": {"train.lr": [0.001, 0.01]}})
    runs = ablate.plan(exp, runs_dir=tmp_path / "runs")  # nothing tuned there yet: 2 candidates, seed 1 waits
    assert [r.run_id == "-" for r in runs] == [False, False, True] and {r.tuned["train.lr"] for r in runs[:2]} == {
        0.001, 0.01}
    planned = ablate.plan(write(tmp_path, TINY))[0]
    assert "\n" not in repr(planned) and len(repr(planned)) < 120 and planned.run_id in repr(planned)
    root = fake_runs(tmp_path / "store" / "tiny", {"0aaa00000000": ("z", 0), "1bbb00000000": ("a", 1),
                                                   "2ccc00000000": ("a", 0)})
    df = ablate.load_results(root)
    assert list(zip(df["label"], df["seed"])) == [("a", 0), ("a", 1), ("z", 0)] and list(df.index) == [0, 1, 2]


# ------------------------------------------------------------------ 7. the README, for a newcomer
def test_the_readme_puts_use_first_and_says_once_where_each_command_writes():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    headings = [line for line in readme.splitlines() if line.startswith("## ")]
    assert headings[:2] == ["## Use", "## What the shipped experiments show"], headings[:3]
    assert "make install" in readme.split("## Use")[0]
    where = readme[readme.index("Where each command writes"):readme.index("### Python API")]
    for command in ("`ablate run`", "`ablate report RUNS_DIR`", "`ablate data`", "`ablate attend RUN_DIR`",
                    "`ablate plan`, `ablate list`", "`make quickstart`"):
        assert f"| {command} |" in where, command
    assert readme.count("Runs go to `runs/<name>/<run_id>/`") == 0  # said in the table, not again in prose
    assert "docs/architecture.md" in readme and (Path(__file__).resolve().parents[1] / "docs/architecture.md").is_file()
