"""Waiting for the dpkg lock, saying who holds it, and healing an interrupted dpkg.

On a just-booted host, cloud-init or unattended-upgrades often hold the dpkg lock
(``/var/lib/dpkg/lock-frontend``, an ``fcntl`` lock). apt can wait for it by itself
(``DPkg::Lock::Timeout``) but says nothing meanwhile; this waits first, polling the kernel's
lock table, and reports the holder (its pid and command line) as progress, so that a person
sees why the task takes long. At the deadline it fails naming the holder.

A dpkg run that was killed half-way (its SSH session dropped, say) leaves
``/var/lib/dpkg/updates`` non-empty, and apt then refuses every install until
``dpkg --configure -a`` has run: ``settle`` runs it.

>>> parse_probe("holder=812 /usr/bin/python3 /usr/bin/unattended-upgrade\\ninterrupted=1\\n")
DpkgState(holder='pid 812 (/usr/bin/python3 /usr/bin/unattended-upgrade)', interrupted=True)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from provision.errors import ProvisionError
from provision.tasks.base import TaskContext

__all__ = ["LOCK_FILE", "PROBE_SCRIPT", "DpkgState", "parse_probe", "settle", "wait_for_lock"]

LOCK_FILE = "/var/lib/dpkg/lock-frontend"
POLL_SECONDS = 2.0

# One round trip: who holds the lock (from /proc/locks, by the lock file's inode; lines with
# "->" are waiters, not holders), and whether dpkg was interrupted.
PROBE_SCRIPT = r"""
lock=$1
if ino=$(stat -c %i "$lock" 2>/dev/null); then
  pids=$(awk -v ino="$ino" '$2 != "->" { n = split($6, a, ":"); if (a[n] == ino) print $5 }' \
    /proc/locks | sort -u)
  for pid in $pids; do
    cmd=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null)
    echo "holder=$pid ${cmd% }"
  done
fi
if [ -n "$(ls -A /var/lib/dpkg/updates 2>/dev/null)" ]; then echo "interrupted=1"; fi
"""


@dataclass(frozen=True)
class DpkgState:
    holder: str = ""  # "pid N (command line)", empty when the lock is free
    interrupted: bool = False


def parse_probe(text: str) -> DpkgState:
    holders: list[str] = []
    interrupted = False
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key == "holder" and value.strip():
            pid, _, cmd = value.strip().partition(" ")
            holders.append(f"pid {pid} ({cmd})" if cmd else f"pid {pid}")
        elif key == "interrupted":
            interrupted = value.strip() == "1"
    return DpkgState(", ".join(holders), interrupted)


def probe(ctx: TaskContext) -> DpkgState:
    return parse_probe(ctx.read_sh(PROBE_SCRIPT, LOCK_FILE, sudo=True).stdout)


def wait_for_lock(
    ctx: TaskContext,
    timeout: float,
    *,
    who: str = "docker_engine",
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[DpkgState, float]:
    """Wait until nobody holds the dpkg lock, at most ``timeout`` seconds.

    Returns the last state seen and the seconds left (at least 1). Raises ``ProvisionError``
    naming the holder at the deadline."""
    deadline = monotonic() + timeout
    said = ""
    state = probe(ctx)
    while state.holder:
        left = deadline - monotonic()
        if left <= 0:
            raise ProvisionError(
                f"{who}: the dpkg lock ({LOCK_FILE}) is still held by {state.holder} after "
                f"{timeout:.0f} s; run again once it is released (or raise dpkg_lock_timeout)"
            )
        if state.holder != said:
            ctx.progress(
                f"waiting for the dpkg lock (up to {timeout:.0f} s), held by {state.holder}", 0, 0
            )
            said = state.holder
        sleep(min(POLL_SECONDS, max(left, 0.1)))
        state = probe(ctx)
    if said:
        ctx.progress("the dpkg lock was released", 0, 0)
    return state, max(deadline - monotonic(), 1.0)


def settle(ctx: TaskContext, state: DpkgState) -> None:
    """Finish the work of a dpkg run that was interrupted, as apt asks a person to."""
    if state.interrupted:
        ctx.progress("dpkg was interrupted by an earlier run: dpkg --configure -a", 0, 0)
        ctx.run(["env", "DEBIAN_FRONTEND=noninteractive", "dpkg", "--configure", "-a"], timeout=900)
