"""The quick checks, run after every ``up``: containers, DNS, ping by name, the negative
control, and the Redis port seen from outside the containers."""

from __future__ import annotations

import json
import time
from typing import Any

from provision.cluster import lookup
from provision.cluster.layout import Layout
from provision.connection.base import Remote
from provision.models import CheckResult
from provision.models.names import is_loopback
from provision.verify import probes as c

__all__ = [
    "check_containers",
    "check_dns",
    "check_negative_control",
    "check_ping",
    "check_redis_port_closed",
    "components",
    "failure_evidence",
    "health_argv",
    "parse_probe",
    "parse_ps",
    "services",
]

SERVICES = {"openresty": ("openresty",), "echo": ("echo-a", "echo-b")}


def services(config: Layout, component: str) -> tuple[str, ...]:
    """A component's compose services (Redis: one, or the cluster's nodes)."""
    return config.redis_services if component == "redis" else SERVICES[component]


def components(config: Layout) -> list[str]:
    return ["redis", "openresty", *(["echo"] if config.echo_project else [])]


def failure_evidence(conn: Remote, config: Layout, *targets: tuple[str, str]) -> dict[str, Any]:
    """``compose ps`` of each component named (in a swarm: its stack's tasks on this node)
    and the last log lines of its container."""
    evidence: dict[str, Any] = {"compose_ps": {}, "logs": {}}
    for component, service in targets:
        if config.swarm:  # a stack's tasks on this node (compose knows nothing of them)
            argv = ["docker", "ps", "-a", "--filter",
                    f"label=com.docker.stack.namespace={config.project(component)}"]  # fmt: skip
        else:
            argv = config.compose_argv(component, "ps")
        ps = conn.run(argv, sudo=config.sudo, warn=True)
        evidence["compose_ps"][component] = (ps.stdout or ps.stderr).strip()
        cid = lookup.container_id(conn, config, component, service)
        logs = lookup.docker(conn, config, "logs", "--tail", "30", cid) if cid else None
        evidence["logs"][f"{component}/{service}"] = (
            c.tail(logs.stdout + logs.stderr) if logs else ["no container"]
        )
    return evidence


_PS_FORMAT = (
    '{{.Label "com.docker.compose.project"}} {{.Label "com.docker.compose.service"}} '
    "{{.State}} {{.Status}}"
)


def parse_ps(text: str) -> dict[tuple[str, str], tuple[str, str]]:
    """{(project, service): (state, health)} from ``docker ps -a --format _PS_FORMAT``;
    health comes from the Status text: "Up 5 seconds (healthy)", "(health: starting)"."""
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for line in text.splitlines():
        parts = line.split(" ", 3)
        if len(parts) < 3:
            continue
        status = parts[3] if len(parts) > 3 else ""
        health = ""
        if "(" in status and status.rstrip().endswith(")"):
            health = status.rsplit("(", 1)[1].rstrip(")").removeprefix("health: ")
            health = "" if health[:1].isdigit() else health  # "Exited (0) ..." is no health
        key = (parts[0], parts[1])
        if key not in found or parts[2] == "running":  # a running container wins
            found[key] = (parts[2], health)
    return found


def _states(conn: Remote, config: Layout) -> dict[str, tuple[str, str]]:
    """Every service's container state and health, in one ``docker ps``."""
    # Label filters are ANDed by Docker: take every compose container, pick ours below.
    out = lookup.docker(
        conn,
        config,
        "ps",
        "-a",
        "--filter",
        "label=com.docker.compose.project",
        "--format",
        _PS_FORMAT,
    ).stdout
    seen = parse_ps(out)
    return {
        f"{comp}/{service}": seen.get((config.project(comp), service), ("missing", ""))
        for comp in components(config)
        for service in services(config, comp)
    }


def health_argv(config_json: str) -> tuple[list[str], float] | None:
    """What Docker runs for a container's health check, and its timeout in seconds, from
    ``docker inspect -f '{{json .Config}}'``: ``CMD`` runs its argv, ``CMD-SHELL`` its text
    through the image's ``SHELL`` (``/bin/sh -c`` when it sets none); None for none
    (``NONE``, no check, unreadable)."""
    try:
        found = json.loads(config_json or "null")
    except json.JSONDecodeError:
        return None
    check = found.get("Healthcheck") if isinstance(found, dict) else None
    if not isinstance(check, dict):
        return None
    test = check.get("Test")
    if not isinstance(test, list) or len(test) < 2 or not all(isinstance(t, str) for t in test):
        return None
    timeout = float(check.get("Timeout") or 30e9) / 1e9  # nanoseconds; Docker's default 30 s
    if test[0] == "CMD":
        return test[1:], timeout
    if test[0] == "CMD-SHELL":
        shell = found.get("Shell")
        if not (isinstance(shell, list) and shell and all(isinstance(a, str) for a in shell)):
            shell = ["/bin/sh", "-c"]
        return [*shell, test[1]], timeout
    return None


