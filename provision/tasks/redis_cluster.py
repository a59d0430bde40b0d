"""``redis_cluster``: the nodes of the redis project form one Redis Cluster with every slot
covered — look first, then act.

- every node answers ``cluster_state:ok`` with 16384 slots and knows all the others: ``ok``;
- every node is new (knows only itself, holds no slot): ``redis-cli --cluster create`` with one
  replica per master (the password reaches redis-cli through ``REDISCLI_AUTH``, never on a
  command line), then wait for ``cluster_state:ok`` on every node: ``changed``;
- some nodes are new while the others still form a whole cluster (a node lost its volume): the
  failed ids of those names are forgotten and each new node is added back as a replica;
- anything else (a half-formed cluster): failed, with the exact command to inspect or fix it.
  A cluster is never reset.

Every command runs with ``docker exec`` in the first node's container, and reaches the others
by their service names on the shared network, as every client does.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from provision.errors import ConfigError, TaskError
from provision.models.names import check_name, check_port
from provision.tasks.base import ModuleSpec, Outcome, TaskContext

__all__ = ["SPEC", "NodeInfo", "RedisClusterArgs", "decide", "parse_infos"]

SLOTS = 16384
_AUTH = '. /run/secrets/redis_env; export REDISCLI_AUTH="$REDIS_PASSWORD"; '
# $1 the port, then the node names: each node's CLUSTER INFO, one section per node.
_INFO = _AUTH + (
    'p="$1"; shift; for n; do echo "== $n"; '
    'redis-cli -h "$n" -p "$p" cluster info 2>&1 | tr -d "\\r"; done'
)
# $1 the port, $2 the replicas per master, then the node names.
_CREATE = _AUTH + (
    'p="$1"; r="$2"; shift 2; set -- $(for n; do echo "$n:$p"; done); '
    'redis-cli --cluster create "$@" --cluster-replicas "$r" --cluster-yes'
)
# $1 the port, $2 the node's name: the ids other nodes hold for that name and mark failed.
_FAILED_IDS = _AUTH + (
    'redis-cli -h "$2" -p "$1" cluster nodes 2>&1 | tr -d "\\r" | '
    "awk '$3 ~ /fail/ {print $1, $2}'"
)
_FORGET = _AUTH + 'redis-cli -h "$2" -p "$1" cluster forget "$3"'
_ADD = _AUTH + 'redis-cli --cluster add-node "$2:$1" "$3:$1" --cluster-slave'


@dataclass(frozen=True)
class RedisClusterArgs:
    project: str  # the compose project of the nodes (found by compose's labels)
    nodes: tuple[str, ...]  # the nodes' service names, which they announce
    port: int = 6379
    replicas: int = 1
    timeout: float = 60.0  # seconds to wait for cluster_state:ok

    def __post_init__(self) -> None:
        check_name(self.project, "redis_cluster.project")
        for i, node in enumerate(self.nodes):
            check_name(node, f"redis_cluster.nodes[{i}]")
        check_port(self.port, "redis_cluster.port")
        if len(self.nodes) < 3 * (self.replicas + 1):
            raise ConfigError(
                f"a cluster of 3 masters with {self.replicas} replica(s) each needs at least "
                f"{3 * (self.replicas + 1)} nodes, got {len(self.nodes)}",
                field="redis_cluster.nodes",
            )


@dataclass(frozen=True)
class NodeInfo:
    name: str
    fields: Mapping[str, str] = field(default_factory=dict)
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.fields.get("cluster_state") == "ok"

    @property
    def slots(self) -> int:
        return int(self.fields.get("cluster_slots_assigned", "0") or 0)

    @property
    def known(self) -> int:
        return int(self.fields.get("cluster_known_nodes", "0") or 0)

    @property
    def new(self) -> bool:
        """Knows only itself and holds no slot: never part of a cluster (or lost its data)."""
        return not self.error and self.known == 1 and self.slots == 0


def parse_infos(stdout: str, nodes: Sequence[str]) -> list[NodeInfo]:
    """One ``NodeInfo`` per node from ``_INFO``'s output (a node that did not answer has an
    ``error``)."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in stdout.splitlines():
        if line.startswith("== "):
            current = line[3:].strip()
            sections[current] = []
        elif current is not None and line.strip():
            sections[current].append(line.strip())
    infos = []
    for name in nodes:
        lines = sections.get(name, [])
        pairs = dict(line.split(":", 1) for line in lines if ":" in line and " " not in line)
        if "cluster_state" not in pairs:
            infos.append(NodeInfo(name, {}, " ".join(lines)[:200] or "no answer"))
        else:
            infos.append(NodeInfo(name, pairs))
    return infos


