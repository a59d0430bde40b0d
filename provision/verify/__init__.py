"""The verification suite: plain functions of a connection, each returning a ``CheckResult``.

A failed check is a result (``passed=False``, with evidence: ``compose ps`` and the last log
lines of the failing container), never an exception; only a broken connection to the host
(``ConnectError``) propagates.

>>> config = Layout(compose=("docker-compose",), http_url="http://127.0.0.1:80")
>>> for result in run_suite(conn, config, include=SLOW_CHECKS):  # doctest: +SKIP
...     print(result.name, result.passed, result.summary)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from provision.cluster.layout import Layout
from provision.connection.base import Remote
from provision.errors import ConfigError, ConnectError, ProvisionError
from provision.models import CheckResult
from provision.verify.basic import (
    check_containers,
    check_dns,
    check_negative_control,
    check_ping,
    check_redis_port_closed,
)
from provision.verify.cluster import check_cluster_state
from provision.verify.slow import check_restart_recovery, check_route_roundtrip
from provision.verify.swarm import SWARM_CHECKS, Swarm

__all__ = [
    "CHECKS",
    "DEFAULT_CHECKS",
    "FIRST_CHECKS",
    "SLOW_CHECKS",
    "Swarm",
    "check_containers",
    "check_dns",
    "check_negative_control",
    "check_ping",
    "check_redis_port_closed",
    "check_restart_recovery",
    "check_route_roundtrip",
    "run_suite",
]

Check = Callable[[Remote, Layout], CheckResult]

CHECKS: dict[str, Check] = {
    "containers": check_containers,
    "cluster-state": check_cluster_state,
    "dns": check_dns,
    "ping": check_ping,
    "negative-control": check_negative_control,
    "redis-port-closed": check_redis_port_closed,
    "route-roundtrip": check_route_roundtrip,
    "restart-recovery": check_restart_recovery,
}
#: run after every ``up`` (in a swarm, on every node: ``provision.verify.swarm``)
FIRST_CHECKS: tuple[str, ...] = (
    "swarm-nodes", "containers", "cluster-state", "dns", "ping", "negative-control",
    "swarm-routing",
)  # fmt: skip
#: checks that only mean something in one Redis mode (skipped, not passed, in the other)
ONLY_IN = {"cluster-state": "cluster"}
#: checks that only mean something in one topology: a swarm's own, and the single host's
#: that restart compose projects or open the tunnel on the host they run on
ONLY_TOPOLOGY = {
    "swarm-nodes": "swarm", "swarm-routing": "swarm",
    "route-roundtrip": "single", "restart-recovery": "single",
}  # fmt: skip
#: in a swarm, run before the others: it waits until the node's tasks run
SWARM_GATE = ("containers",)
#: what ``verify`` runs unless told otherwise
DEFAULT_CHECKS: tuple[str, ...] = (*FIRST_CHECKS, "redis-port-closed")
#: opt-in: they change the route table for a moment, or restart Redis
SLOW_CHECKS: tuple[str, ...] = ("route-roundtrip", "restart-recovery")


def run_suite(
    conn: Remote,
    config: Layout,
    *,
    checks: Sequence[str] = DEFAULT_CHECKS,
    include: Sequence[str] = (),
    swarm: Swarm | None = None,
) -> list[CheckResult]:
    """Run ``checks`` then ``include`` (e.g. ``SLOW_CHECKS``), in order, each once. In a swarm
    (``config.swarm``), ``swarm`` gives the manager's connection the node's checks need."""
    names = list(dict.fromkeys([*checks, *include]))
    names = [n for n in names if ONLY_IN.get(n, config.redis_mode) == config.redis_mode
             and ONLY_TOPOLOGY.get(n, config.topology) == config.topology]  # fmt: skip
    unknown = [n for n in names if n not in CHECKS and n not in SWARM_CHECKS]
    if unknown:
        raise ConfigError(
            f"unknown check(s) {', '.join(unknown)}; known: {', '.join(CHECKS)}", field="checks"
        )
    # The read-only checks run side by side (SSH channels of one connection); the slow ones
    # change the route table or restart Redis, so they run after, one at a time. In a swarm,
    # `stack deploy` returns before the tasks run (a node that just joined may still be
    # waiting for its images): "containers", which waits for them, goes first, alone.
    quick = [n for n in names if n not in SLOW_CHECKS]
    gate = [n for n in quick if config.swarm and n in SWARM_GATE]
    done = {n: _one(conn, config, n, swarm) for n in gate}
    rest = [n for n in quick if n not in done]
    with ThreadPoolExecutor(max_workers=max(1, len(rest))) as pool:
        done.update(zip(rest, pool.map(lambda n: _one(conn, config, n, swarm), rest), strict=True))
    return [done[n] for n in quick] + [_one(conn, config, n, swarm) for n in names
                                       if n in SLOW_CHECKS]  # fmt: skip


def _one(conn: Remote, config: Layout, name: str, swarm: Swarm | None) -> CheckResult:
    try:
        if config.swarm and name in SWARM_CHECKS:
            if swarm is None:
                return CheckResult(name, False, "a swarm's check needs the manager's connection")
            return SWARM_CHECKS[name](conn, config, swarm)
        return CHECKS[name](conn, config)
    except ConnectError:
        raise
    except ProvisionError as exc:  # e.g. the secret file is missing: a failed check
        return CheckResult(name, False, str(exc), {"error": type(exc).__name__})
