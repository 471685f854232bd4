"""The progress a run shares with its driver: ABLATE_PROGRESS's modes, <run_dir>/progress.json and the time
format, read by the run (progress.py) and by the driver (experiment/in_flight.py). No torch here: the driver starts
fast."""

from __future__ import annotations

import os

MODES = ("auto", "lines", "file", "off")
PROGRESS_FILE = "progress.json"


def fmt_time(s: float) -> str:
    s = int(max(s, 0))
    return f"{s // 3600}h{s // 60 % 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def progress_mode() -> str:
    """ABLATE_PROGRESS: auto (default) | lines | file | off; see ablate/train/progress.py."""
    mode = os.environ.get("ABLATE_PROGRESS", "auto")
    return mode if mode in MODES else "auto"


def every_seconds() -> float:
    """ABLATE_PROGRESS_EVERY: seconds between plain progress lines and between status lines (default 30)."""
    try:
        return max(0.0, float(os.environ.get("ABLATE_PROGRESS_EVERY", "30")))
    except ValueError:
        return 30.0