def decide(infos: Sequence[NodeInfo]) -> tuple[str, list[str]]:
    """("ok" | "create" | "repair" | "broken", the nodes concerned) — pure, for the tests."""
    total = len(infos)
    if all(i.ok and i.slots == SLOTS and i.known == total for i in infos):
        return "ok", []
    if all(i.new for i in infos):
        return "create", [i.name for i in infos]
    new = [i for i in infos if i.new]
    rest = [i for i in infos if not i.new]
    if new and all(i.ok and i.slots == SLOTS for i in rest):
        return "repair", [i.name for i in new]
    return "broken", [i.name for i in infos if not (i.ok and i.slots == SLOTS)]


def _containers(ctx: TaskContext, project: str) -> dict[str, str]:
    result = ctx.read(
        ["docker", "ps", "--filter", f"label=com.docker.compose.project={project}",
         "--format", '{{.ID}} {{.Label "com.docker.compose.service"}}'])  # fmt: skip
    return {service: cid for cid, service in (line.split() for line in result.stdout.splitlines()
                                              if len(line.split()) == 2)}  # fmt: skip


def _exec(cid: str, script: str, *args: str) -> list[str]:
    return ["docker", "exec", cid, "sh", "-c", script, "sh", *args]


def info_argv(cid: str, args: RedisClusterArgs) -> list[str]:
    return _exec(cid, _INFO, str(args.port), *args.nodes)


def _infos(ctx: TaskContext, cid: str, args: RedisClusterArgs) -> list[NodeInfo]:
    return parse_infos(ctx.read(info_argv(cid, args)).stdout, args.nodes)


def _wait(ctx: TaskContext, cid: str, args: RedisClusterArgs) -> list[NodeInfo]:
    deadline = time.monotonic() + args.timeout
    while True:
        infos = _infos(ctx, cid, args)
        if decide(infos)[0] == "ok" or time.monotonic() > deadline:
            return infos
        ctx.progress("waiting for cluster_state:ok on every node", 0, 0)
        time.sleep(1.0)


def _fix_command(cid: str, args: RedisClusterArgs) -> str:
    return (
        f"docker exec -it {cid[:12]} sh -c '{_AUTH}redis-cli --cluster check "
        f"{args.nodes[0]}:{args.port}'  (then --cluster fix, or re-create the nodes' "
        "volumes with `provision down` / `provision up`)"
    )


def apply(ctx: TaskContext, args: RedisClusterArgs) -> Outcome:
    containers = _containers(ctx, args.project)
    missing = [n for n in args.nodes if n not in containers]
    if missing:
        if ctx.check:
            return ctx.changed(f"would create the cluster of {len(args.nodes)} nodes")
        raise TaskError(f"no running container for node(s) {', '.join(missing)} of "
                             f"project {args.project!r}")  # fmt: skip
    cid = containers[args.nodes[0]]
    infos = _infos(ctx, cid, args)
    verdict, concerned = decide(infos)
    if verdict == "ok":
        masters = infos[0].fields.get("cluster_size", "?")
        return ctx.ok(f"{len(infos)} nodes, {masters} masters, {SLOTS} slots covered")
    if verdict == "broken":
        states = "; ".join(f"{i.name}: {i.error or i.fields.get('cluster_state')} "
                           f"({i.slots} slots, knows {i.known})" for i in infos)  # fmt: skip
        return Outcome(False, f"the cluster is half-formed, not touched: {states}. "
                       f"Inspect it with: {_fix_command(cid, args)}", failed=True)  # fmt: skip
    if verdict == "create":
        ctx.run(_exec(cid, _CREATE, str(args.port), str(args.replicas), *args.nodes))
        msg = f"created a cluster of {len(args.nodes)} nodes, {args.replicas} replica(s) each"
    else:
        for name in concerned:
            _readd(ctx, cid, args, name, [n for n in args.nodes if n not in concerned])
        msg = f"re-added {', '.join(concerned)} as replica(s)"
    if ctx.check:
        return ctx.changed(f"would have {msg}")
    infos = _wait(ctx, cid, args)
    if decide(infos)[0] != "ok":
        return Outcome(True, f"{msg}, but cluster_state is not ok after {args.timeout:g}s. "
                       f"Inspect it with: {_fix_command(cid, args)}", failed=True)  # fmt: skip
    return ctx.changed(msg)


def _readd(
    ctx: TaskContext, cid: str, args: RedisClusterArgs, name: str, healthy: list[str]
) -> None:
    """Forget the failed id the healthy nodes hold for ``name``, then add it as a replica."""
    port = str(args.port)
    for other in healthy:
        rows = ctx.read(_exec(cid, _FAILED_IDS, port, other)).stdout.split("\n")
        for row in filter(None, rows):
            node_id, _, address = row.partition(" ")
            if address.endswith(f",{name}"):  # "ip:port@bus,hostname"
                ctx.run(_exec(cid, _FORGET, port, other, node_id))
    ctx.run(_exec(cid, _ADD, port, name, healthy[0]))


SPEC = ModuleSpec("redis_cluster", RedisClusterArgs, apply)
