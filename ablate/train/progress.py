"""Progress inside a run, and the time spent evaluating.

RunProgress is a Lightning progress bar (the ProgressBar callback interface) that draws one line:

    seq2seq seed 0  ep 2/10  step 340/1700  loss 2.314  12.3 steps/s  ETA 1m50s  val/bleu 12.4

Where it goes depends on ABLATE_PROGRESS (default auto):
- auto: one updating line on a terminal; elsewhere (SLURM logs, CI, a pipe) a plain line every
  ABLATE_PROGRESS_EVERY seconds (default 30);
- lines: the plain lines, even on a terminal;
- file: nothing printed; the line's fields go to <run_dir>/progress.json every few seconds, which the
  driver of `ablate run --workers N` reads for its periodic status of the runs in flight
  (ablate/experiment/in_flight.py);
- off: nothing.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Optional, TextIO

import torch
from pytorch_lightning.callbacks import Callback, ProgressBar

from ablate.train.progress_file import PROGRESS_FILE, every_seconds, fmt_time, progress_mode


class RunProgress(ProgressBar):
    """One line of progress for one run (see the module's docstring for where it goes)."""

    def __init__(self, label: str = "", monitor: str = "val/loss", run_dir: Optional[str | Path] = None,
                 mode: Optional[str] = None, out: Optional[TextIO] = None, every_s: Optional[float] = None):
        super().__init__()
        self.label, self.monitor = label, monitor
        self.run_dir = Path(run_dir) if run_dir else None
        self.out = out or sys.stderr
        mode = mode or progress_mode()
        if mode == "auto":
            mode = "bar" if getattr(self.out, "isatty", lambda: False)() else "lines"
        self.mode = mode  # bar | lines | file | off
        self.every_s = every_seconds() if every_s is None else every_s
        self._enabled = mode != "off"
        self.t0 = self._last = 0.0
        self.step0 = 0
        self._loss: Any = None  # smoothed training loss, a tensor on the device (or a float)
        self.total = 0
        self.phase = "train"
        self.last_val: Optional[float] = None  # the monitored metric at the last validation
        self._width = 0

    # ProgressBar's interface
    def enable(self) -> None:
        self._enabled = self.mode != "off"

    def disable(self) -> None:
        self._enabled = False

    @property
    def loss(self) -> Optional[float]:
        return None if self._loss is None else float(self._loss)

    # ------------------------------------------------------------ state
    def fields(self, trainer: Any) -> dict[str, Any]:
        step, elapsed = trainer.global_step, time.perf_counter() - self.t0
        done = step - self.step0  # steps taken in this process (a resumed run starts past 0)
        rate = done / elapsed if elapsed > 0 and done > 0 else 0.0
        val = self.last_val
        epoch = trainer.current_epoch + 1  # after the last epoch Lightning counts one more
        if trainer.max_epochs and trainer.max_epochs > 0:
            epoch = min(epoch, trainer.max_epochs)
        return {"label": self.label, "phase": self.phase, "epoch": epoch,
                "max_epochs": trainer.max_epochs, "step": step, "total": self.total, "loss": self.loss,
                "steps_per_s": rate, "eta_s": (self.total - step) / rate if rate and self.total else None,
                "monitor": self.monitor, "val": None if val is None else float(val)}

    @staticmethod
    def render(f: dict[str, Any]) -> str:
        parts = [f["label"]] if f.get("label") else []
        epochs = f"/{f['max_epochs']}" if f.get("max_epochs") and f["max_epochs"] > 0 else ""
        parts.append(f"ep {f['epoch']}{epochs}")
        parts.append(f"step {f['step']}/{f['total']}" if f.get("total") else f"step {f['step']}")
        if f.get("loss") is not None:
            parts.append(f"loss {f['loss']:.3f}")
        if f.get("steps_per_s"):
            parts.append(f"{f['steps_per_s']:.1f} steps/s")
        if f.get("eta_s") is not None:
            parts.append(f"ETA {fmt_time(f['eta_s'])}")
        if f.get("val") is not None:
            parts.append(f"{f['monitor']} {f['val']:.3g}")
        if f.get("phase") not in (None, "train"):
            parts.append(f"({f['phase']})")
        return "  ".join(parts)

    def _show(self, trainer: Any, force: bool = False) -> None:
        if not self._enabled or trainer.global_rank != 0:
            return
        now = time.perf_counter()
        wait = {"bar": 0.25, "file": 2.0}.get(self.mode, self.every_s)
        if not force and now - self._last < wait:
            return
        self._last = now
        f = self.fields(trainer)
        if self.mode == "file":
            if self.run_dir is not None:
                tmp = self.run_dir / (PROGRESS_FILE + ".tmp")
                tmp.write_text(json.dumps({**f, "time": time.time()}))
                os.replace(tmp, self.run_dir / PROGRESS_FILE)
            return
        line = self.render(f)
        if self.mode == "bar":  # rewrite the same terminal line
            pad = max(0, self._width - len(line))
            self._width = len(line)
            self.out.write("\r" + line + " " * pad)
        else:
            self.out.write(line + "\n")
        self.out.flush()

    # ------------------------------------------------------------ hooks
    def on_train_start(self, trainer, pl_module):
        self.t0, self.step0 = time.perf_counter(), trainer.global_step
        self._last = self.t0 if self.mode == "lines" else 0.0  # plain lines: the first after every_s
        total = trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else 0
        try:
            total = total or int(trainer.estimated_stepping_batches)
        except (RuntimeError, ValueError, TypeError):
            pass
        self.total = total if total < 2**62 else 0
        self._show(trainer, force=True)  # the driver's status line sees the run from its first step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is not None:  # smoothed on the loss's device: read (a sync) only when a line is shown
            value = loss.detach().float() if isinstance(loss, torch.Tensor) else float(loss)
            self._loss = value if self._loss is None else 0.9 * self._loss + 0.1 * value
        self.phase = "train"
        self._show(trainer)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if trainer.state.fn == "fit":
            self.phase = f"validating {batch_idx + 1}/{int(sum(trainer.num_val_batches))}"
            self._show(trainer)

    def on_validation_end(self, trainer, pl_module):
        if trainer.state.fn == "fit":
            val = trainer.callback_metrics.get(self.monitor)
            self.last_val = None if val is None else float(val)
            self.phase = "train"
            self._show(trainer, force=self.mode != "lines")

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self.phase = f"testing {batch_idx + 1}/{int(sum(trainer.num_test_batches))}"
        self._show(trainer)

    def on_train_end(self, trainer, pl_module):
        self.phase = "train"
        if self.mode == "lines" and self._enabled and trainer.global_rank == 0:
            self._show(trainer, force=True)  # a last line with the final numbers

    def on_test_end(self, trainer, pl_module):
        self.close()

    def on_exception(self, trainer, pl_module, exception):
        self.close()

    def close(self) -> None:
        if self.mode == "bar" and self._width and self._enabled:
            self.out.write("\n")
            self.out.flush()
            self._width = 0
        if self.run_dir is not None:
            (self.run_dir / PROGRESS_FILE).unlink(missing_ok=True)


class EvalTimer(Callback):
    """Seconds spent in validation and test loops (decoding included): result.json's eval_time_s; the test
    loop's alone: test_time_s."""

    def __init__(self):
        self.seconds, self.test_seconds, self._t0 = 0.0, 0.0, 0.0

    def _start(self, *_: Any) -> None:
        self._t0 = time.perf_counter()

    def _stop(self, *_: Any) -> float:
        took = time.perf_counter() - self._t0
        self.seconds += took
        return took

    def on_test_end(self, *_: Any) -> None:
        self.test_seconds += self._stop()

    on_validation_start = on_test_start = _start
    on_validation_end = _stop

    def state_dict(self) -> dict[str, Any]:  # in last.ckpt: a resumed run keeps counting from here
        return {"seconds": self.seconds}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.seconds = state_dict.get("seconds", 0.0)
