"""``provision unlock``: break the run locks a gone run left, the controller's and each host's,
naming who held them. A lock whose holder still runs is refused unless ``force``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from provision.errors import ConfigError, ConnectError, LockHeld
from provision.run.lock import Holder

if TYPE_CHECKING:
    from pathlib import Path

    from provision.load.inventory import Inventory
    from provision.run.options import Options

__all__ = ["BrokenLock", "Unlocked", "unlock"]


@dataclass(frozen=True)
class BrokenLock:
    """A lock ``unlock`` removed: the cluster's (``host`` None, on the controller) or the one
    on ``host``; and who held it."""

    cluster: str
    host: str | None
    holder: Holder

    def describe(self, now: float) -> str:
        where = f"on host {self.host!r}" if self.host else f"of cluster {self.cluster!r}"
        return f"broke the run lock {where}: it was held by {self.holder.describe(now)}"


@dataclass(frozen=True)
class Unlocked:
    """What ``unlock`` did: the locks it broke, and the hosts that did not answer (their
    lock, if any, stays)."""

    cluster: str
    broken: list[BrokenLock]
    unreachable: list[str]


def _alive(holder: Holder, stale_after: float, now: float) -> bool:
    return holder.pid != 0 and not holder.gone(now, stale_after=stale_after)


def unlock(
    inventory: str | Path | Inventory | None, options: Options, *, force: bool = False
) -> Unlocked:
    """Break the cluster's stale run locks, the controller's and each host's. ``LockHeld``
    names a live holder (nothing is broken then) unless ``force``."""
    from provision.api import _inventory, _run_lock, run_vars
    from provision.api.hosts import cluster_hosts
    from provision.connection.ssh import Connection
    from provision.run.host_lock import break_host_lock, read_holder

    now = time.time()
    inventory = _inventory(inventory)
    variables = run_vars(inventory, options)
    lock = _run_lock(variables, options)
    held = lock.holder()
    if held is not None and _alive(held, lock.stale_after, now) and not force:
        raise LockHeld(f"cluster {lock.cluster!r} is locked by {held.describe(now)}, which still "
                       "runs; wait for it, or give --force if you are sure")  # fmt: skip
    try:
        hosts = cluster_hosts(inventory, variables, options)
    except ConfigError:
        hosts = []  # no running host: only the controller's lock can be left
    conns: list[tuple[str, Connection, Holder]] = []
    unreachable: list[str] = []
    try:
        for spec in hosts:
            conn = Connection(spec, known_hosts=options.known_hosts, retry_deadline=5.0)
            try:
                on_host = read_holder(conn)
            except ConnectError:
                unreachable.append(spec.name)
                conn.close()
                continue
            if on_host is None:
                conn.close()
                continue
            if _alive(on_host, lock.stale_after, now) and not force:
                conn.close()
                raise LockHeld(
                    f"host {spec.name!r} is locked by {on_host.describe(now)}, which still "
                    "runs; wait for it, or give --force if you are sure"
                )
            conns.append((spec.name, conn, on_host))
        broken = [BrokenLock(lock.cluster, None, held)] if held is not None else []
        if held is not None:
            lock.break_lock()
        for name, conn, on_host in conns:
            break_host_lock(conn)
            broken.append(BrokenLock(lock.cluster, name, on_host))
    finally:
        for _, conn, _ in conns:
            conn.close()
    return Unlocked(lock.cluster, broken, unreachable)
