"""The ray executor: every run is one Ray task with its own CPU/GPU request.

    ablate run exp.yaml --executor ray                        # a local Ray: 127.0.0.1 only, no dashboard
    ablate run exp.yaml --executor ray --address HEAD:6379    # an existing cluster (or RAY_ADDRESS=HEAD:6379)

A task asks for train.cpus_per_run CPUs (at least one per process of a
multi-device CPU run) and, when train.accelerator is gpu/cuda, one GPU per
train.devices. It trains in a temporary directory on whichever node runs it
and returns the result plus the run directory's files (bytes by relative
path); the driver writes them into the store and records the result. So the
nodes need no shared file system, only the same `ablate` (and --plugin
modules) installed. With a shared file system nothing more is needed; to save
the copy, in_place=True (ABLATE_RAY_IN_PLACE=1) trains straight into
runs/<name>/<run_id>, which must then be the same path on every node.

A local Ray is single-node: it listens on 127.0.0.1 only (Ray's
RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 mode) and starts no dashboard.

A run that fails is recorded failed with its reason. A task whose worker or
node dies is retried by Ray up to max_retries times (`--max-retries`); in
place (a shared runs directory) the retry resumes from the run's last
checkpoint, otherwise it starts over in a new temporary directory. A task
still lost after that is recorded failed (rerunning the experiment redoes it).
Ctrl-C cancels the tasks still queued or running and keeps the finished runs.
The driver holds each run's claim (claims.py) while its task runs.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Optional

from ablate.errors import ConfigError, ConfigErrors
from ablate.experiment.store import FAILED, KEEP, clear
from ablate.experiment.worker import RunSpec, execute

OnDone = Callable[[RunSpec, dict[str, Any]], None]
LOCAL_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray's single-node mode, every address 127.0.0.1


def import_ray(local: bool) -> Any:
    """import ray (lazily: only this executor needs it); a local Ray is made loopback-only first."""
    if local:
        os.environ.setdefault(LOCAL_ONLY, "0")  # read by ray at import, and by the processes it starts
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    return ray


def _devices(t: Any) -> Optional[int]:
    """train.devices as a count; None for 'auto' / -1, which a driver cannot count for a remote node."""
    d = t.devices
    if isinstance(d, (list, tuple)):
        return len(d)
    if isinstance(d, str) and "," in d:
        return len([x for x in d.split(",") if x.strip()])
    try:
        n = int(d)
    except (TypeError, ValueError):
        return None
    return n if n >= 0 else None


def task_resources(spec: RunSpec) -> dict[str, float]:
    t = spec.config.train
    n = _devices(t)
    if t.accelerator in ("gpu", "cuda"):
        if n is None:
            raise ConfigErrors([ConfigError("train.devices", t.devices, "the ray executor needs a number of GPUs "
                                            "per run (e.g. train.devices=2)")])
        return {"num_cpus": t.cpus_per_run, "num_gpus": n}
    return {"num_cpus": max(t.cpus_per_run, n or 1), "num_gpus": 0}


def train_task(spec: RunSpec, threads: int, run_dir: Optional[str] = None) -> tuple[dict[str, Any], dict[str, bytes]]:
    """On a Ray worker: execute one run; returns (result, {relative path: bytes}) of its directory."""
    if run_dir is not None:  # in place, on a shared file system
        return execute(spec, run_dir, threads), {}
    with tempfile.TemporaryDirectory(prefix=f"ablate-{spec.run_id}-") as tmp:
        result = execute(spec, tmp, threads)
        files = {p.relative_to(tmp).as_posix(): p.read_bytes() for p in sorted(Path(tmp).rglob("*")) if p.is_file()}
    return result, files


def write_files(run_dir: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = (run_dir / rel).resolve()
        if run_dir.resolve() not in path.parents:
            raise ValueError(f"refusing to write {rel!r} outside {run_dir}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _reason(e: BaseException) -> str:
    import ray

    if isinstance(e, ray.exceptions.RayTaskError):  # the task raised outside execute (e.g. could not unpickle)
        cause = getattr(e, "cause", None) or e
        last = (str(cause).strip().splitlines() or [""])[-1]
        return f"ray task raised {type(cause).__name__}: {last}"
    text = " ".join(str(e).split())  # worker or node died, out of memory, cancelled, object lost
    return f"ray worker died: {type(e).__name__}: {text[:1000]}"


class RayExecutor:
    def __init__(self, workers: int = 1, address: Optional[str] = None, in_place: Optional[bool] = None,
                 max_retries: int = 0, out: Any = None, **_: Any):
        # --workers does not apply: the cluster's CPUs/GPUs and each run's request decide how many run at once.
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        env = os.environ.get("ABLATE_RAY_IN_PLACE", "")
        self.in_place = in_place if in_place is not None else env not in ("", "0")
        self.max_retries = max_retries
        self.out = out or sys.stderr
        import_ray(local=not self.address)  # fails here, before anything runs, if ray is not installed

    def connect(self) -> bool:
        """ray.init; True when this call started or joined Ray (and run() shuts it down after)."""
        ray = import_ray(local=not self.address)
        if ray.is_initialized():
            return False
        try:
            if self.address:
                ray.init(address=self.address)
            else:
                ray.init(address="local", include_dashboard=False)
        except (ConnectionError, ValueError, RuntimeError) as e:
            hint = "" if os.environ.get("RAY_AUTH_MODE") else (" (a cluster with token authentication needs "
                                                               "RAY_AUTH_MODE=token and its token here)")
            raise ConfigErrors([ConfigError("--address", self.address or "local",
                                            f"cannot start or reach Ray: {e}{hint if self.address else ''}")]) from None
        return True

    def warn_unschedulable(self, requests: Iterable[dict[str, float]]) -> None:
        """A task no node can fit waits (for an autoscaler) forever: say so instead of hanging silently."""
        import ray

        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
        for req in {tuple(sorted(r.items())) for r in requests}:
            need = {"CPU": dict(req)["num_cpus"], "GPU": dict(req)["num_gpus"]}
            if not any(all(node.get(k, 0) >= v for k, v in need.items() if v) for node in nodes):
                print(f"warning: runs needing {need['CPU']:g} CPUs and {need['GPU']:g} GPUs fit on no node of this "
                      "Ray cluster now; they wait until one joins (Ctrl-C to stop)", file=self.out, flush=True)

    def run(self, specs: Iterable[RunSpec], root: Path, on_done: OnDone, on_start: Callable = lambda s: True) -> None:
        specs = list(specs)
        if not specs:
            return
        requests = {spec.run_id: task_resources(spec) for spec in specs}  # config problems before anything runs
        started = self.connect()
        import ray

        remote = ray.remote(train_task)
        pending: dict[Any, RunSpec] = {}
        try:
            self.warn_unschedulable(requests.values())
            for spec in specs:
                if not on_start(spec):  # finished or claimed elsewhere meanwhile, or the store failed
                    continue
                req = requests[spec.run_id]
                where = str((root / spec.run_id).resolve()) if self.in_place else None
                ref = remote.options(**req, max_retries=self.max_retries, name=f"ablate:{spec.run_id}").remote(
                    spec, max(1, int(req["num_cpus"])), where)
                pending[ref] = spec
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    spec = pending.pop(ref)
                    on_done(spec, self.collect(ref, spec, root / spec.run_id))
        except BaseException:
            for ref in pending:  # Ctrl-C (or a driver error): stop the rest; finished runs are already stored
                ray.cancel(ref, force=True)
            raise
        finally:
            if started:
                ray.shutdown()

    def collect(self, ref: Any, spec: RunSpec, run_dir: Path) -> dict[str, Any]:
        import ray

        try:
            result, files = ray.get(ref)
        except ray.exceptions.RayError as e:
            return {**spec.meta, "status": FAILED, "error": _reason(e)}
        try:
            if files:  # trained elsewhere: the copy replaces whatever an earlier attempt left (the claim stays)
                clear(run_dir, keep=(*KEEP, "config.yaml"))
            write_files(run_dir, files)
        except (OSError, ValueError) as e:
            return {**result, "status": FAILED, "error": f"could not store the run's files: {type(e).__name__}: {e}"}
        return result
