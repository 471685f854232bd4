"""The names a run writes in its directory, and reading its result: what one run (train) and the run store
(experiment/store.py, which re-exports these) agree on. File I/O only, no torch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULT = "result.json"
FINISHED, FAILED = "finished", "failed"
RESUME_CKPT = "checkpoints/last.ckpt"


def read_result(run_dir: str | Path) -> dict[str, Any] | None:
    p = Path(run_dir) / RESULT
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return None
