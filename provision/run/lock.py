"""The run lock of one cluster: a directory made with one atomic ``mkdir``, holding a record of
its holder (pid, host, command, start time).

A second ``up`` or ``down`` of the same cluster waits up to ``wait`` seconds, then refuses,
naming the holder. A lock whose holder is gone (its pid dead on this machine, or older than
``STALE_AFTER`` when taken on another machine, where its pid cannot be checked) is reported as
stale and left in place: only ``provision unlock`` breaks it, never a run on its own.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "run.lock"
>>> with RunLock(path, "demo").acquire(wait=0, command="provision up"):
...     RunLock(path, "demo").holder().command
'provision up'
>>> RunLock(path, "demo").holder() is None
True
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from provision.errors import LockHeld

__all__ = ["STALE_AFTER", "Holder", "RunLock", "pid_alive"]

#: a lock taken on another machine counts as stale after this many seconds (its pid cannot be
#: checked from here); longer than any honest ``up`` (the slowest, on EC2, takes ~10 minutes)
STALE_AFTER = 6 * 3600.0
#: a lock directory with no holder record yet is being taken; after this long it is abandoned
_RECORD_GRACE = 5.0
_HOLDER = "holder.json"


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this machine (signal 0 checks, sends nothing)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


@dataclass(frozen=True)
class Holder:
    """Who holds a lock. ``started`` is seconds since the epoch."""

    pid: int
    host: str
    command: str
    started: float

    def describe(self, now: float) -> str:
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started))
        age = max(0, int(now - self.started))
        return f"pid {self.pid} on {self.host} (`{self.command}`, since {since}, {age} s ago)"

    def gone(self, now: float, *, stale_after: float = STALE_AFTER) -> str:
        """Why this holder is gone ("" while it may still run)."""
        if self.host == socket.gethostname():
            return "" if pid_alive(self.pid) else f"pid {self.pid} is not running"
        if now - self.started > stale_after:
            return f"taken on another machine more than {int(stale_after)} s ago"
        return ""


class RunLock:
    """The run lock at ``path`` (a directory) of the cluster ``cluster``."""

    def __init__(self, path: Path, cluster: str, *, stale_after: float = STALE_AFTER) -> None:
        self.path = path
        self.cluster = cluster
        self.stale_after = stale_after

    def holder(self) -> Holder | None:
        """The current holder; None when unlocked. A lock whose record is missing or unreadable
        is reported with pid 0 (it is being taken, or its holder died while taking it)."""
        try:
            data = json.loads((self.path / _HOLDER).read_text())
            return Holder(
                int(data["pid"]), str(data["host"]), str(data["command"]), float(data["started"])
            )
        except FileNotFoundError:
            if not self.path.is_dir():
                return None
        except (OSError, ValueError, KeyError, TypeError):
            pass
        try:
            started = self.path.stat().st_mtime
        except FileNotFoundError:
            return None
        return Holder(0, "unknown", "unknown (no holder record)", started)

    @contextmanager
    def acquire(
        self,
        *,
        wait: float,
        command: str,
        on_wait: Callable[[str], None] | None = None,
        poll: float = 0.5,
    ) -> Iterator[Holder]:
        """Hold the lock for the ``with`` block; wait up to ``wait`` seconds for it."""
        mine = self._take(wait, command, on_wait, poll)
        try:
            yield mine
        finally:
            if self.holder() == mine:
                self._remove()

    def break_lock(self) -> Holder | None:
        """Remove the lock whoever holds it; returns the holder it had."""
        held = self.holder()
        if held is not None:
            self._remove()
        return held

    def _take(
        self, wait: float, command: str, on_wait: Callable[[str], None] | None, poll: float
    ) -> Holder:
        deadline = time.monotonic() + wait
        told = False
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        while True:
            try:
                self.path.mkdir(mode=0o700)
            except FileExistsError:
                held = self.holder()
                if held is None:
                    continue  # released between our mkdir and our read
                problem = self._refusal(held)
                if held.pid == 0 and not problem.stale:  # being taken: its record comes next
                    time.sleep(0.05)
                    continue
                if problem.stale or time.monotonic() >= deadline:
                    raise problem from None
                if on_wait is not None and not told:
                    on_wait(f"waiting up to {wait:g} s for the run lock: {problem}")
                    told = True
                time.sleep(poll)
                continue
            mine = Holder(os.getpid(), socket.gethostname(), command, time.time())
            self._write(mine)
            return mine

    def _refusal(self, held: Holder) -> LockHeld:
        now = time.time()
        gone = held.gone(now, stale_after=self.stale_after)
        if held.pid == 0 and now - held.started > _RECORD_GRACE:
            gone = "the lock has no holder record"
        if gone:
            return LockHeld(
                f"cluster {self.cluster!r} has a stale run lock {self.path}: held by "
                f"{held.describe(now)}, but {gone}; after checking, break it with "
                "`provision unlock`",
                stale=True,
            )
        return LockHeld(
            f"cluster {self.cluster!r} is locked by another run: {held.describe(now)}; "
            "wait for it (--lock-wait SECONDS) or, if that run is gone, `provision unlock`"
        )

    def _write(self, holder: Holder) -> None:
        tmp = self.path / f".{_HOLDER}.{holder.pid}"
        tmp.write_text(json.dumps(asdict(holder)))
        os.replace(tmp, self.path / _HOLDER)

    def _remove(self) -> None:
        for child in self.path.iterdir():
            child.unlink(missing_ok=True)
        self.path.rmdir()
