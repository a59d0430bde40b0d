"""The run lock on each host: ``/var/lib/provision/run.lock``, a directory made with one atomic
``mkdir`` on the host, holding the holder's record (pid, controller host, command, start time,
and the run's token, so that a run removes only its own lock).

The controller's lock (``provision.run.lock``) keeps two runs of one state folder apart; this
one keeps apart two controllers (two CI jobs, two laptops) converging the same host. ``up`` and
``down`` take it on each host before the host's first task and remove it when the run ends,
failed or not. A second run waits up to ``--lock-wait`` seconds, then fails that host naming
the holder. A lock whose holder is gone (its pid dead, when it was taken from this machine; or
older than ``STALE_AFTER``) is reported as stale and left in place: ``provision unlock`` breaks
it, never a run on its own.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from provision.connection.base import Remote
from provision.errors import LockHeld, ProvisionError
from provision.models import Result
from provision.run.lock import STALE_AFTER, Holder

__all__ = ["HOST_LOCK", "HostLock", "break_host_lock", "read_holder"]

HOST_LOCK = "/var/lib/provision/run.lock"
#: a lock folder with no holder record yet is being taken; after this long it is abandoned
_RECORD_GRACE = 5.0

# $1: the lock folder, $2: the holder record. Prints "taken", or the holder's record (exit 3).
_TAKE = (
    'mkdir -p "$(dirname "$1")" && if mkdir -m 700 "$1" 2>/dev/null; then '
    'printf %s "$2" > "$1/holder.json.tmp" && mv -f "$1/holder.json.tmp" "$1/holder.json" '
    '&& echo taken; else cat "$1/holder.json" 2>/dev/null; exit 3; fi'
)
# $1: the lock folder, $2: this run's token: removed only when the record carries it.
_RELEASE = 'if grep -qF -- "$2" "$1/holder.json" 2>/dev/null; then rm -rf -- "$1"; fi'
# $1: the lock folder: prints its record (exit 3 when there is no lock), then removes it.
_READ = 'if [ -d "$1" ]; then cat "$1/holder.json" 2>/dev/null; echo; else exit 3; fi'
_BREAK = 'if [ -d "$1" ]; then cat "$1/holder.json" 2>/dev/null; rm -rf -- "$1"; else exit 3; fi'


def _parse(text: str) -> Holder:
    """The holder in a record; a lock with no readable record (its taker died between the
    ``mkdir`` and the write) is reported with pid 0."""
    try:
        data = json.loads(text)
        return Holder(int(data["pid"]), str(data["host"]), str(data["command"]),
                      float(data["started"]))  # fmt: skip
    except (ValueError, KeyError, TypeError):
        return Holder(0, "unknown", "unknown (no holder record)", time.time())


def read_holder(conn: Remote, path: str = HOST_LOCK) -> Holder | None:
    """Who holds the host's run lock; None when it is not locked."""
    got = conn.sh(_READ, path, sudo=True, warn=True)
    return _parse(got.stdout.strip()) if got.ok else None


def break_host_lock(conn: Remote, path: str = HOST_LOCK) -> Holder | None:
    """Remove the host's run lock whoever holds it; returns the holder it had."""
    got = conn.sh(_BREAK, path, sudo=True, warn=True)
    return _parse(got.stdout.strip()) if got.ok else None


@dataclass
class HostLock:
    """This run's lock on one host (``conn``), named ``name`` in messages."""

    conn: Remote
    name: str
    command: str
    stale_after: float = STALE_AFTER
    token: str = ""
    path: str = HOST_LOCK

    def __post_init__(self) -> None:
        self.token = self.token or uuid.uuid4().hex

    def take_argv(self) -> list[str]:
        """One attempt at taking the lock, as a command: the runner sends it in the batch of
        the host's first reads, so that a free lock costs no round trip of its own."""
        return ["sh", "-c", _TAKE, "sh", self.path, self._record()]

    def _record(self) -> str:
        return json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                           "command": self.command, "started": time.time(),
                           "token": self.token})  # fmt: skip

    def acquire(
        self,
        *,
        wait: float,
        on_wait: Callable[[str], None] | None = None,
        poll: float = 1.0,
        first: Result | None = None,
    ) -> bool:
        """Take the lock, waiting up to ``wait`` seconds; ``LockHeld`` when it stays held.

        ``first``: the result of a ``take_argv`` already run. True when the first attempt took
        it (what was read alongside still holds); False when it was waited for."""
        record = self._record()
        deadline = time.monotonic() + wait
        told = False
        unrecorded_since: float | None = None
        attempts = 0
        while True:
            got = first or self.conn.sh(_TAKE, self.path, record, sudo=True, warn=True)
            first = None
            attempts += 1
            if got.ok and got.stdout.strip() == "taken":
                return attempts == 1
            if got.exit_code != 3:
                raise LockHeld(f"could not take the run lock {self.path} on host {self.name!r}: "
                               f"{(got.stderr or got.stdout).strip()[-300:]}")  # fmt: skip
            held = _parse(got.stdout.strip())
            if held.pid == 0:  # being taken (its record comes next), or abandoned
                unrecorded_since = unrecorded_since or time.monotonic()
                if time.monotonic() - unrecorded_since < _RECORD_GRACE:
                    time.sleep(0.2)
                    continue
            problem = self.refusal(held)
            if problem.stale or time.monotonic() >= deadline:
                raise problem
            if on_wait is not None and not told:
                on_wait(f"waiting up to {wait:g} s for the run lock: {problem}")
                told = True
            time.sleep(poll)

    def release(self) -> bool:
        """Remove the lock if this run holds it; False when the host could not be asked."""
        try:
            return self.conn.sh(_RELEASE, self.path, self.token, sudo=True, warn=True).ok
        except (ProvisionError, OSError):  # the host went away: the lock stays, reported
            return False

    def refusal(self, held: Holder) -> LockHeld:
        now = time.time()
        gone = held.gone(now, stale_after=self.stale_after)
        if held.pid == 0:
            gone = "the lock has no holder record"
        if gone:
            return LockHeld(
                f"host {self.name!r} has a stale run lock {self.path}: held by "
                f"{held.describe(now)}, but {gone}; after checking, break it with "
                "`provision unlock`",
                stale=True,
            )
        return LockHeld(
            f"host {self.name!r} is locked by another run: {held.describe(now)}; wait for it "
            "(--lock-wait SECONDS) or, if that run is gone, `provision unlock`"
        )