def _passes_now(conn: Remote, config: Layout, key: str, deadline: float) -> bool:
    """Run a starting container's own health check now, as Docker runs it at each interval
    (an exec in the container), within its timeout and the check's ``deadline``; Docker
    marks the container healthy at its first pass, so a pass here is the verdict Docker
    would give at its next interval."""
    component, service = key.split("/", 1)
    cid = lookup.container_id(conn, config, component, service)
    if not cid:
        return False
    found = lookup.docker(conn, config, "inspect", "-f", "{{json .Config}}", cid)
    probe = health_argv(found.stdout) if found.ok else None
    if probe is None:
        return False
    argv, timeout = probe
    timeout = max(1.0, min(timeout, deadline - time.monotonic()))
    return lookup.docker(conn, config, "exec", cid, *argv, timeout=timeout).ok


_PASSED_NOW = "healthy (its check run now; Docker's first was due)"
_HEALTHY = ("", "healthy", _PASSED_NOW)


def check_containers(conn: Remote, config: Layout) -> CheckResult:
    """Each service has a running container whose health check (if any) passes."""
    deadline = time.monotonic() + config.deadline
    states = _states(conn, config)
    # Right after `up`, health is "starting" until Docker's first check, an interval (5 s)
    # away: the same check is run now instead, and again each second while it fails (a
    # service still starting fails it until it is ready) and Docker has no verdict.
    checked_now: set[str] = set()
    while True:
        starting = [k for k, (s, h) in states.items()
                    if (s, h) == ("running", "starting") and k not in checked_now]  # fmt: skip
        checked_now.update(k for k in starting if _passes_now(conn, config, k, deadline))
        if not set(starting) - checked_now or time.monotonic() >= deadline:
            break
        time.sleep(1)
        states = _states(conn, config)
    for k in checked_now:
        if states[k] == ("running", "starting"):
            states[k] = ("running", _PASSED_NOW)
    bad = [k for k, (s, h) in states.items() if s != "running" or h not in _HEALTHY]
    evidence: dict[str, Any] = {"containers": {k: " ".join(v).strip() for k, v in states.items()}}
    if bad:
        targets = [(k.split("/")[0], k.split("/")[1]) for k in bad]
        evidence.update(failure_evidence(conn, config, *targets))
        return CheckResult("containers", False, f"not running/healthy: {', '.join(bad)}", evidence)
    return CheckResult(
        "containers", True, f"{len(states)} containers running and healthy", evidence
    )


def check_dns(conn: Remote, config: Layout) -> CheckResult:
    """The name OpenResty uses for Redis resolves, inside its container, to the right address."""
    ocid = lookup.container_id(conn, config, "openresty", "openresty")
    if config.strategy == "host-gateway":  # an address, not a name: compare with the gateway
        host = c.env_of(conn, config, ocid).get("REDIS_HOST", "")
        gateway = c.network_gateway(conn, config, config.network)
        return CheckResult(
            "dns",
            bool(host) and host == gateway,
            f"REDIS_HOST={host} (gateway of {config.network}: {gateway})",
            {"REDIS_HOST": host, "gateway": gateway, "network": config.network},
        )
    if config.cluster:
        return _check_cluster_dns(conn, config, ocid)
    if config.strategy == "host-docker-internal":
        name, expected = "host.docker.internal", c.network_gateway(conn, config, "bridge")
    else:
        rcid = lookup.container_id(conn, config, "redis", "redis")
        name, expected = "redis", lookup.container_ip(conn, config, rcid) if rcid else ""
    got = lookup.docker(conn, config, "exec", ocid, "getent", "hosts", name) if ocid else None
    addrs = c.parse_getent(got.stdout) if got else []
    evidence: dict[str, Any] = {
        "name": name,
        "resolved": addrs,
        "expected": expected,
        "getent": (got.stdout + got.stderr).strip() if got else "no openresty container",
    }
    passed = bool(expected) and expected in addrs
    if not passed:
        evidence.update(
            failure_evidence(
                conn, config, ("openresty", "openresty"), ("redis", config.redis_services[0])
            )
        )
    summary = f"{name} -> {addrs or 'nothing'} (expected {expected or '?'})"
    return CheckResult("dns", passed, summary, evidence)


def _check_cluster_dns(conn: Remote, config: Layout, ocid: str) -> CheckResult:
    """Every node's name resolves inside OpenResty to that node's address (one getent)."""
    names = config.redis_services
    got = lookup.docker(conn, config, "exec", ocid, "getent", "hosts", *names) if ocid else None
    resolved: dict[str, list[str]] = {}
    for line in (got.stdout if got else "").splitlines():
        parts = line.split()
        for name in parts[1:]:
            if name in names:
                resolved.setdefault(name, []).extend(c.parse_getent(parts[0]))
    expected = {}
    for name in names:
        cid = lookup.container_id(conn, config, "redis", name)
        expected[name] = lookup.container_ip(conn, config, cid) if cid else ""
    wrong = [n for n in names if not expected[n] or expected[n] not in resolved.get(n, [])]
    evidence: dict[str, Any] = {"resolved": resolved, "expected": expected}
    if wrong:
        evidence.update(failure_evidence(conn, config, ("openresty", "openresty"),
                                         *(("redis", n) for n in wrong)))  # fmt: skip
        return CheckResult("dns", False, f"not resolved to their node: {', '.join(wrong)}",
                           evidence)  # fmt: skip
    return CheckResult("dns", True, f"{len(names)} node names resolve to their nodes", evidence)


