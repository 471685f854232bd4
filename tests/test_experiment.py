"""Experiments: planning, validation, run identity, resume, failure isolation, workers, wandb."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ablate import load_results
from ablate.cli import main
from ablate.config import load_experiment
from ablate.experiment.plan import plan, run_id

TINY = {
    "task": {"name": "reverse", "vocab_size": 5, "min_len": 2, "max_len": 4, "n_train": 64, "n_val": 16,
             "n_test": 32},
    "model": {"arch": "gru", "d_model": 16, "n_layers": 1},
    "train": {"max_epochs": 1, "batch_size": 32},
}


def write(tmp_path: Path, exp: dict, name: str = "exp.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(exp, sort_keys=False))
    return p


def tiny(**extra) -> dict:
    return {"name": "tiny", **json.loads(json.dumps(TINY)), **extra}


def cli(*args: str, cwd: Path | None = None, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    env = env or {**os.environ, "WANDB_MODE": "disabled"}
    return subprocess.run([sys.executable, "-m", "ablate", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=600, **kw)


def tree_digest(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(d.rglob("*"))
            if p.is_file()}


# ------------------------------------------------------------------ planning
def test_variants_grid_and_seeds_multiply(tmp_path):
    exp = tiny(seeds=[0, 1, 2], grid={"model.d_model": [8, 16], "model.n_layers": [1, 2]},
               variants={"base": {}, "wide": {"train.lr": 0.01}, "lstm": {"model.arch": "lstm"}})
    p = plan(load_experiment(write(tmp_path, exp)))
    assert len(p.runs) == 3 * 2 * 2 * 3
    assert {r.variant for r in p.runs} == {"base", "wide", "lstm"}
    assert len({r.run_id for r in p.runs}) == len(p.runs)
    labels = {r.label for r in p.runs if r.variant == "wide"}
    assert "wide, model.d_model=8, model.n_layers=2" in labels


def test_runs_that_resolve_to_the_same_config_are_planned_once(tmp_path):
    exp = tiny(seeds=[0, 1], variants={"base": {}, "same": {"train.lr": 1.0e-3}, "gru_again": {"model.arch": "gru"}},
               grid={"model.cell": [None]})
    p = plan(load_experiment(write(tmp_path, exp)))
    assert len(p.runs) == 2  # three variants, one model; two seeds
    assert any("trained once" in n for n in p.notes)
    # A toggle that does not apply (heads on an lstm) is normalised away: one run, not three.
    exp = tiny(grid={"model.arch": ["lstm", "transformer"], "model.n_heads": [1, 2, 4]})
    p = plan(load_experiment(write(tmp_path, exp)))
    assert sorted(r.config.model.arch for r in p.runs) == ["lstm"] + ["transformer"] * 3


def test_grid_values_may_be_mappings(tmp_path):
    exp = tiny(grid={"model": [{"arch": "lstm"}, {"arch": "transformer", "n_heads": 2}]})
    runs = plan(load_experiment(write(tmp_path, exp))).runs
    assert [(r.config.model.arch, getattr(r.config.model, "n_heads", None)) for r in runs] == [("lstm", None),
                                                                                            ("transformer", 2)]


def test_run_id_is_stable_across_key_order_and_yaml_style(tmp_path):
    a = write(tmp_path, tiny(), "a.yaml")
    b = tmp_path / "b.yaml"
    b.write_text("""# the same experiment, written differently
train:
  batch_size: 32
  max_epochs: 1
model: {n_layers: 1, d_model: 16, arch: gru}
name: other_name
task:
  n_test: 32
  n_val: 16
  name: reverse
  max_len: 4
  min_len: 2
  n_train: 64
  vocab_size: 5
