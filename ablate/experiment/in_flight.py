"""The driver's side of progress: with `ablate run --workers N`, one periodic line of the runs in flight.

Each run (ablate/train/progress.py, in mode `file`) writes its step, total, ETA and phase to
<run_dir>/progress.json; this module reads them. No Lightning or torch here: the driver starts fast.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Optional, TextIO

# The run's side defines them (train, below); the driver reads them from here too.
from ablate.train.progress_file import MODES, PROGRESS_FILE, every_seconds, fmt_time, progress_mode  # noqa: F401


def status_line(run_dirs: Iterable[Path]) -> Optional[str]:
    """'in flight: label 340/1700 ETA 1m50s | label 20/1700 (validating 2/4) | 2 queued or starting' from the
    runs' progress files (a run writes its first one when its training starts)."""
    parts, waiting = [], 0
    for d in run_dirs:
        try:
            f = json.loads((Path(d) / PROGRESS_FILE).read_text())
        except (OSError, ValueError):
            waiting += 1
            continue
        item = f"{f.get('label') or Path(d).name} {f.get('step', 0)}/{f.get('total') or '?'}"
        if f.get("eta_s") is not None:
            item += f" ETA {fmt_time(f['eta_s'])}"
        if f.get("phase") not in (None, "train"):
            item += f" ({f['phase']})"
        parts.append(item)
    if waiting:
        parts.append(f"{waiting} queued or starting")
    return "in flight: " + " | ".join(parts) if parts else None


class InFlightStatus:
    """A driver thread printing status_line() of the running runs every every_s seconds. While it is on,
    runs started from this process (worker processes inherit the environment) write progress files instead
    of printing, so parallel runs never interleave their lines."""

    def __init__(self, out: TextIO, every_s: Optional[float] = None):
        self.out, self.every_s = out, every_seconds() if every_s is None else every_s
        self.running: dict[str, Path] = {}
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> InFlightStatus:
        self._saved = os.environ.get("ABLATE_PROGRESS")
        if progress_mode() != "off":
            os.environ["ABLATE_PROGRESS"] = "file"
        if self.every_s > 0:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._saved is None:
            os.environ.pop("ABLATE_PROGRESS", None)
        else:
            os.environ["ABLATE_PROGRESS"] = self._saved

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            line = status_line(list(self.running.values()))
            if line:
                print(line, file=self.out, flush=True)
