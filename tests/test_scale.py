"""Scale-out against the real engines: a Ray cluster, submitit's local executor, two-process CPU DDP.

Each test drives `python -m ablate run` in a subprocess, as a user would, on
tiny runs (reverse, d_model 16, one epoch, a few hundred examples). Ray and
submitit are required (`pip install 'ablate[ray,slurm]'`): if one is missing
the test fails and says so; nothing here is skipped.

A test plugin (written to a temporary directory and put on PYTHONPATH, so
the Ray workers, submitit jobs and DDP ranks import it too) registers a task
`boom` that raises (a failing run) or, with how=exit, kills its own process
(a worker that dies).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

PLUGIN = '''
import os
from dataclasses import dataclass

from ablate.tasks.base import TASKS
from ablate.tasks.synthetic import SeqTaskConfig


@dataclass
class BoomConfig(SeqTaskConfig):
    how: str = "raise"  # raise | exit


@TASKS.register("boom", config=BoomConfig, kind="seq2seq", help="tests only: fails, or kills its process")
def build_boom(cfg):
    if cfg.how == "exit":
        os._exit(3)
    raise RuntimeError("boom: this run fails on purpose")
'''

EXPERIMENT = """
name: scale
task: {name: reverse, min_len: 3, max_len: 8, vocab_size: 8, n_train: 256, n_val: 41, n_test: 101}
model: {arch: transformer, d_model: 16, n_layers: 1, n_heads: 2, d_ff: 32}
train: {max_epochs: 1, batch_size: 32, eval_batch_size: 25, cpus_per_run: 1, resume_every_s: 0}
seeds: [0]
variants:
  base: {}
  fails: {task.name: boom}
"""
DIES = "  dies: {task.name: boom, task.how: exit}\n"
ONE_RUN = EXPERIMENT.split("variants:")[0]
N_TEST = 101


def require(module: str, extra: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.fail(f"{module} is not installed; these tests need it: pip install 'ablate[{extra}]'")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("scale")
    (d / "scale_plugin.py").write_text(PLUGIN)
    (d / "scale.yaml").write_text(EXPERIMENT)
    (d / "scale_dies.yaml").write_text(EXPERIMENT + DIES)
    (d / "one.yaml").write_text(ONE_RUN)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(d), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # Ray's single-node mode: 127.0.0.1 only
           "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1",
           # the head and the driver share a token (a driver given --address enables it only when told to)
           "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env.pop("RAY_ADDRESS", None)
    return d, env


def ablate_run(work, experiment: str, runs: str, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """`ablate run EXPERIMENT [KEY=VALUE ...] [--options ...]` (args: overrides and options, in any order)."""
    d, env = work
    overrides = [a for a in args if "=" in a and not a.startswith("-")]
    options = [a for a in args if a not in overrides]
    cmd = [sys.executable, "-m", "ablate", "--plugin", "scale_plugin", "run", str(d / experiment), *overrides,
           "--runs-dir", str(d / runs), "--no-report", *options]
    return subprocess.run(cmd, env=env, cwd=d, capture_output=True, text=True, timeout=timeout)


def results(root: Path) -> dict[tuple[str, int], dict]:
    out = {}
    for p in sorted(root.glob("*/result.json")):
        r = json.loads(p.read_text())
        out[(r["variant"], r["seed"])] = r
    return out


def assert_same_runs(got: dict, want: dict) -> None:
    """Same seeds and thread count (1) in both: the finished runs' metrics are bit-for-bit the same."""
    assert set(want) <= set(got), (sorted(got), sorted(want))
    for key, w in want.items():
        g = got[key]
        assert g["status"] == w["status"], (key, g.get("error"), w.get("error"))
        if w["status"] == "finished":
            assert g["metrics"] == w["metrics"], key
            assert g["best_val"] == w["best_val"], key
            assert g["reproduce"]["threads"] == w["reproduce"]["threads"] == 1
        else:
            assert "boom: this run fails on purpose" in g["error"], g["error"]