""")
    ra, rb = plan(load_experiment(a)).runs, plan(load_experiment(b)).runs
    assert [r.run_id for r in ra] == [r.run_id for r in rb]
    # ...and the same across processes (no hash randomisation) and for explicit defaults.
    c = write(tmp_path, tiny(train={**TINY["train"], "lr": 1.0e-3}), "c.yaml")
    assert plan(load_experiment(c)).runs[0].run_id == ra[0].run_id
    assert run_id(ra[0].config) != run_id(plan(load_experiment(a, ["model.d_model=17"])).runs[0].config)


def test_overrides_apply_to_the_base(tmp_path):
    exp = load_experiment(write(tmp_path, tiny()), ["model.d_model=24", "train.lr=0.01", "seeds=[3,4]"])
    runs = plan(exp).runs
    assert {r.config.model.d_model for r in runs} == {24}
    assert {r.seed for r in runs} == {3, 4}
    assert runs[0].config.train.lr == 0.01


def test_match_params_lands_within_5_percent(tmp_path):
    exp = tiny(grid={"model.arch": ["lstm", "transformer", "cnn", "mlp"]})
    exp["model"] = {"arch": "gru", "match_params": 20000}
    runs = plan(load_experiment(write(tmp_path, exp))).runs
    from ablate.train.sizing import count_params, task_info

    for r in runs:
        n = count_params(r.config.model, task_info(r.config.task))
        assert abs(n - 20000) <= 0.05 * 20000, (r.config.model.arch, n)


# ------------------------------------------------------------------ validation
BAD = [  # (experiment edits, words the message must contain)
    ({"model": {"arch": "transfomer"}}, ["model.arch", "transfomer", "transformer"]),
    ({"model": {"arch": "transformer", "d_model": 30, "n_heads": 4}}, ["model.n_heads", "4", "divisible"]),
    ({"task": {**TINY["task"], "min_len": 9, "max_len": 3}}, ["min_len=9", "max_len=3"]),
    ({"task": {**TINY["task"], "name": "revrse"}}, ["task.name", "revrse", "reverse"]),
    ({"task": {**TINY["task"], "vocab_sise": 5}}, ["task.vocab_sise", "vocab_size"]),
    ({"train": {"max_epochs": 0}}, ["train.max_epochs", "0", "> 0"]),
    ({"train": {"batch_size": "big"}}, ["train.batch_size", "big", "int"]),
    ({"grid": {"model.d_model": 32}}, ["grid.model.d_model", "32", "list"]),
    ({"grid": {"model.pos_encoding": ["sinusoidal", "rotery"]}}, ["model.pos_encoding", "rotery", "rotary"]),
    ({"seeds": "zero"}, ["seeds", "zero", "integers"]),
    ({"modle": {"arch": "gru"}}, ["modle", "model"]),
    # set by a variant (or a grid) yet applying to no run at all: an error (the base section's get a note)
    ({"model": {"arch": "lstm"}, "variants": {"heads": {"model.n_heads": 4}}}, ["model.n_heads", "lstm"]),
    ({"model": {"arch": "lstm", "n_head": 4}}, ["model.n_head", "unknown key", "lstm"]),
    ({"model": {"arch": "lstm", "norm": "mid"}}, ["model.norm", "mid", "pre"]),
    ({"variants": {"bad": {"model.dropout": 1.5}}}, ["model.dropout", "1.5", "[0, 1)"]),
    ({"train": {"optimizer": "sgdd"}}, ["train.optimizer", "sgdd", "adam"]),
    ({"task": {"name": "tsv", "path": "/no/such/file.tsv"}}, ["tsv", "/no/such/file.tsv", "not found"]),
]


@pytest.mark.parametrize("edits,words", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_experiments_exit_2_name_the_culprit_and_write_nothing(tmp_path, capsys, monkeypatch, edits, words):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, {**tiny(), **edits})
    code = main(["run", str(path), "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2
    for w in words:
        assert w in err, (w, err)
    assert str(path) in err
    assert "Traceback" not in err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "reports").exists()


def test_bad_override_and_missing_file_exit_2(tmp_path, capsys):
    assert main(["plan", str(tmp_path / "nope.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err
    path = write(tmp_path, tiny())
    assert main(["plan", str(path), "model.d_model"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_cli_exit_code_2_from_a_real_process(tmp_path):
    path = write(tmp_path, {**tiny(), "model": {"arch": "transfomer"}})
    r = cli("run", str(path), "--runs-dir", str(tmp_path / "runs"))
    assert r.returncode == 2 and "did you mean 'transformer'" in r.stderr
    assert not (tmp_path / "runs").exists()


# ------------------------------------------------------------------ running
def test_failures_are_isolated_and_resume_redoes_only_them(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    diverges = {"model.arch": "mlp", "train.lr": 1.0e20, "train.grad_clip": 0.0, "train.max_epochs": 3}
    exp = tiny(seeds=[0], variants={"ok": {}, "diverges": diverges, "also_ok": {"model.d_model": 8}})
    path = write(tmp_path, exp)
    code = main(["run", str(path), "--runs-dir", "runs", "--no-report"])
    err = capsys.readouterr().err
    assert code == 1
    df = load_results("runs/tiny").set_index("variant")
    assert df.loc["ok", "status"] == "finished" and df.loc["also_ok", "status"] == "finished"
    assert df.loc["diverges", "status"] == "failed"
    assert "FloatingPointError" in df.loc["diverges", "error"] and "nan" in df.loc["diverges", "error"].lower()
    assert "failed: diverges" in err
    failed_dir = Path("runs/tiny") / df.loc["diverges", "run_id"]
    assert "Traceback" in (failed_dir / "traceback.txt").read_text()
    ok_dir = Path("runs/tiny") / df.loc["ok", "run_id"]
    before = tree_digest(ok_dir)
    # Again: finished runs are skipped (files untouched), the failed one is redone (and fails again).
    assert main(["run", str(path), "--runs-dir", "runs", "--no-report"]) == 1
    assert "2 already finished, 1 to run" in capsys.readouterr().err
    assert tree_digest(ok_dir) == before
    # --fresh starts over.
    main(["run", str(path), "--runs-dir", "runs", "--no-report", "--fresh"])
    assert "0 already finished, 3 to run" in capsys.readouterr().err


def test_results_table_has_flattened_config_and_metrics(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, tiny(seeds=[0, 1]))
    assert main(["run", str(path), "--runs-dir", "runs", "--no-report"]) == 0
    df = load_results("runs/tiny")
    assert len(df) == 2 and set(df["seed"]) == {0, 1}
    for col in ("run_id", "status", "model.arch", "model.d_model", "task.name", "train.lr", "test/seq_acc",
                "test/token_acc", "test/loss", "params", "train_time_s", "tokens_per_s"):
        assert col in df.columns, col
    assert (Path("runs/tiny/results.csv")).read_text().startswith("run_id,variant,label,seed,status")
    run_dir = Path("runs/tiny") / df["run_id"][0]
    for f in ("config.yaml", "metrics.csv", "by_length.csv", "result.json", "vocab.json", "checkpoints/best.ckpt"):
        assert (run_dir / f).is_file(), f
    res = json.loads((run_dir / "result.json").read_text())
    assert res["reproduce"]["seed"] in (0, 1) and res["reproduce"]["torch"] and res["checkpoint"]["test_on"] == "best"


def test_same_seed_same_numbers_and_workers_do_not_change_them(tmp_path):
    exp = tiny(seeds=[0, 1], grid={"model.arch": ["gru", "transformer"]})
    exp["model"] = {"arch": "gru", "d_model": 16, "n_layers": 1}
    exp["train"]["max_epochs"] = 2
    path = write(tmp_path, exp)
    r1 = cli("run", str(path), "--runs-dir", str(tmp_path / "w1"), "--no-report", "--workers", "1")
    r2 = cli("run", str(path), "--runs-dir", str(tmp_path / "w2"), "--no-report", "--workers", "2")
    assert r1.returncode == 0 and r2.returncode == 0, r1.stderr + r2.stderr
    cols = ["test/loss", "test/seq_acc", "test/token_acc"]
    a = load_results(tmp_path / "w1/tiny").set_index("run_id").sort_index()[cols]
    b = load_results(tmp_path / "w2/tiny").set_index("run_id").sort_index()[cols]
    assert len(a) == 4 and list(a.index) == list(b.index)
    assert (a["test/seq_acc"] == b["test/seq_acc"]).all()
    assert ((a - b).abs().max().max()) < 1e-4, (a, b)
    # A different seed really changes the numbers.
    assert a["test/loss"].nunique() == 4


def test_killed_grid_resumes_without_losing_or_repeating_a_run(tmp_path):
    exp = tiny(seeds=[0, 1, 2, 3, 4, 5])
    exp["train"]["max_epochs"] = 3
    path = write(tmp_path, exp)
    root = tmp_path / "runs" / "tiny"
    env = {**os.environ, "WANDB_MODE": "disabled"}
    proc = subprocess.Popen([sys.executable, "-m", "ablate", "run", str(path), "--runs-dir", str(tmp_path / "runs"),
                             "--no-report"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                            start_new_session=True)
    deadline = time.time() + 120
    finished: list[Path] = []
    while time.time() < deadline and len(finished) < 2:
        time.sleep(0.1)
        finished = [p.parent for p in root.glob("*/result.json")]
    os.killpg(proc.pid, signal.SIGKILL)  # no chance to clean up
    proc.wait()
    assert 2 <= len(finished) < 6, "the grid should have been killed part-way"
    before = {d.name: tree_digest(d) for d in finished}
    r = cli("run", str(path), "--runs-dir", str(tmp_path / "runs"), "--no-report")
    assert r.returncode == 0, r.stderr
    assert f"{len(before)} already finished, {6 - len(before)} to run" in r.stderr
    assert r.stderr.count("finished in") == 6 - len(before)  # each remaining run trained exactly once
    df = load_results(root)
    assert len(df) == 6 and (df["status"] == "finished").all() and sorted(df["seed"]) == list(range(6))
    for name, digest in before.items():
        assert tree_digest(root / name) == digest  # earlier runs untouched


def test_wandb_offline_writes_its_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    exp = tiny(logger={"wandb": {"project": "ablate-test", "mode": "offline"}})
    path = write(tmp_path, exp)
    assert main(["run", str(path), "--runs-dir", "runs", "--no-report"]) == 0
    runs = list(Path("runs/tiny").glob("*/wandb/offline-run-*"))
    assert len(runs) == 1
    assert any(runs[0].rglob("*.wandb"))


def test_wandb_offline_runs_from_two_directories_in_one_process_both_write(tmp_path, monkeypatch):
    """wandb's service resolves paths in its own working directory: a notebook that changes directory between
    runs lost the second run's files until the run directory was given absolute (and the same config in two
    stores must not share one wandb run either)."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    exp = tiny(logger={"wandb": {"project": "ablate-test", "mode": "offline"}})
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        monkeypatch.chdir(tmp_path / sub)
        assert main(["run", str(write(tmp_path, exp)), "--runs-dir", "runs", "--no-report"]) == 0
    files = [list((tmp_path / sub).rglob("wandb/offline-run-*/*.wandb")) for sub in ("a", "b")]
    assert all(len(f) == 1 for f in files), files
    assert files[0][0].name != files[1][0].name  # one wandb run per store


