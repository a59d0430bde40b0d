"""The checks of a Redis Cluster (``redis_mode: cluster``): the cluster's own view of itself,
read on its first node (``CLUSTER INFO``, ``CLUSTER KEYSLOT``, ``CLUSTER SHARDS``)."""

from __future__ import annotations

from typing import Any

from provision.cluster import lookup
from provision.cluster.layout import ROUTES_TAG, Layout
from provision.connection.base import Remote
from provision.models import CheckResult

__all__ = ["check_cluster_state", "parse_info", "parse_slot_owner"]

SLOTS = 16384
# $1 the port, $2 the routes key: the node's CLUSTER INFO, the key's slot, CLUSTER NODES.
_PROBE = (
    '. /run/secrets/redis_env; export REDISCLI_AUTH="$REDIS_PASSWORD"; '
    'redis-cli -p "$1" cluster info | tr -d "\\r"; echo "keyslot:$(redis-cli -p "$1" cluster '
    'keyslot "$2")"; redis-cli -p "$1" cluster nodes'
)


def parse_info(text: str) -> dict[str, str]:
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line and " " not in line)


def parse_slot_owner(nodes: str, slot: int) -> str:
    """The announced name of the master serving ``slot``, from CLUSTER NODES (``id
    ip:port@bus,hostname flags master ping pong epoch state range...``); "" if none."""
    for line in nodes.splitlines():
        fields = line.split()
        if len(fields) < 8 or "master" not in fields[2].split(",") or fields[7] != "connected":
            continue
        for span in fields[8:]:
            start, _, end = span.partition("-")
            if start.isdigit() and int(start) <= slot <= int(end or start):
                address = fields[1]
                return address.split(",", 1)[1] if "," in address else address.split("@")[0]
    return ""


def check_cluster_state(conn: Remote, config: Layout) -> CheckResult:
    """``cluster_state:ok``, all 16384 slots covered, every node known; which node owns the
    slot of the route table (its keys share the hash tag ``{provision}``)."""
    first = config.redis_services[0]
    cid = lookup.container_id(conn, config, "redis", first)
    if not cid:
        return CheckResult("cluster-state", False, f"no container for {first}", {})
    key = f"{ROUTES_TAG}:routes"
    probe = lookup.docker(conn, config, "exec", cid, "sh", "-c", _PROBE, "sh",
                          str(config.redis_port), key)  # fmt: skip
    info = parse_info(probe.stdout)
    slot_text = info.get("keyslot", "")
    slot = int(slot_text) if slot_text.isdigit() else -1
    owner = parse_slot_owner(probe.stdout, slot) if slot >= 0 else ""
    evidence: dict[str, Any] = {
        "cluster_state": info.get("cluster_state", ""),
        "slots_assigned": info.get("cluster_slots_assigned", ""),
        "slots_ok": info.get("cluster_slots_ok", ""),
        "known_nodes": info.get("cluster_known_nodes", ""),
        "masters": info.get("cluster_size", ""),
        "routes_key": key,
        "routes_slot": slot,
        "routes_slot_owner": owner,
    }
    passed = (
        info.get("cluster_state") == "ok"
        and info.get("cluster_slots_ok") == str(SLOTS)
        and info.get("cluster_known_nodes") == str(len(config.redis_services))
        and bool(owner)
    )
    summary = (
        f"cluster_state:{evidence['cluster_state'] or '?'}, {evidence['slots_ok'] or 0}/{SLOTS} "
        f"slots ok, {evidence['known_nodes'] or 0}/{len(config.redis_services)} nodes; "
        f"{key} in slot {slot} on {owner or '?'}"
    )
    if not passed:
        evidence["output"] = (probe.stdout + probe.stderr).strip()[-2000:]
    return CheckResult("cluster-state", passed, summary, evidence)
