"""Where the cluster's parts are on a host: its containers (by compose's labels), their
addresses on the shared network, the Redis password. Used by the route table and the checks.
"""

from __future__ import annotations

import json
import re
from typing import Any

from provision.cluster.layout import Layout
from provision.connection.base import Remote
from provision.errors import VerifyError
from provision.models import Result

__all__ = [
    "container_id",
    "container_ip",
    "docker",
    "parse_container_ip",
    "parse_gwbridge_ip",
    "parse_password",
    "reachable_ip",
    "redis_password",
]


def docker(conn: Remote, config: Layout, *argv: str, timeout: float = 60.0) -> Result:
    return conn.run(["docker", *argv], sudo=config.sudo, warn=True, timeout=timeout)


def container_id(conn: Remote, config: Layout, component: str, service: str) -> str:
    """The running (else any) container of a compose service, by compose's labels ("" if none);
    in a swarm, of the stack's service on this node, by the stack's labels.

    Labels rather than names: Compose v1 names containers ``p_s_1``, v2 ``p-s-1``.
    """
    project = config.project(component)
    if config.swarm:  # a stack's task: the stack's and the service's labels
        labels = [f"com.docker.stack.namespace={project}",
                  f"com.docker.swarm.service.name={project}_{service}"]  # fmt: skip
    else:
        labels = [f"com.docker.compose.project={project}",
                  f"com.docker.compose.service={service}"]  # fmt: skip
    filters = [a for label in labels for a in ("--filter", f"label={label}")]
    result = docker(conn, config, "ps", "-a", *filters, "--format", "{{.ID}} {{.State}}")
    rows = [line.split() for line in result.stdout.splitlines() if line.strip()]
    running = [r[0] for r in rows if len(r) > 1 and r[1] == "running"]
    return (running or [r[0] for r in rows] or [""])[0]


def parse_container_ip(inspect_json: str, network: str) -> str:
    """The address on ``network``, from ``docker inspect`` of ``.NetworkSettings.Networks``."""
    try:
        networks: dict[str, Any] = json.loads(inspect_json or "{}")
    except json.JSONDecodeError:
        return ""
    return str((networks.get(network) or {}).get("IPAddress") or "")


def container_ip(conn: Remote, config: Layout, cid: str) -> str:
    result = docker(conn, config, "inspect", "-f", "{{json .NetworkSettings.Networks}}", cid)
    return parse_container_ip(result.stdout, config.network) if result.ok else ""


def parse_gwbridge_ip(containers_json: str, cid: str) -> str:
    """A container's address on ``docker_gwbridge`` (``docker network inspect``'s
    ``.Containers``, keyed by full container ID), without the prefix length."""
    try:
        containers: dict[str, Any] = json.loads(containers_json or "{}") or {}
    except json.JSONDecodeError:
        return ""
    for full_id, entry in containers.items():
        if cid and full_id.startswith(cid):
            return str((entry or {}).get("IPv4Address") or "").split("/")[0]
    return ""


def reachable_ip(conn: Remote, config: Layout, cid: str) -> str:
    """Where the host itself reaches the container: its shared-network address, or in a swarm
    (an overlay is not routed to the host) its address on ``docker_gwbridge``."""
    if not config.swarm:
        return container_ip(conn, config, cid)
    result = docker(conn, config, "network", "inspect", "-f", "{{json .Containers}}",
                    "docker_gwbridge")  # fmt: skip
    return parse_gwbridge_ip(result.stdout, cid) if result.ok else ""


def parse_password(text: str) -> str | None:
    """``REDIS_PASSWORD=...`` from the secret file (the last assignment wins, as in sh)."""
    found = re.findall(r"^\s*(?:export\s+)?REDIS_PASSWORD=['\"]?([^'\"\s]+)", text, re.M)
    return found[-1] if found else None


def redis_password(conn: Remote, config: Layout) -> str:
    """Read the password on the host (root-only file); never put it in evidence or errors."""
    path = f"{config.secrets_dir}/redis.env"
    result = conn.run(["cat", path], sudo=config.sudo, warn=True)
    password = parse_password(result.stdout) if result.ok else None
    if not password:
        raise VerifyError(
            f"{conn.host.name}: no REDIS_PASSWORD in {path} "
            f"(exit {result.exit_code}: {result.stderr.strip()[:200]})"
        )
    return password