def test_a_worker_process_that_dies_fails_only_its_own_run(tmp_path):
    (tmp_path / "killer.py").write_text(
        "import os, signal\n"
        "from ablate.tasks import TASKS\n"
        "from ablate.tasks.synthetic import SeqTaskConfig, _check\n"
        "@TASKS.register('killer', config=SeqTaskConfig, check=_check, kind='seq2seq', help='dies')\n"
        "def build(cfg):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n")
    exp = tiny(seeds=[0, 1], variants={"ok": {}, "dies": {"task.name": "killer"}})
    path = write(tmp_path, exp)
    env_path = f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    r = cli("run", str(path), "--runs-dir", str(tmp_path / "runs"), "--no-report", "--workers", "2",
            "--plugin", "killer", env={**os.environ, "WANDB_MODE": "disabled", "PYTHONPATH": env_path})
    assert r.returncode == 1, r.stderr
    df = load_results(tmp_path / "runs/tiny")
    assert sorted(zip(df["variant"], df["status"])) == [("dies", "failed")] * 2 + [("ok", "finished")] * 2
    assert df.loc[df["variant"] == "dies", "error"].str.contains("worker process died").all()


def test_a_worker_that_dies_while_the_next_run_is_handed_out_fails_only_its_own_run(tmp_path, monkeypatch):
    """The pool can break between two submissions: submit() then raises BrokenProcessPool. That crashed the
    driver (CI, 1 in 10 runs) and lost both runs; the run being handed out must be retried, the dead one fail."""
    from ablate.experiment.executors import LocalExecutor
    from ablate.experiment.worker import RunSpec

    died = tmp_path / "died"
    (tmp_path / "killer2.py").write_text(
        "import os, signal\n"
        "from ablate.tasks import TASKS\n"
        "from ablate.tasks.synthetic import SeqTaskConfig, _check\n"
        "@TASKS.register('killer2', config=SeqTaskConfig, check=_check, kind='seq2seq', help='dies')\n"
        "def build(cfg):\n"
        f"    open({str(died)!r}, 'w').close()\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # spawned workers inherit sys.path
    __import__("killer2")  # its task is checked when planning
    exp = tiny(variants={"dies": {"task.name": "killer2"}, "ok": {}})
    runs = plan(load_experiment(write(tmp_path, exp))).runs
    specs = [RunSpec(r.run_id, "tiny", r.variant, r.label, r.config, ("killer2",)) for r in runs]
    assert [s.variant for s in specs] == ["dies", "ok"]

    def on_start(spec: RunSpec) -> bool:
        if spec.variant == "ok" and not died.exists():  # hand "ok" out only once "dies" has killed its worker
            deadline = time.time() + 60
            while not died.exists() and time.time() < deadline:
                time.sleep(0.05)
            time.sleep(1.0)  # the pool notices the dead worker
        (tmp_path / "runs" / spec.run_id).mkdir(parents=True, exist_ok=True)
        return True

    done: dict[str, list[str]] = {}
    LocalExecutor(workers=2).run(specs, tmp_path / "runs", lambda spec, res: done.setdefault(
        spec.variant, []).append(res["status"]), on_start)
    assert done == {"dies": ["failed"], "ok": ["finished"]}


def test_ctrl_c_stops_cleanly_and_keeps_what_finished(tmp_path):
    exp = tiny(seeds=[0, 1, 2, 3, 4, 5])
    exp["train"]["max_epochs"] = 3
    path = write(tmp_path, exp)
    root = tmp_path / "runs" / "tiny"
    proc = subprocess.Popen([sys.executable, "-m", "ablate", "run", str(path), "--runs-dir", str(tmp_path / "runs"),
                             "--no-report"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "WANDB_MODE": "disabled"}, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list(root.glob("*/result.json")):
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    df = load_results(root)  # results.csv was rebuilt on the way out
    assert len(df) >= 1 and (df["status"] == "finished").all()
    assert len(df) == len(list(root.glob("*/result.json"))) < 6