def check_ping(conn: Remote, config: Layout) -> CheckResult:
    """Lua in OpenResty connects to Redis by name, AUTHs and PINGs (GET /ping -> PONG)."""
    reply = c.http_get(conn, config, "/ping")
    passed = reply.status == 200 and reply.body.strip() == "PONG"
    evidence: dict[str, Any] = {
        "url": config.http_url.rstrip("/") + "/ping",
        "status": reply.status,
        "body": reply.body.strip()[:500],
    }
    if not passed:
        evidence["health"] = c.router_details(conn, config)
        evidence.update(
            failure_evidence(
                conn, config, ("openresty", "openresty"), ("redis", config.redis_services[0])
            )
        )
    return CheckResult(
        "ping", passed, f"/ping -> {reply.status} {reply.body.strip()[:80]}", evidence
    )


def check_negative_control(conn: Remote, config: Layout) -> CheckResult:
    """The seed's trap, shown: inside OpenResty, 127.0.0.1:6379 is refused (it is OpenResty's
    own loopback), and the Redis address OpenResty is given is not a loopback one."""
    ocid = lookup.container_id(conn, config, "openresty", "openresty")
    if not ocid:
        return CheckResult(
            "negative-control",
            False,
            "no openresty container",
            failure_evidence(conn, config, ("openresty", "openresty")),
        )
    probe = lookup.docker(
        conn,
        config,
        "exec",
        ocid,
        "curl",
        "-sS",
        "-v",
        "-m",
        "3",
        "telnet://127.0.0.1:6379",
        timeout=30,
    )
    # curl exits 7 when it could not connect (28 would be a timeout); -v shows the errno.
    refused = probe.exit_code == 7
    error = [ln for ln in probe.stderr.splitlines() if "failed" in ln or ln.startswith("curl:")]
    host = c.env_of(conn, config, ocid).get("REDIS_HOST", "")
    evidence = {
        "probe": "curl telnet://127.0.0.1:6379 inside the openresty container",
        "exit_code": probe.exit_code,
        "error": error[:4],
        "REDIS_HOST": host,
    }
    if refused and not is_loopback(host):
        return CheckResult(
            "negative-control",
            True,
            f"127.0.0.1:6379 refused inside openresty; REDIS_HOST={host}",
            evidence,
        )
    why = "REDIS_HOST is a loopback address" if is_loopback(host) else "127.0.0.1:6379 not refused"
    evidence.update(failure_evidence(conn, config, ("openresty", "openresty")))
    return CheckResult("negative-control", False, why, evidence)


# Runs on the host: "primary" prints the address of the default route (no packet is sent for
# a UDP connect); "HOST PORT" tries a TCP connection and prints open/refused/error.
_TCP_PROBE = """
import socket, sys
if sys.argv[1] == "primary":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))
        print(s.getsockname()[0])
    except OSError:
        print(socket.gethostbyname(socket.gethostname()))
    sys.exit(0)
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close()
    print("open")
except ConnectionRefusedError as e:
    print("refused", e)
except OSError as e:
    print("error", e)
"""

_LIMITS = (
    "a TCP connect from the host to its own primary address: shows nothing (no 0.0.0.0 "
    "publish, no host process) answers there on the Redis port; it does not exercise the "
    "cloud firewall or security group, nor a path from another machine"
)


def parse_probe(stdout: str) -> str:
    """``open``, ``refused`` or ``error`` from the TCP probe's output."""
    word = stdout.strip().split(" ", 1)[0] if stdout.strip() else ""
    return word if word in ("open", "refused") else "error"


def check_redis_port_closed(conn: Remote, config: Layout) -> CheckResult:
    primary = conn.run(["python3", "-c", _TCP_PROBE, "primary"], warn=True).stdout.strip()
    probe = conn.run(["python3", "-c", _TCP_PROBE, primary, str(config.redis_port)], warn=True)
    rcid = lookup.container_id(conn, config, "redis", "redis")
    ports = lookup.docker(conn, config, "port", rcid).stdout.strip() if rcid else ""
    wide = [p for p in ports.splitlines() if "0.0.0.0:" in p or "[::]:" in p or ":::" in p]
    outcome = parse_probe(probe.stdout)
    evidence = {
        "primary_address": primary,
        "probe": (probe.stdout + probe.stderr).strip(),
        "published": ports.splitlines(),
        "limits": _LIMITS,
    }
    passed = outcome == "refused" and not wide
    summary = f"{primary}:{config.redis_port} {outcome}; published: {ports or 'none'}"
    return CheckResult("redis-port-closed", passed, summary, evidence)
