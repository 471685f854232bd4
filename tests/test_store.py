"""The run store under stress: concurrent drivers and claims, resume inside a run, bad or full run stores.

Drivers run as subprocesses where the behaviour is about processes (two drivers at once, SIGKILL); the rest
run in-process through ablate.cli.main on tiny experiments, so the whole module takes well under a minute.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
import yaml

from ablate import load_results
from ablate.cli import main
from ablate.config import load_experiment
from ablate.experiment.claims import CLAIM, HOST, Claims, is_stale, read_claim
from ablate.experiment.plan import plan

TINY = {
    "task": {"name": "reverse", "vocab_size": 5, "min_len": 2, "max_len": 4, "n_train": 32, "n_val": 8,
             "n_test": 16},
    "model": {"arch": "gru", "d_model": 16, "n_layers": 1},
    "train": {"max_epochs": 1, "batch_size": 32},
}
ENV = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}


def write(tmp_path: Path, exp: dict, name: str = "exp.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(exp, sort_keys=False))
    return p


def tiny(**extra) -> dict:
    return {"name": "tiny", **json.loads(json.dumps(TINY)), **extra}


def ablate(*args: str) -> list[str]:
    return [sys.executable, "-m", "ablate", *args]


def results(root: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(root.glob("*/result.json"))}


def dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def claim_file(run_dir: Path, **fields) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    now = time.time()
    rec = {"owner": "someoneelse", "host": HOST, "pid": dead_pid(), "started": now, "heartbeat": now, **fields}
    (run_dir / CLAIM).write_text(json.dumps(rec))


# ------------------------------------------------------------------ claims
def test_two_drivers_on_one_experiment_train_each_run_once(tmp_path):
    path = write(tmp_path, tiny(seeds=list(range(12))))
    root = tmp_path / "runs" / "tiny"
    cmd = ablate("run", str(path), "--runs-dir", str(tmp_path / "runs"), "--no-report")
    a = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV)
    time.sleep(0.3)
    b = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV)
    err_a, err_b = a.communicate(timeout=300)[1], b.communicate(timeout=300)[1]
    assert a.returncode == 0 and b.returncode == 0, err_a + err_b
    got = results(root)
    assert len(got) == 12 and all(r["status"] == "finished" for r in got.values())
    # The claim records say who trained each run: exactly one of the two drivers, never taken over, and each
    # driver trained exactly the runs it reports finishing (so no run directory had two writers).
    by_pid = {a.pid: set(), b.pid: set()}
    for rid, r in got.items():
        assert r["claim"]["pid"] in by_pid and r["claim"]["host"] == HOST, r["claim"]
        assert "took_over" not in r["claim"]
        by_pid[r["claim"]["pid"]].add(rid)
    for proc, err in ((a, err_a), (b, err_b)):
        trained = {line.split("(")[1].split(")")[0] for line in err.splitlines() if ": finished in" in line}
        assert trained == by_pid[proc.pid], err
    assert by_pid[a.pid] and by_pid[b.pid], "both drivers should have trained some runs"
    assert "running elsewhere" in err_a + err_b
    assert not list(root.glob(f"*/{CLAIM}")), "every claim is released at the end"
    assert len(load_results(root)) == 12


def test_dead_or_stale_claims_are_taken_over_live_ones_are_left_alone(tmp_path, capsys):
    path = write(tmp_path, tiny(seeds=[0, 1]))
    p = plan(load_experiment(path))
    root = tmp_path / "runs" / "tiny"
    dead, remote = (root / r.run_id for r in p.runs)
    gone = dead_pid()
    claim_file(dead, pid=gone)  # this host, its pid gone: stale at once
    claim_file(remote, host="another-host", pid=1)  # another host, fresh heartbeat: alive
    argv = ["run", str(path), "--runs-dir", str(tmp_path / "runs"), "--no-report"]
    assert main([*argv, "--no-wait"]) == 0
    err = capsys.readouterr().err
    assert f"running elsewhere: base seed 1 ({remote.name}) by driver someoneelse on another-host" in err
    assert f"still running elsewhere: base seed 1 ({remote.name})" in err
    took = json.loads((dead / "result.json").read_text())["claim"]["took_over"]
    assert took["pid"] == gone and took["owner"] == "someoneelse"
    assert read_claim(remote)["host"] == "another-host" and not (remote / "result.json").exists()
    # Its heartbeat stops: after --stale-after seconds the claim is stale and this driver takes the run.
    claim_file(remote, host="another-host", pid=1, heartbeat=time.time() - 10)
    assert main([*argv, "--stale-after", "5"]) == 0
    r = json.loads((remote / "result.json").read_text())
    assert r["status"] == "finished" and r["claim"]["took_over"]["host"] == "another-host"


def test_a_driver_waits_for_a_run_held_elsewhere_then_trains_it_when_released(tmp_path, capsys):
    path = write(tmp_path, tiny(seeds=[0]))
    run_dir = tmp_path / "runs" / "tiny" / plan(load_experiment(path)).runs[0].run_id
    claim_file(run_dir, host="another-host", pid=1)
    threading.Timer(1.5, lambda: (run_dir / CLAIM).unlink()).start()  # the other driver stops (Ctrl-C)
    assert main(["run", str(path), "--runs-dir", str(tmp_path / "runs"), "--no-report"]) == 0
    err = capsys.readouterr().err
    assert "waiting for 1 run(s) running elsewhere" in err and ": finished in" in err
    assert json.loads((run_dir / "result.json").read_text())["status"] == "finished"


def test_claims_heartbeat_while_held_and_go_when_released(tmp_path):
    claims = Claims(stale_after=60, heartbeat_s=0.2)
    ok, rec = claims.try_claim(tmp_path / "r")
    assert ok and rec["pid"] == os.getpid()
    first = read_claim(tmp_path / "r")["heartbeat"]
    time.sleep(0.7)
    assert read_claim(tmp_path / "r")["heartbeat"] > first
    other = Claims(stale_after=60)
    assert other.try_claim(tmp_path / "r") == (False, read_claim(tmp_path / "r"))  # live owner: left alone
    assert not is_stale(read_claim(tmp_path / "r"), 60)
    claims.close()
    assert read_claim(tmp_path / "r") is None
    assert other.try_claim(tmp_path / "r")[0]
    other.close()


# ------------------------------------------------------------------ resume inside a run
RESUME = {
    "name": "resume",
    "task": {"name": "reverse", "vocab_size": 6, "min_len": 2, "max_len": 6, "n_train": 200, "n_val": 16,
             "n_test": 32},
    "model": {"arch": "transformer", "d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32, "dropout": 0.1},
    "train": {"max_epochs": 10, "batch_size": 32, "lr": 3.0e-3, "resume_every_s": 0},  # a resume state each epoch
    "seeds": [3],
}
TIMING = {"train_time_s", "eval_time_s", "test_time_s", "fit_time_s", "tokens_per_s", "decode_tokens_per_s",
          "peak_mem_mb", "wall_s", "started", "claim", "resumed_at_step", "reproduce", "flops_per_s",
          "flops_utilization", "seconds_to_target"}


def curves(path: Path) -> list[dict[str, str]]:
    """metrics.csv's rows without its wall-clock column (train/seconds): everything else must resume exactly."""
    import csv

    return [{k: v for k, v in row.items() if k != "train/seconds"} for row in csv.DictReader(path.open())]