@pytest.fixture(scope="module")
def local_runs(work):
    """The reference: the local executor, 2 worker processes of 1 thread each (= cpus_per_run 1)."""
    from ablate.experiment.executors import cpu_count

    p = ablate_run(work, "scale.yaml", "local", "--workers", str(cpu_count()))
    assert p.returncode == 1, p.stderr  # the "fails" runs failed, the others finished
    got = results(work[0] / "local" / "scale")
    assert sorted(got) == [("base", 0), ("fails", 0)]
    assert got[("base", 0)]["status"] == "finished", p.stderr
    return got


def test_ray_cluster_matches_local_and_isolates_failures(work, local_runs):
    require("ray", "ray")
    d, env = work
    port = free_port()
    temp = tempfile.mkdtemp(prefix="ray")  # short: Ray puts unix sockets under it
    head = subprocess.Popen(
        [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
         "--num-gpus=0", "--include-dashboard=false", "--node-ip-address=127.0.0.1", "--disable-usage-stats",
         f"--temp-dir={temp}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        log = []
        for line in head.stdout:  # "Ray runtime started." once the head takes drivers
            log.append(line)
            if "Ray runtime started" in line:
                break
        else:
            pytest.fail("ray start --head did not come up:\n" + "".join(log))
        p = ablate_run(work, "scale_dies.yaml", "ray", "--executor", "ray", "--address", f"127.0.0.1:{port}")
        assert p.returncode == 1, p.stderr
        got = results(d / "ray" / "scale")
        assert sorted(got) == [("base", 0), ("dies", 0), ("fails", 0)], p.stderr
        assert_same_runs(got, local_runs)
        assert "ray worker died" in got[("dies", 0)]["error"], got[("dies", 0)]["error"]
        # no shared file system needed: the task's files came back through Ray into the store
        run = d / "ray" / "scale" / got[("base", 0)]["run_id"]
        assert {"config.yaml", "metrics.csv", "by_length.csv", "vocab.json"} <= {f.name for f in run.iterdir()}
        assert (run / "checkpoints" / "best.ckpt").is_file()
        assert (d / "ray" / "scale" / got[("fails", 0)]["run_id"] / "traceback.txt").is_file()
        assert "3 runs, 0 already finished, 3 to run" in p.stderr
        assert "[3/3]" in p.stderr
    finally:
        os.killpg(head.pid, signal.SIGTERM)  # the head and every Ray process it started (its own session)
        try:
            head.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        shutil.rmtree(temp, ignore_errors=True)


def test_submitit_local_matches_local(work, local_runs):
    require("submitit", "slurm")
    d, _ = work
    p = ablate_run(work, "scale.yaml", "submitit", "--executor", "slurm", "slurm.cluster=local",
                   "slurm.cpus_per_task=1", "slurm.array_parallelism=2", "slurm.time_min=10")
    assert p.returncode == 1, p.stderr
    got = results(d / "submitit" / "scale")
    assert sorted(got) == sorted(local_runs), p.stderr
    assert_same_runs(got, local_runs)
    logs = d / "submitit" / "scale" / "slurm"
    assert len(list(logs.glob("*/*_log.out"))) == 2  # one job (and log) per run


LONG = ("train.max_epochs=12", "train.batch_size=16")  # a run long enough to be interrupted after a checkpoint


def pids(match) -> list[int]:
    """Processes on this machine whose (pid, ppid, command line) satisfy match."""
    out = []
    for proc in Path("/proc").iterdir():
        try:
            stat = (proc / "stat").read_text().rsplit(")", 1)[-1].split()
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError):
            continue
        if proc.name.isdigit() and match(int(proc.name), int(stat[1]), cmd):
            out.append(int(proc.name))
    return out


def interrupt_once_checkpointed(work, runs: str, *args: str, kill) -> tuple[subprocess.CompletedProcess, dict]:
    """Start `ablate run one.yaml`, call kill(run root) once the run has saved a checkpoint, wait for the end."""
    d, env = work
    overrides = [a for a in args if "=" in a and not a.startswith("-")]
    cmd = [sys.executable, "-m", "ablate", "--plugin", "scale_plugin", "run", str(d / "one.yaml"), *overrides,
           "--runs-dir", str(d / runs), "--no-report", *[a for a in args if a not in overrides]]
    proc = subprocess.Popen(cmd, env=env, cwd=d, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    root = d / runs / "scale"
    deadline = time.time() + 180
    while time.time() < deadline and not list(root.glob("*/checkpoints/last.ckpt")):
        time.sleep(0.1)
    assert not list(root.glob("*/result.json")), "the run should still be training"
    kill(root)
    out, err = proc.communicate(timeout=300)
    (got,) = results(root).values()
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err), got


def test_preempted_slurm_job_is_requeued_and_resumes_from_its_checkpoint(work):
    """submitit's local executor, as on SLURM: SIGUSR2 (preemption) -> checkpoint() -> requeue -> resume."""
    require("submitit", "slurm")
    want = ablate_run(work, "one.yaml", "slurm_ref", *LONG)
    assert want.returncode == 0, want.stderr
    (ref,) = results(work[0] / "slurm_ref" / "scale").values()

    def preempt(root: Path) -> None:
        (job,) = [int(j.name) for j in (root / "slurm").iterdir() if j.name.isdigit()]
        (task,) = pids(lambda pid, ppid, cmd: ppid == job)  # the job's task process under submitit's controller
        os.kill(task, signal.SIGUSR2)

    p, got = interrupt_once_checkpointed(work, "slurm_pre", *LONG, "--executor", "slurm", "slurm.cluster=local",
                                         "slurm.cpus_per_task=1", kill=preempt)
    assert p.returncode == 0, p.stderr
    logs = "".join(f.read_text() for f in (work[0] / "slurm_pre" / "scale" / "slurm").glob("*/*_log.*"))
    assert "preempted" in logs and "Requeued job" in logs
    assert got["resumed_at_step"] > 0 and got["metrics"] == ref["metrics"] and got["steps"] == ref["steps"]


def test_ray_task_lost_with_its_worker_is_retried_and_resumes_in_place(work):
    """A shared runs directory (ABLATE_RAY_IN_PLACE=1): the retried task resumes from the run's checkpoint."""
    require("ray", "ray")
    want = ablate_run(work, "one.yaml", "ray_ref", *LONG)
    assert want.returncode == 0, want.stderr
    (ref,) = results(work[0] / "ray_ref" / "scale").values()
    d, env = work
    work_in_place = (d, {**env, "ABLATE_RAY_IN_PLACE": "1"})

    def lose_worker(root: Path) -> None:
        (task,) = pids(lambda pid, ppid, cmd: cmd.startswith("ray::ablate:"))
        os.kill(task, signal.SIGKILL)  # as if its node went away

    p, got = interrupt_once_checkpointed(work_in_place, "ray_retry", *LONG, "--executor", "ray",
                                         "--max-retries", "1", kill=lose_worker)
    assert p.returncode == 0, p.stderr
    assert got["resumed_at_step"] > 0 and got["metrics"] == ref["metrics"] and got["steps"] == ref["steps"]


def test_ddp_two_cpu_processes_reduce_over_the_whole_test_set(work):
    """train.devices=2 on CPU (gloo): one `ablate run`, two rank processes, rank 0 writes the run.

    Its test metrics must be those of the same checkpoint evaluated in one process on the whole test set:
    the accuracies exactly (they are ratios of integer counts), the loss to float32 summation order
    (rel 1e-5; the ranks sum the per-batch losses of other batches than one process does). The DDP
    run's own training cannot match a one-process run bit for bit (each optimizer step averages two
    half-batches' gradients, in another sample order), so that is not what is compared.
    """
    d, _ = work
    t0 = time.time()
    p = ablate_run(work, "one.yaml", "ddp", "train.devices=2", "train.strategy=ddp")
    assert p.returncode == 0, p.stderr
    assert p.stderr.count("1 runs, 0 already finished, 1 to run") == 1, p.stderr  # nothing re-ran the command
    assert p.stderr.count("[1/1]") == 1, p.stderr
    (r,) = results(d / "ddp" / "scale").values()
    run = d / "ddp" / "scale" / r["run_id"]
    assert r["steps"] == 256 // 2 // 32  # each rank takes half of every epoch, in batches of 32
    assert sorted(f.name for f in run.iterdir()) == ["by_length.csv", "checkpoints", "config.yaml", "metrics.csv",
                                                     "result.json", "test_samples.jsonl", "vocab.json"]
    samples = [json.loads(line) for line in (run / "test_samples.jsonl").read_text().splitlines()]
    assert sorted(s["index"] for s in samples) == list(range(N_TEST))  # every rank's share, each example once
    rows = list(csv.DictReader((run / "by_length.csv").open()))
    assert sum(int(row["n"]) for row in rows) == N_TEST  # all ranks' examples, each once

    import pytorch_lightning as pl

    from ablate.config import load_experiment
    from ablate.experiment.plan import plan
    from ablate.models import build_model
    from ablate.tasks import build_task
    from ablate.train.data import TaskDataModule
    from ablate.train.decoding import decode_caps
    from ablate.train.module import SeqModule
    from ablate.train.sizing import info_of

    cfg = plan(load_experiment(d / "one.yaml")).runs[0].config
    data = build_task(cfg.task)
    info = info_of(data)
    module = SeqModule(build_model(cfg.model, info), cfg.train, data.vocab, data.kind, data.metrics,
                       decode_caps=decode_caps(data, info.max_tgt_len))
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    one = trainer.test(module, datamodule=TaskDataModule(data, 32, cfg.train.eval_batch_size),
                       ckpt_path=str(run / r["checkpoint"]["path"]), verbose=False)[0]
    assert set(one) == {k for k in r["metrics"] if k.startswith("test/")}  # + val/hit_cap of the tested weights
    for k, v in one.items():
        if k.endswith("loss"):
            assert r["metrics"][k] == pytest.approx(v, rel=1e-5), k
        else:
            assert r["metrics"][k] == pytest.approx(v, rel=1e-7, abs=0), k
    want = module.by_length()
    assert [int(row["n"]) for row in rows] == [w["n"] for w in want]
    for row, w in zip(rows, want, strict=True):
        assert float(row["seq_acc"]) == pytest.approx(w["seq_acc"], abs=1e-7)
        assert float(row["token_acc"]) == pytest.approx(w["token_acc"], abs=1e-7)
    # a step's FLOPs are the global batch's: both ranks' 32 examples, each batch padded to 8 source and 9 target
    # tokens (every batch of 32 holds a longest example here), 3x the forward (rank 0's alone was half of it)
    from ablate.models.flops import example_forward

    assert r["train_flops"] == r["steps"] * 2 * 3 * 32 * example_forward(module.model, 8, 9).total
    print(f"ddp test took {time.time() - t0:.0f}s")


def test_missing_engine_is_a_usage_error(monkeypatch):
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # what RayExecutor would set for a local Ray
    from ablate.errors import ConfigErrors
    from ablate.experiment.executors import get_executor

    for module, name, extra in (("ray", "ray", "ray"), ("submitit", "slurm", "slurm")):
        monkeypatch.setitem(sys.modules, module, None)  # `import module` now fails as if not installed
        monkeypatch.delitem(sys.modules, f"ablate.experiment.{name}_executor", raising=False)
        with pytest.raises(ConfigErrors) as e:
            get_executor(name)
        assert f"pip install 'ablate[{extra}]'" in str(e.value)
