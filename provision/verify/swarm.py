"""The checks of ``topology: swarm``, run on every node with the manager's connection beside
the node's own: the swarm's nodes all Ready, the stacks' services converged and this node's
OpenResty task running, ``redis`` resolved inside that task to Redis's task address, and a
route through this node's own port 80 reaching the echo replicas wherever Swarm placed them.

``ping``, ``negative-control`` and ``redis-port-closed`` are the single host's checks
(``provision.verify.basic``): they look at this node's OpenResty task and this node's ports.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from provision.cluster import lookup
from provision.cluster.layout import Layout
from provision.connection.base import Remote
from provision.errors import RouteError
from provision.models import CheckResult
from provision.verify import probes as c
from provision.verify.basic import SERVICES, components, failure_evidence, parse_ps, services
from provision.verify.slow import ECHO_ENDPOINTS, poll, routed_instance

__all__ = [
    "SWARM_CHECKS",
    "Swarm",
    "check_swarm_containers",
    "check_swarm_dns",
    "check_swarm_nodes",
    "check_swarm_routing",
    "parse_network_tasks",
    "parse_node_ls",
    "parse_service_ls",
    "parse_service_ps",
]


@dataclass(frozen=True)
class Swarm:
    """What a node's checks need beyond the node itself: the manager's connection (``docker
    node ls``, ``docker service ...`` answer there only, and the route table's tunnel ends
    there) and how many nodes the swarm should have."""

    manager: Remote
    nodes: int


SwarmCheck = Callable[[Remote, Layout, Swarm], CheckResult]

_NODE_FORMAT = "{{.ID}} {{.Status}} {{.Availability}} {{.Hostname}}"
_STACK_PS_FORMAT = (
    '{{.Label "com.docker.stack.namespace"}} {{.Label "com.docker.swarm.service.name"}} '
    "{{.State}} {{.Status}}"
)


def parse_node_ls(stdout: str) -> list[dict[str, str]]:
    """Rows of ``docker node ls --format _NODE_FORMAT``."""
    rows = []
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) >= 4:
            rows.append({"id": parts[0], "status": parts[1], "availability": parts[2],
                         "hostname": parts[3]})  # fmt: skip
    return rows


def parse_service_ls(stdout: str) -> dict[str, str]:
    """{service: "running/desired"} from ``docker service ls --format '{{.Name}} {{.Replicas}}'``
    (a global service shows "3/3" too; "(max 1 per node)" and the like are dropped)."""
    found = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            found[parts[0]] = parts[1]
    return found


def parse_service_ps(stdout: str) -> dict[str, list[str]]:
    """{service: [node hostname, ...]} of the running tasks, from ``docker service ps
    --filter desired-state=running --format '{{.Name}} {{.Node}} {{.CurrentState}}'``
    (task names are ``service.slot`` or ``service.nodeid``)."""
    found: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2] == "Running":
            found.setdefault(parts[0].rsplit(".", 1)[0], []).append(parts[1])
    return found


def parse_network_tasks(inspect_json: str, service: str) -> list[str]:
    """The tasks' addresses of ``service`` on an overlay, from ``docker network inspect
    --verbose --format '{{json .Services}}'`` (each task's ``EndpointIP``)."""
    try:
        found: dict[str, Any] = json.loads(inspect_json or "{}") or {}
    except json.JSONDecodeError:
        return []
    entry = found.get(service) or {}
    return [str(t.get("EndpointIP")) for t in entry.get("Tasks") or [] if t.get("EndpointIP")]


def _node_name(conn: Remote, config: Layout) -> tuple[str, str]:
    """This node's (id, hostname) as the swarm knows it."""
    got = lookup.docker(conn, config, "info", "--format", "{{.Swarm.NodeID}} {{.Name}}")
    parts = got.stdout.split() if got.ok else []
    return (parts[0], parts[1]) if len(parts) == 2 else ("", "")


def check_swarm_nodes(conn: Remote, config: Layout, swarm: Swarm) -> CheckResult:
    """``docker node ls`` on the manager: every node Ready and Active, as many as the cluster
    has hosts, this node among them."""
    node_id, hostname = _node_name(conn, config)
    listed = lookup.docker(swarm.manager, config, "node", "ls", "--format", _NODE_FORMAT)
    rows = parse_node_ls(listed.stdout)
    bad = [r["hostname"] for r in rows if r["status"] != "Ready" or r["availability"] != "Active"]
    mine = [r for r in rows if r["id"] == node_id]
    evidence: dict[str, Any] = {
        "node": hostname, "node_id": node_id, "manager": swarm.manager.host.name,
        "nodes": [" ".join(r.values()) for r in rows], "expected": swarm.nodes,
    }  # fmt: skip
    if not listed.ok:
        evidence["error"] = listed.stderr.strip()[-300:]
    passed = bool(mine) and not bad and len(rows) == swarm.nodes
    summary = (
        f"{len(rows) - len(bad)}/{len(rows)} nodes Ready (expected {swarm.nodes}); "
        f"this node {hostname or '?'} {mine[0]['status'] if mine else 'not listed'}"
    )
    return CheckResult("swarm-nodes", passed, summary, evidence)


def _stack_services(config: Layout) -> list[str]:
    return [f"{config.project(comp)}_{s}" for comp in components(config)
            for s in services(config, comp)]  # fmt: skip


def _tasks_here(conn: Remote, config: Layout) -> dict[str, tuple[str, str]]:
    out = lookup.docker(conn, config, "ps", "-a", "--filter", "label=com.docker.stack.namespace",
                        "--format", _STACK_PS_FORMAT).stdout  # fmt: skip
    return {service: state for (_, service), state in parse_ps(out).items()}


def check_swarm_containers(conn: Remote, config: Layout, swarm: Swarm) -> CheckResult:
    """This node's OpenResty task is running and healthy (it is a global service), and on the
    manager every service of the stacks has all its replicas running."""
    wanted = _stack_services(config)
    openresty = f"{config.openresty_project}_openresty"
    deadline = time.monotonic() + config.deadline
    while True:
        here = _tasks_here(conn, config)
        listed = lookup.docker(swarm.manager, config, "service", "ls", "--format",
                               "{{.Name}} {{.Replicas}}")  # fmt: skip
        replicas = parse_service_ls(listed.stdout)
        short = [s for s in wanted if not _converged(replicas.get(s, ""))]
        state, health = here.get(openresty, ("missing", ""))
        ready = state == "running" and health in ("", "healthy")
        if (ready and not short) or time.monotonic() > deadline:
            break
        time.sleep(1)
    evidence: dict[str, Any] = {
        "tasks_here": {k: " ".join(v).strip() for k, v in sorted(here.items())},
        "replicas": {s: replicas.get(s, "missing") for s in wanted},
    }
    if not ready:
        evidence.update(failure_evidence(conn, config, ("openresty", "openresty")))
    problems = ([f"{openresty} here {state} {health}".strip()] if not ready else []) + [
        f"{s} {replicas.get(s, 'missing')}" for s in short
    ]
    if problems:
        return CheckResult("containers", False, f"not converged: {', '.join(problems)}", evidence)
    return CheckResult("containers", True, f"openresty running here; {len(wanted)} services "
                       "with all replicas running", evidence)  # fmt: skip


def _converged(replicas: str) -> bool:
    running, _, desired = replicas.partition("/")
    return running.isdigit() and running == desired and int(desired) > 0


def check_swarm_dns(conn: Remote, config: Layout, swarm: Swarm) -> CheckResult:
    """Inside this node's OpenResty task, ``redis`` resolves to the Redis task's address on the
    overlay (``endpoint_mode: dnsrr``: the task's own address, no VIP)."""
    ocid = lookup.container_id(conn, config, "openresty", "openresty")
    got = lookup.docker(conn, config, "exec", ocid, "getent", "hosts", "redis") if ocid else None
    addrs = c.parse_getent(got.stdout) if got else []
    service = f"{config.redis_project}_redis"
    shown = lookup.docker(swarm.manager, config, "network", "inspect", "--verbose", "--format",
                          "{{json .Services}}", config.network)  # fmt: skip
    expected = parse_network_tasks(shown.stdout, service)
    _, hostname = _node_name(conn, config)
    evidence: dict[str, Any] = {
        "node": hostname, "name": "redis", "resolved": addrs, "expected": expected,
        "service": service, "network": config.network,
        "getent": (got.stdout + got.stderr).strip() if got else "no openresty task here",
    }  # fmt: skip
    passed = bool(addrs) and bool(expected) and set(addrs) <= set(expected)
    if not passed:
        evidence.update(failure_evidence(conn, config, ("openresty", "openresty")))
    summary = f"redis -> {addrs or 'nothing'} on {hostname or '?'} (tasks of {service}: " + (
        f"{', '.join(expected) or '?'})"
    )
    return CheckResult("dns", passed, summary, evidence)


def check_swarm_routing(conn: Remote, config: Layout, swarm: Swarm) -> CheckResult:
    """A route added through the manager's tunnel, requested through THIS node's port 80,
    reaches both echo replicas wherever Swarm runs them (evidence: which node answered);
    once removed, the same path answers 404."""
    from provision.cluster.routes import RouteTable

    token = secrets.token_hex(4)
    prefix, path = f"/__provision-check-{token}", f"/__provision-check-{token}/probe"
    _, hostname = _node_name(conn, config)
    echo = [f"{config.project('echo')}_{s}" for s in SERVICES["echo"]]
    placed = parse_service_ps(lookup.docker(
        swarm.manager, config, "service", "ps", "--filter", "desired-state=running",
        "--format", "{{.Name}} {{.Node}} {{.CurrentState}}", *echo).stdout)  # fmt: skip
    placement = {s.split("_", 1)[1]: nodes for s, nodes in placed.items()}
    evidence: dict[str, Any] = {"node": hostname, "url": config.http_url, "prefix": prefix,
                                "placement": placement}  # fmt: skip
    try:
        with RouteTable(swarm.manager, config) as table:
            table.add_route(prefix, f"provision-check-{token}", ECHO_ENDPOINTS)
            try:
                first, waited = poll(
                    lambda: c.http_get(conn, config, path),
                    lambda r: bool(routed_instance(r)),
                    config.deadline,
                )
                more = [c.http_get(conn, config, path) for _ in range(5)]
            finally:
                table.remove_route(prefix)
        gone, _ = poll(lambda: c.http_get(conn, config, path), lambda r: r.status == 404,
                       config.deadline)  # fmt: skip
    except RouteError as exc:
        return CheckResult("swarm-routing", False, str(exc), evidence)
    answered = sorted({routed_instance(r) for r in (first, *more)} - {""})
    remote = [i for i in answered if any(n != hostname for n in placement.get(i, []))]
    evidence.update(seconds_to_route=round(waited, 2), answered=answered, from_other_nodes=remote,
                    after_removal=[gone.status, gone.body[:200]])  # fmt: skip
    passed = set(answered) >= {"echo-a", "echo-b"} and gone.status == 404
    if not passed:
        evidence.update(failure_evidence(conn, config, ("openresty", "openresty")))
    where = ", ".join(f"{i}@{'/'.join(placement.get(i, ['?']))}" for i in answered)
    summary = (f"through {hostname or '?'}:{config.http_port} to {where or 'nothing'} "
               f"({len(remote)} on other nodes), then {gone.status} after removal")  # fmt: skip
    return CheckResult("swarm-routing", passed, summary, evidence)


#: the checks that differ in a swarm, by the name they have in the suite
SWARM_CHECKS: dict[str, SwarmCheck] = {
    "swarm-nodes": check_swarm_nodes,
    "containers": check_swarm_containers,
    "dns": check_swarm_dns,
    "swarm-routing": check_swarm_routing,
}