def test_sigkill_mid_run_then_rerun_resumes_with_identical_test_metrics(tmp_path, capsys, monkeypatch):
    # The in-process runs take the killed subprocess's thread count (ENV): a different count sums floats in
    # another order, which changes the last digits whether or not a run was resumed.
    monkeypatch.setenv("OMP_NUM_THREADS", ENV["OMP_NUM_THREADS"])
    path = write(tmp_path, RESUME)
    args = ["--no-report"]
    assert main(["run", str(path), "--runs-dir", str(tmp_path / "ref"), *args]) == 0  # uninterrupted
    (want,) = results(tmp_path / "ref" / "resume").values()

    root = tmp_path / "killed" / "resume"
    proc = subprocess.Popen(ablate("run", str(path), "--runs-dir", str(tmp_path / "killed"), *args), env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (list(root.glob("*/checkpoints/last.ckpt")) and validations(root) >= 2):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # no chance to clean up
    proc.wait()
    (run_dir,) = [d for d in root.iterdir() if d.is_dir()]
    assert not (run_dir / "result.json").exists(), "the run should have been killed mid-way"
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    capsys.readouterr()
    assert main(["run", str(path), "--runs-dir", str(tmp_path / "killed"), *args]) == 0
    assert "from its checkpoint" in capsys.readouterr().err
    got = json.loads((run_dir / "result.json").read_text())
    assert got["resumed_at_step"] > 0  # it did continue, not start over
    assert {k: v for k, v in got.items() if k not in TIMING} == {k: v for k, v in want.items() if k not in TIMING}
    assert got["metrics"] == want["metrics"]  # every test metric, exactly
    assert curves(run_dir / "metrics.csv") == curves(tmp_path / "ref" / "resume" / run_dir.name / "metrics.csv")
    assert not (run_dir / "checkpoints" / "last.ckpt").exists()  # the run finished: its resume state is gone


def validations(root: Path) -> int:
    """Validations recorded so far (metrics.csv is flushed with every checkpoint)."""
    import csv

    rows = [row for p in root.glob("*/metrics.csv") for row in csv.DictReader(p.read_text().splitlines())]
    return sum(bool(row.get("val/loss")) for row in rows)


class Interrupted(Exception):
    pass


def test_a_run_stopped_mid_epoch_resumes_to_the_same_numbers(tmp_path, fit_interrupted):
    """Validation (so a checkpoint) every 2 of an epoch's 4 batches; stopped after the 3rd: mid-epoch 1."""
    from ablate.config import build_run
    from ablate.train.fit import fit

    tree = {**json.loads(json.dumps(RESUME)), "train": {"max_epochs": 3, "batch_size": 32, "val_every_n_steps": 2}}
    tree["task"]["n_train"] = 128
    cfg, _ = build_run({k: v for k, v in tree.items() if k not in ("name", "seeds")}, 0, "test")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    want = fit(cfg, tmp_path / "a")
    got = fit_interrupted(cfg, tmp_path / "b", after=3)
    assert got["resumed_at_step"] == 6 and 6 % 4  # resumed inside epoch 1
    assert got["metrics"] == want["metrics"] and got["best_val"] == want["best_val"]
    assert (got["epochs"], got["steps"]) == (want["epochs"], want["steps"])
    assert curves(tmp_path / "a" / "metrics.csv") == curves(tmp_path / "b" / "metrics.csv")


def test_a_run_interrupted_as_its_target_is_reached_stops_there_on_resume(tmp_path, monkeypatch):
    from ablate.config import build_run
    from ablate.train import checkpointing
    from ablate.train.fit import fit

    tree = {**json.loads(json.dumps(RESUME)), "train": {"max_epochs": 4, "batch_size": 32, "resume_every_s": 0,
                                                         "target": {"metric": "val/loss", "value": 100.0}}}
    cfg, _ = build_run({k: v for k, v in tree.items() if k not in ("name", "seeds")}, 0, "test")
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
    want = fit(cfg, tmp_path / "a")
    assert want["steps_to_target"] == want["steps"] < 4 * 7  # stopped at the first validation
    real = checkpointing.ResumeCheckpoint.on_validation_end

    def stop_after_saving(self, trainer, pl_module):
        real(self, trainer, pl_module)
        raise Interrupted  # killed right after the checkpoint that saw the target reached

    monkeypatch.setattr(checkpointing.ResumeCheckpoint, "on_validation_end", stop_after_saving)
    with pytest.raises(Interrupted):
        fit(cfg, tmp_path / "b")
    monkeypatch.setattr(checkpointing.ResumeCheckpoint, "on_validation_end", real)
    got = fit(cfg, tmp_path / "b")
    assert got["resumed_at_step"] == want["steps"]
    assert (got["steps"], got["steps_to_target"], got["metrics"]) == (want["steps"], want["steps_to_target"],
                                                                      want["metrics"])


def test_the_train_sampler_restores_its_place_mid_epoch():
    from ablate.train.checkpointing import ResumableBatchSampler

    def sampler():
        return ResumableBatchSampler(torch.utils.data.RandomSampler(range(50), generator=torch.Generator()
                                                                    .manual_seed(7)), 8)

    whole = sampler()
    epochs = [list(whole) for _ in range(3)]
    run = sampler()
    list(run)  # epoch 0
    it = iter(run)
    taken = [next(it) for _ in range(3)]  # 3 batches into epoch 1, then saved
    state = run.state_dict()
    resumed = sampler()
    resumed.load_state_dict(state)
    assert taken + list(resumed) == epochs[1] and list(resumed) == epochs[2]
    ended = sampler()
    list(ended)
    again = sampler()
    again.load_state_dict(ended.state_dict())  # saved between epochs: the next one starts afresh
    assert list(again) == epochs[1]
    # A multi-device run's shard: the order is a function of the epoch, which the state carries.
    from torch.utils.data import DistributedSampler

    def shard():
        return ResumableBatchSampler(DistributedSampler(range(50), num_replicas=2, rank=1, seed=0), 4)

    whole, run = shard(), shard()
    whole.sampler.set_epoch(1)
    run.sampler.set_epoch(1)
    it = iter(run)
    taken = [next(it) for _ in range(2)]
    resumed = shard()  # a fresh process: epoch 0 until told otherwise
    resumed.load_state_dict(run.state_dict())
    assert taken + list(resumed) == list(whole) and len(taken) < len(whole)


def test_fresh_discards_the_checkpoint_and_starts_over(tmp_path, capsys):
    path = write(tmp_path, tiny(seeds=[0]))
    argv = ["run", str(path), "--runs-dir", str(tmp_path / "runs"), "--no-report"]
    assert main(argv) == 0
    (run_dir,) = (tmp_path / "runs" / "tiny").glob("*/result.json")
    run_dir = run_dir.parent
    (run_dir / "result.json").unlink()
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"not a checkpoint")
    (run_dir / "stray.txt").write_text("x")
    assert main([*argv, "--fresh"]) == 0
    assert "0 already finished, 1 to run" in capsys.readouterr().err
    assert not (run_dir / "stray.txt").exists() and not (run_dir / "checkpoints" / "last.ckpt").exists()
    assert json.loads((run_dir / "result.json").read_text())["resumed_at_step"] is None


