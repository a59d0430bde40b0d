"""The slow checks (opt-in): a route's round trip, and recovery after a Redis restart."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from provision.cluster import lookup
from provision.cluster.layout import Layout
from provision.connection.base import Remote
from provision.errors import RouteError
from provision.models import CheckResult
from provision.verify import probes as c
from provision.verify.basic import failure_evidence
from provision.verify.probes import HttpReply

__all__ = ["check_restart_recovery", "check_route_roundtrip", "poll", "routed_instance"]

ECHO_ENDPOINTS = ("echo-a:80", "echo-b:80")


def poll(
    probe: Callable[[], HttpReply], done: Callable[[HttpReply], bool], deadline: float
) -> tuple[HttpReply, float]:
    """Call ``probe`` until ``done`` (or ``deadline`` seconds pass); the last reply and the time."""
    start = time.monotonic()
    while True:
        reply = probe()
        elapsed = time.monotonic() - start
        if done(reply) or elapsed > deadline:
            return reply, elapsed
        time.sleep(0.5)


def _instance(reply: HttpReply) -> str:
    data = reply.json()
    return str(data.get("instance", "")) if isinstance(data, dict) else ""


def _routed(reply: HttpReply) -> bool:
    return reply.status == 200 and bool(_instance(reply))


def routed_instance(reply: HttpReply) -> str:
    """The echo instance that answered a routed request ("" if none did)."""
    return _instance(reply) if _routed(reply) else ""


def check_route_roundtrip(conn: Remote, config: Layout) -> CheckResult:
    """A route added through the tunnel reaches the echo backends (both, round robin), and
    once removed the same path answers 404."""
    from provision.cluster.routes import RouteTable

    if not config.echo_project:
        return CheckResult("route-roundtrip", False, "needs the echo backend (echo_project)")
    token = secrets.token_hex(4)
    prefix, path = f"/__provision-check-{token}", f"/__provision-check-{token}/probe"
    evidence: dict[str, Any] = {"prefix": prefix, "endpoints": list(ECHO_ENDPOINTS)}
    try:
        with RouteTable(conn, config) as table:
            table.add_route(prefix, f"provision-check-{token}", ECHO_ENDPOINTS)
            try:
                first, waited = poll(
                    lambda: c.http_get(conn, config, path), _routed, config.deadline
                )
                more = [c.http_get(conn, config, path) for _ in range(3)]
            finally:
                table.remove_route(prefix)
        gone, _ = poll(
            lambda: c.http_get(conn, config, path), lambda r: r.status == 404, config.deadline
        )
    except RouteError as exc:
        evidence.update(failure_evidence(conn, config, ("redis", config.redis_services[0])))
        return CheckResult("route-roundtrip", False, str(exc), evidence)
    instances = [_instance(r) for r in (first, *more)]
    evidence.update(
        seconds_to_route=round(waited, 2),
        instances=instances,
        first_body=first.body[:300],
        after_removal=[gone.status, gone.body[:200]],
    )
    passed = _routed(first) and set(instances) >= {"echo-a", "echo-b"} and gone.status == 404
    if not passed:
        evidence.update(failure_evidence(conn, config, ("openresty", "openresty")))
    return CheckResult(
        "route-roundtrip",
        passed,
        f"routed to {sorted(set(instances) - {''}) or 'nothing'}, then {gone.status} after removal",
        evidence,
    )


def check_restart_recovery(conn: Remote, config: Layout) -> CheckResult:
    """After ``compose restart`` of Redis, /ping by name answers PONG again (and a route is
    served fresh, not from the stale cache) within ``config.deadline`` seconds."""
    from provision.cluster.routes import RouteTable

    token = secrets.token_hex(4)
    prefix = f"/__provision-restart-{token}"
    before = lookup.container_ip(
        conn, config, lookup.container_id(conn, config, "redis", config.redis_services[0])
    )
    try:
        if config.echo_project:
            with RouteTable(conn, config) as table:
                table.add_route(prefix, f"provision-restart-{token}", ECHO_ENDPOINTS)
        restart = conn.run(
            config.compose_argv("redis", "restart"), sudo=config.sudo, warn=True, timeout=120
        )
        pong, ping_s = poll(
            lambda: c.http_get(conn, config, "/ping"),
            lambda r: r.body.strip() == "PONG",
            config.deadline,
        )
        fresh, route_s = _fresh_route(conn, config, prefix + "/x")
        if config.echo_project:
            with RouteTable(conn, config) as table:
                table.remove_route(prefix)
    except RouteError as exc:
        return CheckResult(
            "restart-recovery",
            False,
            str(exc),
            failure_evidence(conn, config, ("redis", config.redis_services[0])),
        )
    after = lookup.container_ip(
        conn, config, lookup.container_id(conn, config, "redis", config.redis_services[0])
    )
    passed = restart.ok and pong.body.strip() == "PONG" and fresh
    evidence: dict[str, Any] = {
        "restart": (restart.stdout + restart.stderr).strip()[-500:],
        "address_before": before,
        "address_after": after,
        "seconds_to_pong": round(ping_s, 2),
        "seconds_to_fresh_route": round(route_s, 2),
        "last_ping": pong.body.strip()[:200],
    }
    if not passed:
        evidence.update(
            failure_evidence(conn, config, ("redis", "redis"), ("openresty", "openresty"))
        )
    return CheckResult(
        "restart-recovery",
        passed,
        f"PONG after {ping_s:.1f}s, fresh routing after {route_s:.1f}s (redis {before} -> {after})",
        evidence,
    )


def _fresh_route(conn: Remote, config: Layout, path: str) -> tuple[bool, float]:
    if not config.echo_project:
        return True, 0.0
    reply, waited = poll(
        lambda: c.http_get(conn, config, path),
        lambda r: _routed(r) and "x-route-source" not in r.headers,
        config.deadline,
    )
    return _routed(reply) and "x-route-source" not in reply.headers, waited
