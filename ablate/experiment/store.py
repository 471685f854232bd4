"""The run store: one directory per run, the run directories are the source of truth.

    runs/<name>/experiment.yaml        the experiment as given, plus overrides
    runs/<name>/<run_id>/config.yaml   fully resolved config of the run
    runs/<name>/<run_id>/result.json   status, metrics, timing, reproduction info (written last, atomically)
    runs/<name>/<run_id>/claim.json    the owning driver (host, pid, heartbeat) while the run trains (claims.py)
    runs/<name>/<run_id>/checkpoints/last.ckpt   full training state to resume from; gone once the run ends
    runs/<name>/results.csv            one row per run, rebuilt from the run directories (results.py)

File I/O only: what a run directory holds and how it is written.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

# What a run writes (defined with the run, below the store); the store's readers import them from here.
from ablate.train.run_files import FAILED, FINISHED, RESULT, RESUME_CKPT, read_result  # noqa: F401

KEEP = ("claim.json", "claim.json.takeover")  # the owner's claim survives a reset of its run directory


def atomic_write(path: str | Path, text: str) -> None:
    """Write text so a reader (or a kill) sees the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_yaml(path: str | Path, obj: Any) -> None:
    atomic_write(path, yaml.safe_dump(obj, sort_keys=False))


def status(run_dir: str | Path) -> str:
    """finished | failed | new (never run, or killed before it wrote its result)."""
    return inspect(run_dir)[0]


def inspect(run_dir: str | Path) -> tuple[str, str]:
    """(status, note): the note says why a run that left a result.json must be redone (corrupt, no status)."""
    p = Path(run_dir) / RESULT
    if not p.is_file():
        return "new", ""
    try:
        r = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        return "new", f"its result.json is unreadable ({type(e).__name__}: {' '.join(str(e).split())[:120]}): redone"
    if not isinstance(r, dict) or r.get("status") not in (FINISHED, FAILED):
        return "new", "its result.json has no status: redone"
    return r["status"], ""


def clear(run_dir: str | Path, keep: tuple[str, ...] = KEEP) -> None:
    """Empty a run directory, keeping the claim (the driver that clears it owns it)."""
    d = Path(run_dir)
    for p in list(d.iterdir()) if d.is_dir() else []:
        if p.name in keep:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)


def check_writable(root: str | Path) -> None:
    """Create root and write a file in it; raises OSError (with errno and filename) when it cannot."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".write-test.")
    os.close(fd)
    os.unlink(tmp)


def writable(path: str | Path, flag: str) -> Path:
    """path, once a file can be written in it; else ConfigErrors naming the flag, the path and why (under a file,
    no permission, a read-only file system): one line, exit 2, nothing written. The folders made for the check
    are removed again, so a command that fails after it leaves no empty folder behind; its writer makes them."""
    from ablate.errors import ConfigError, ConfigErrors

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigErrors([ConfigError(flag, str(path), "exists and is not a directory: give a folder")])
    made = [p for p in [path, *path.parents] if not p.exists()]  # deepest first
    try:
        check_writable(path)
    except OSError as e:
        where = f" ({e.filename})" if e.filename and str(e.filename) != str(path) else ""
        raise ConfigErrors([ConfigError(flag, str(path), f"cannot be created or written{where}: "
                                        f"{e.strerror or e}; give a folder you can write")]) from None
    finally:
        for p in made:
            try:
                p.rmdir()
            except OSError:
                break
    return path


class Store:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def run_dir(self, run_id: str) -> Path:
        return self.root / run_id

    def status(self, run_id: str) -> str:
        return status(self.run_dir(run_id))

    def reset(self) -> None:
        """--fresh: forget every run of this experiment."""
        if self.root.exists():
            shutil.rmtree(self.root)

    def prepare_run(self, run_id: str) -> tuple[Path, bool]:
        """The directory of a (re)started run and whether it resumes: an unfinished run that left a resume
        checkpoint keeps its files; otherwise leftovers of a failed or killed attempt go (the claim stays)."""
        d = self.run_dir(run_id)
        resume = (d / RESUME_CKPT).is_file() and inspect(d)[0] != FAILED
        if resume:
            (d / RESULT).unlink(missing_ok=True)  # a corrupt one
        else:
            clear(d)
        d.mkdir(parents=True, exist_ok=True)
        return d, resume