# ------------------------------------------------------------------ bad run stores
def test_corrupt_result_json_makes_the_run_redo_with_a_note(tmp_path, capsys):
    path = write(tmp_path, tiny(seeds=[0, 1]))
    argv = ["run", str(path), "--runs-dir", str(tmp_path / "runs"), "--no-report"]
    assert main(argv) == 0
    root = tmp_path / "runs" / "tiny"
    bad = sorted(root.glob("*/result.json"))[0]
    bad.write_text(bad.read_text()[:40])  # truncated, as by a crash of an old version
    (root / "results.csv").write_text("garbage,\n\"unclosed")
    capsys.readouterr()
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert f"({bad.parent.name}): its result.json is unreadable" in err and "redone" in err
    assert "1 already finished, 1 to run" in err
    assert json.loads(bad.read_text())["status"] == "finished"
    assert len(load_results(root)) == 2 and "run_id" in (root / "results.csv").read_text()


@pytest.mark.parametrize("runs_dir", ["/proc/ablate-nope", "{tmp}/a-file/runs"])
def test_a_runs_dir_that_cannot_be_created_exits_2_with_one_line(tmp_path, runs_dir):
    (tmp_path / "a-file").write_text("a file, not a directory")
    path = write(tmp_path, tiny(seeds=[0]))
    runs_dir = runs_dir.format(tmp=tmp_path)
    r = subprocess.run(ablate("run", str(path), "--runs-dir", runs_dir, "--no-report"), env=ENV,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0].startswith("error: --runs-dir=") and runs_dir.split("/runs")[0] in lines[0]
    assert "cannot be created or written" in lines[0] and ("No such file" in lines[0] or "Not a directory"
                                                            in lines[0])


