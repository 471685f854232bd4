"""Claims: which driver owns a run while it trains, so two drivers never train the same run.

A claim is `<run_dir>/claim.json`, created with O_CREAT|O_EXCL (atomic on local
and NFS v3+ file systems), holding the owner's host, pid, driver id, start time
and a heartbeat that the owning driver refreshes while the run is alive. A claim
is stale when its owner is dead: on the same host, its pid is gone (or is now
another process); on another host, its heartbeat is older than `stale_after`.
A stale claim is taken over under a short-lived `claim.json.takeover` lock (itself
exclusive-create), so two drivers never both take over the same run.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Optional

from ablate.experiment.store import atomic_write

CLAIM = "claim.json"
TAKEOVER_TIMEOUT_S = 60.0  # a takeover lock older than this was left by a driver that died while taking over
HOST = socket.gethostname()


def _proc_start(pid: int) -> Optional[str]:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid from the owner."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def pid_alive(pid: int, started: Optional[str] = None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's live process
    now = _proc_start(pid)
    return started is None or now is None or now == started


def read_claim(run_dir: str | Path) -> Optional[dict[str, Any]]:
    """The claim record, {} for an unreadable one (being written, or torn by a crash), None when unclaimed."""
    p = Path(run_dir) / CLAIM
    try:
        return json.loads(p.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}


def is_stale(claim: dict[str, Any], stale_after: float, path: Optional[Path] = None) -> bool:
    if not claim:  # unreadable: judge by the file's age, as for another host
        try:
            return path is not None and time.time() - path.stat().st_mtime > stale_after
        except OSError:
            return True
    if claim.get("host") == HOST:
        return not pid_alive(int(claim.get("pid", -1)), claim.get("proc_start"))
    return time.time() - float(claim.get("heartbeat", 0)) > stale_after


class Claims:
    """The claims one driver holds; a daemon thread refreshes their heartbeats until close()."""

    def __init__(self, stale_after: float = 120.0, heartbeat_s: Optional[float] = None):
        self.stale_after = stale_after
        self.heartbeat_s = heartbeat_s or max(0.5, min(30.0, stale_after / 4))
        self.owner = uuid.uuid4().hex[:12]
        self.held: dict[Path, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def record(self, previous: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        now = time.time()
        rec = {"owner": self.owner, "host": HOST, "pid": os.getpid(), "proc_start": _proc_start(os.getpid()),
               "started": now, "heartbeat": now}
        if previous:
            rec["took_over"] = {k: previous.get(k) for k in ("owner", "host", "pid", "started", "heartbeat")}
        return rec

    def try_claim(self, run_dir: str | Path) -> tuple[bool, Optional[dict[str, Any]]]:
        """(True, our record) when this driver now owns the run; (False, the live owner's record) otherwise."""
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / CLAIM
        rec = self.record()
        if self._create(path, rec):
            return True, self._hold(path, rec)
        current = read_claim(run_dir)
        if current is None:  # released between our attempt and the read: try once more
            return (True, self._hold(path, rec)) if self._create(path, rec) else (False, read_claim(run_dir))
        if current.get("owner") == self.owner:
            return True, current
        if not is_stale(current, self.stale_after, path):
            return False, current
        return self._take_over(path, current)

    def _take_over(self, path: Path, seen: dict[str, Any]) -> tuple[bool, Optional[dict[str, Any]]]:
        lock = path.with_name(CLAIM + ".takeover")
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:  # another driver is taking it over now; a lock left by a dead one expires
            with contextlib.suppress(OSError):
                if time.time() - lock.stat().st_mtime > TAKEOVER_TIMEOUT_S:
                    lock.unlink()
            return False, seen
        os.close(fd)
        try:
            current = read_claim(path.parent)
            if current and current.get("owner") != seen.get("owner"):
                return False, current  # someone took it over before us
            if current is not None and not is_stale(current, self.stale_after, path):
                return False, current
            path.unlink(missing_ok=True)
            rec = self.record(previous=seen)
            if not self._create(path, rec):
                return False, read_claim(path.parent)
            return True, self._hold(path, rec)
        finally:
            lock.unlink(missing_ok=True)

    @staticmethod
    def _create(path: Path, rec: dict[str, Any]) -> bool:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        try:
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(rec, indent=2) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError:
            path.unlink(missing_ok=True)
            raise
        return True

    def _hold(self, path: Path, rec: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.held[path] = rec
        self._start()
        return rec

    def release(self, run_dir: str | Path) -> None:
        path = Path(run_dir) / CLAIM
        with self._lock:  # never while beat() rewrites it: that would bring the claim back
            rec = self.held.pop(path, None)
            if rec is not None and (read_claim(path.parent) or {}).get("owner") == self.owner:
                path.unlink(missing_ok=True)

    def release_all(self) -> None:
        for path in list(self.held):
            self.release(path.parent)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.release_all()

    def beat(self) -> None:
        """Refresh every held claim's heartbeat (atomically: a reader sees the old record or the new one)."""
        with self._lock:
            for path, rec in self.held.items():
                if (read_claim(path.parent) or {}).get("owner") != self.owner:
                    continue  # taken over by a driver that judged us dead
                rec["heartbeat"] = time.time()
                with contextlib.suppress(OSError):  # a full disk must not kill the heartbeat thread
                    atomic_write(path, json.dumps(rec, indent=2) + "\n")

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ablate-claims", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            self.beat()


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def is_disk_full(e: BaseException) -> bool:
    return isinstance(e, OSError) and e.errno in DISK_FULL
