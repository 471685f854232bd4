"""The open model layer from the outside: overriding the arch of a file, and a plugin that adds an arch with an
option of its own and a positional encoding, driven through `ablate list / plan / run / report`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ablate.cli import main

PLUGINS = Path(__file__).parent / "plugins"
TRANSFORMER_FILE = {
    "name": "override",
    "task": {"name": "reverse", "vocab_size": 5, "min_len": 2, "max_len": 4, "n_train": 32, "n_val": 8,
             "n_test": 8},
    "model": {"arch": "transformer", "d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32, "d_k": 8,
              "pos_encoding": "rotary"},
    "train": {"max_epochs": 1, "batch_size": 16},
}


def write(tmp_path: Path, exp: dict) -> Path:
    path = tmp_path / f"{exp['name']}.yaml"
    path.write_text(yaml.safe_dump(exp, sort_keys=False))
    return path


def test_overriding_the_arch_runs_with_one_note_naming_the_keys_that_do_not_apply(tmp_path, capsys):
    path = write(tmp_path, {**TRANSFORMER_FILE, "seeds": [0, 1], "grid": {"train.lr": [1.0e-3, 3.0e-3]}})
    code = main(["run", str(path), "model.arch=lstm", "--runs-dir", str(tmp_path / "runs"), "--no-report"])
    out = capsys.readouterr()
    assert code == 0, out.err
    notes = [line for line in (out.out + out.err).splitlines() if "do not apply" in line]
    assert notes == ["note: model.n_heads, model.d_ff, model.d_k, model.pos_encoding do not apply to arch 'lstm': "
                     "ignored for these runs"], notes
    results = [json.loads(p.read_text()) for p in (tmp_path / "runs/override").glob("*/result.json")]
    assert len(results) == 4 and all(r["status"] == "finished" for r in results)
    config = yaml.safe_load(next((tmp_path / "runs/override").glob("*/config.yaml")).read_text())
    assert config["model"]["arch"] == "lstm" and "n_heads" not in config["model"]


@pytest.mark.parametrize("edit,words", [
    ({"variants": {"wide": {"model.n_heads": 4}}}, ["model.n_heads", "does not apply", "lstm"]),
    ({"grid": {"model.norm": ["pre", "post"]}}, ["model.norm", "does not apply", "lstm"]),
    ({"model": {**TRANSFORMER_FILE["model"], "n_haeds": 2}}, ["model.n_haeds", "unknown key", "n_heads"]),
    ({"model": {**TRANSFORMER_FILE["model"], "norm": "mid"}}, ["model.norm", "mid", "post"]),
    ({"model": {**TRANSFORMER_FILE["model"], "d_ff": -3}}, ["model.d_ff", "-3"]),
])
def test_overriding_the_arch_keeps_real_mistakes_errors(tmp_path, capsys, edit, words):
    path = write(tmp_path, {**TRANSFORMER_FILE, **edit})
    code = main(["plan", str(path), "model.arch=lstm", "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2
    for w in words:
        assert w in err, (w, err)


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "disabled",
           "PYTHONPATH": os.pathsep.join([str(PLUGINS), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "ablate", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=600)


def test_a_plugin_adds_an_arch_with_its_own_option_and_a_positional_encoding(tmp_path):
    exp = {
        "name": "toy",
        "task": TRANSFORMER_FILE["task"],
        "model": {"arch": "toy_lm", "d_model": 16, "n_layers": 1, "ff_mult": 3},
        "train": {"max_epochs": 1, "batch_size": 16},
        "variants": {"decay": {}, "sinusoidal": {"model.pos_encoding": "sinusoidal"}},
        "grid": {"model.ff_mult": [1, 3]},
    }
    path = write(tmp_path, exp)

    listed = cli("--plugin", "toy_arch", "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "toy_lm" in listed.stdout and "distance_decay" in listed.stdout
    assert "ff_mult=2" in listed.stdout and "feed-forward width as a multiple of d_model" in listed.stdout

    without = cli("plan", str(path), cwd=tmp_path)  # no plugin: the arch is unknown, and the error says so
    assert without.returncode == 2 and "toy_lm" in without.stderr

    planned = cli("--plugin", "toy_arch", "plan", str(path), cwd=tmp_path)
    assert planned.returncode == 0, planned.stderr
    assert planned.stdout.count("toy_lm") == 4 and "4 runs (4 new" in planned.stdout

    bad = cli("--plugin", "toy_arch", "plan", str(path), "model.n_heads=0", cwd=tmp_path)
    assert bad.returncode == 2 and "model.n_heads" in bad.stderr and "0" in bad.stderr

    ran = cli("--plugin", "toy_arch", "run", str(path), "--runs-dir", "runs", "--no-report", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr[-3000:]
    configs = [yaml.safe_load(p.read_text()) for p in (tmp_path / "runs/toy").glob("*/config.yaml")]
    assert sorted((c["model"]["pos_encoding"], c["model"]["ff_mult"]) for c in configs) == [
        ("distance_decay", 1), ("distance_decay", 3), ("sinusoidal", 1), ("sinusoidal", 3)]
    params = {(c["model"]["pos_encoding"], c["model"]["ff_mult"]): json.loads(
        (tmp_path / "runs/toy" / c["run"]["id"] / "result.json").read_text())["params"] for c in configs}
    assert params[("distance_decay", 3)] > params[("distance_decay", 1)]  # the arch's own option builds the model

    reported = cli("--plugin", "toy_arch", "report", "runs/toy", "--out", "report", cwd=tmp_path)
    assert reported.returncode == 0, reported.stderr[-3000:]
    table = (tmp_path / "report/table.md").read_text()
    assert "decay" in table and "sinusoidal" in table and "ff mult" in table


@pytest.mark.parametrize("edit,words", [
    ({"slurm": {"time_min": 0}}, ["slurm.time_min", "0", ">= 1"]),  # was never checked before
    ({"train": {"monitor": "val/seq_ac"}}, ["train.monitor", "val/seq_ac", "val/seq_acc"]),
    ({"logger": {"wandb": {"mode": "onlin"}}}, ["logger.wandb.mode", "onlin", "online"]),
    ({"train": {"label_smoothing": 1.0}}, ["train.label_smoothing", "[0, 1)"]),
])
def test_every_section_validates_through_its_dataclass(tmp_path, capsys, edit, words):
    path = write(tmp_path, {**TRANSFORMER_FILE, **edit})
    assert main(["plan", str(path), "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    for w in words:
        assert w in err, (w, err)


def test_every_option_of_every_section_carries_its_help():
    from dataclasses import fields

    from ablate.config import SlurmConfig, TrainConfig, WandbConfig
    from ablate.models import ARCHS

    classes = [TrainConfig, WandbConfig, SlurmConfig, *(ARCHS.meta(a)["config"] for a in ARCHS.names())]
    missing = [f"{c.__name__}.{f.name}" for c in classes for f in fields(c) if not f.metadata.get("help")]
    assert not missing, missing


def test_planning_imports_no_torch(tmp_path):
    """Validation reads component names and options from declarations; torch loads only to build a model."""
    path = write(tmp_path, {**TRANSFORMER_FILE, "variants": {"a": {}, "b": {"model.pos_encoding": "learned"}}})
    code = ("import sys; from ablate.config import load_experiment; from ablate.experiment.plan import plan; "
            f"plan(load_experiment({str(path)!r})); print('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"