@pytest.mark.parametrize("where", ["result", "checkpoint"])
def test_a_disk_that_fills_mid_grid_fails_that_run_and_stops(tmp_path, capsys, monkeypatch, where):
    from ablate.experiment import runner
    from ablate.train import checkpointing

    calls = {"n": 0}
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    if where == "result":  # the driver's write of the second run's result.json
        real = runner.write_json

        def write_json(path, obj):
            calls["n"] += 1
            if calls["n"] == 2:
                raise full
            real(path, obj)

        monkeypatch.setattr(runner, "write_json", write_json)
    else:  # the second run's checkpoint, inside training
        real_save = checkpointing.ResumeCheckpoint.on_validation_end

        def on_validation_end(self, trainer, pl_module):
            calls["n"] += 1
            if calls["n"] == 2:
                raise full
            real_save(self, trainer, pl_module)

        monkeypatch.setattr(checkpointing.ResumeCheckpoint, "on_validation_end", on_validation_end)
    path = write(tmp_path, tiny(seeds=[0, 1, 2, 3]))
    argv = ["run", str(path), "--runs-dir", str(tmp_path / "runs"), "--no-report"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "stopped dispatching: the disk is full" in err
    assert "1 finished, 1 failed" in err
    root = tmp_path / "runs" / "tiny"
    finished = [d for d, r in results(root).items() if r["status"] == "finished"]
    assert len(finished) == 1  # kept; the runs after the full disk were never started
    assert len([d for d in root.iterdir() if d.is_dir()]) == 2
    assert not list(root.glob(f"*/{CLAIM}"))
    monkeypatch.undo()
    assert main(argv) == 0
    assert "1 already finished, 3 to run" in capsys.readouterr().err
