"""eval.* settings never change what is trained: a run that differs from a finished run of the same store only
in its eval section tests that run's trained checkpoint instead of training again.

Runs are matched by train_id, the hash of the config without eval (result.json records it); the source must
be finished and its checkpoint still on disk. The new run's result copies the source's training fields
(steps, timings, best validation score) and names it in `reused_from`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ablate.config import RunConfig, train_id  # noqa: F401 - train_id: fit imports it from here
from ablate.train.run_files import FINISHED, read_result

# What training decided; a re-test keeps the source's values of these.
TRAINED_FIELDS = ("best_val", "train_time_s", "fit_time_s", "tokens_per_s", "epochs", "steps", "steps_to_target",
                  "resumed_at_step", "max_train_src_len", "max_train_tgt_len", "stop_reason", "still_improving",
                  "stop_source", "tested_step", "train_flops", "train_flops_per_token", "flops_per_s",
                  "flops_lower_bound", "flops_to_target", "seconds_to_target", "peak_flops_per_s", "flops_utilization")


@dataclass
class Trained:
    run_id: str
    result: dict[str, Any]
    checkpoint: Path

    def fields(self) -> dict[str, Any]:
        return {k: self.result[k] for k in TRAINED_FIELDS if k in self.result} | {"reused_from": self.run_id}


def checkpoint_of(run_dir: Path, result: dict[str, Any]) -> Optional[Path]:
    """The weights a finished run tested: its recorded checkpoint, or its last weights."""
    path = (result.get("checkpoint") or {}).get("path")
    for p in ([run_dir / path] if path else []) + [run_dir / "checkpoints" / "last.ckpt"]:
        if p.is_file():
            return p.resolve()
    return None


def find_trained(cfg: RunConfig, run_dir: str | Path) -> Optional[Trained]:
    """A finished run beside run_dir (same store) that trained exactly what cfg trains, with its weights."""
    run_dir, tid = Path(run_dir).resolve(), train_id(cfg)
    if not run_dir.parent.is_dir():
        return None
    for d in sorted(run_dir.parent.iterdir()):
        if d == run_dir or not d.is_dir():
            continue
        r = read_result(d)
        if not r or r.get("status") != FINISHED or r.get("train_id") != tid or r.get("reused_from"):
            continue
        ckpt = checkpoint_of(d, r)
        if ckpt is not None:
            return Trained(d.name, r, ckpt)
    return None
