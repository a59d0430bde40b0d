"""Waiting for the dpkg and apt locks, saying who holds them, and healing an interrupted dpkg.

On a just-booted host, cloud-init, apt-daily and unattended-upgrades often hold the dpkg lock
(``/var/lib/dpkg/lock-frontend``), the package lists' lock (``/var/lib/apt/lists/lock``, taken
by ``apt-get update``) or the archives' lock (``/var/cache/apt/archives/lock``), all ``fcntl``
locks. apt waits for the dpkg lock by itself (``DPkg::Lock::Timeout``) but says nothing
meanwhile, and for the other two it does not wait at all: ``apt-get update`` fails at once.
This waits first for all three, polling the kernel's lock table, and reports the holder (its
pid and command line) as progress, so that a person sees why the task takes long. At the
deadline it fails naming the lock and its holder.

A dpkg run that was killed half-way (its SSH session dropped, say) leaves
``/var/lib/dpkg/updates`` non-empty, and apt then refuses every install until
``dpkg --configure -a`` has run: ``settle`` runs it.

>>> parse_probe("lock=/var/lib/apt/lists/lock\\nholder=812 /usr/bin/apt-get update\\n").name
'the apt lists lock'
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from provision.errors import TaskError
from provision.tasks.base import TaskContext

__all__ = [
    "LOCKS",
    "LOCK_FILE",
    "PROBE_SCRIPT",
    "DpkgState",
    "parse_probe",
    "settle",
    "wait_for_lock",
]

LOCK_FILE = "/var/lib/dpkg/lock-frontend"
#: every lock an install waits for: its file, and what a message calls it
LOCKS = {
    LOCK_FILE: "the dpkg lock",
    "/var/lib/apt/lists/lock": "the apt lists lock",
    "/var/cache/apt/archives/lock": "the apt archives lock",
}
POLL_SECONDS = 2.0

# One round trip: who holds each lock (from /proc/locks, by the lock file's inode; lines with
# "->" are waiters, not holders), and whether dpkg was interrupted.
PROBE_SCRIPT = r"""
for lock in "$@"; do
  if ino=$(stat -c %i "$lock" 2>/dev/null); then
    pids=$(awk -v ino="$ino" '$2 != "->" { n = split($6, a, ":"); if (a[n] == ino) print $5 }' \
      /proc/locks | sort -u)
    if [ -n "$pids" ]; then echo "lock=$lock"; fi
    for pid in $pids; do
      cmd=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null)
      echo "holder=$pid ${cmd% }"
    done
  fi
done
if [ -n "$(ls -A /var/lib/dpkg/updates 2>/dev/null)" ]; then echo "interrupted=1"; fi
"""


@dataclass(frozen=True)
class DpkgState:
    holder: str = ""  # "pid N (command line)", empty when every lock is free
    interrupted: bool = False
    lock: str = LOCK_FILE  # the (first) lock that is held

    @property
    def name(self) -> str:
        """What a message calls the held lock ("the dpkg lock")."""
        return LOCKS.get(self.lock, f"the lock {self.lock}")


def parse_probe(text: str) -> DpkgState:
    holders: dict[str, list[str]] = {}
    lock, interrupted = LOCK_FILE, False
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key == "lock" and value.strip():
            lock = value.strip()
        elif key == "holder" and value.strip():
            pid, _, cmd = value.strip().partition(" ")
            holders.setdefault(lock, []).append(f"pid {pid} ({cmd})" if cmd else f"pid {pid}")
        elif key == "interrupted":
            interrupted = value.strip() == "1"
    if not holders:
        return DpkgState("", interrupted)
    held, names = next(iter(holders.items()))
    return DpkgState(", ".join(names), interrupted, held)


def probe(ctx: TaskContext) -> DpkgState:
    return parse_probe(ctx.read_sh(PROBE_SCRIPT, *LOCKS, sudo=True).stdout)


def wait_for_lock(
    ctx: TaskContext,
    timeout: float,
    *,
    who: str = "docker_engine",
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[DpkgState, float]:
    """Wait until nobody holds the dpkg or apt locks, at most ``timeout`` seconds.

    Returns the last state seen and the seconds left (at least 1). Raises ``ProvisionError``
    naming the holder at the deadline."""
    deadline = monotonic() + timeout
    said = waited = ""
    state = probe(ctx)
    while state.holder:
        left = deadline - monotonic()
        if left <= 0:
            raise TaskError(
                f"{who}: {state.name} ({state.lock}) is still held by {state.holder} after "
                f"{timeout:.0f} s; run again once it is released (or raise dpkg_lock_timeout)"
            )
        if f"{state.lock} {state.holder}" != said:
            ctx.progress(
                f"waiting for {state.name} (up to {timeout:.0f} s), held by {state.holder}", 0, 0
            )
            said, waited = f"{state.lock} {state.holder}", state.name
        sleep(min(POLL_SECONDS, max(left, 0.1)))
        state = probe(ctx)
    if said:
        ctx.progress(f"{waited} was released", 0, 0)
    return state, max(deadline - monotonic(), 1.0)


def settle(ctx: TaskContext, state: DpkgState) -> None:
    """Finish the work of a dpkg run that was interrupted, as apt asks a person to."""
    if state.interrupted:
        ctx.progress("dpkg was interrupted by an earlier run: dpkg --configure -a", 0, 0)
        ctx.run(["env", "DEBIAN_FRONTEND=noninteractive", "dpkg", "--configure", "-a"], timeout=900)
