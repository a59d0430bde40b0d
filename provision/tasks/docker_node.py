"""``docker_node``: this host's Swarm node labels, set on the manager; and, on the manager, the
nodes of hosts gone for good removed from the swarm.

``labels`` are the node's ``io.provision.*`` labels, exactly (others are left alone), set
through this host when it is a manager, else through ``manager``: Redis is
pinned by ``io.provision.redis=true`` to the node that holds its volume. ``members`` (on the
manager): the inventory names of the cluster's hosts; a node that is ``Down`` and is none of
theirs is removed (a replaced instance's old node).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from provision.connection.base import Remote
from provision.errors import ConfigError, TaskError
from provision.models.names import check_name
from provision.tasks.base import ModuleSpec, Outcome, Reads, TaskContext
from provision.tasks.docker_swarm import (
    JOIN_WAIT,
    SWARM_INFO,
    SwarmInfo,
    parse_swarm,
    swarm_info,
    wait_for_manager,
)

__all__ = ["LABEL_PREFIX", "SPEC", "DockerNodeArgs", "label_changes", "parse_nodes"]

LABEL_PREFIX = "io.provision."
NODES = ["docker", "node", "ls", "--format", "{{.ID}} {{.Status}} {{.Hostname}} {{.ManagerStatus}}"]
# This node's labels, on a manager ("self": the node of the engine asked).
OWN_LABELS = ["docker", "node", "inspect", "--format", "{{json .Spec.Labels}}", "self"]


@dataclass(frozen=True)
class DockerNodeArgs:
    manager: str
    labels: dict[str, str] = field(default_factory=dict)
    members: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_name(self.manager, "docker_node.manager")
        for key, value in self.labels.items():
            if not key.startswith(LABEL_PREFIX):
                raise ConfigError(f"label {key!r} must start with {LABEL_PREFIX}",
                                  field="docker_node.labels")  # fmt: skip
            check_name(key, "docker_node.labels")
            check_name(str(value), f"docker_node.labels.{key}")
        for i, name in enumerate(self.members):
            check_name(name, f"docker_node.members[{i}]")


def label_changes(held: Mapping[str, str], wanted: Mapping[str, str]) -> list[str]:
    """``docker node update`` arguments that make our labels exactly ``wanted``."""
    ours = {k: v for k, v in held.items() if k.startswith(LABEL_PREFIX)}
    args = [a for k, v in sorted(wanted.items()) if ours.get(k) != str(v)
            for a in ("--label-add", f"{k}={v}")]  # fmt: skip
    return args + [a for k in sorted(set(ours) - set(wanted)) for a in ("--label-rm", k)]


def parse_nodes(stdout: str) -> list[tuple[str, str, str, str]]:
    """(id, status, hostname, manager status) rows of ``docker node ls``; the id's "*" mark
    dropped; the manager status is "" for a worker (Leader, Reachable, Unreachable else)."""
    rows = []
    for line in stdout.splitlines():
        parts = line.replace(" * ", " ").split()
        if len(parts) >= 3:
            rows.append((parts[0], parts[1], parts[2], parts[3] if len(parts) > 3 else ""))
    return rows


def _on(ctx: TaskContext, conn: Remote, argv: Sequence[str]) -> None:
    """Run a changing command on ``conn`` (the manager), or only record it in check mode."""
    ctx.executed.append(f"{conn.host.name}: {' '.join(argv)}")
    if not ctx.check:
        conn.run(argv, sudo=ctx.become)


def reads(args: DockerNodeArgs, variables: Mapping[str, Any]) -> Reads:
    """This host's swarm state and, as a manager would answer it, its node's labels; on the
    first host, the swarm's nodes (for the gone ones). A worker's labels are read on the
    manager, and the members' node ids on each member: reads on other hosts, not here."""
    declared: dict[str, list[str]] = {"swarm": SWARM_INFO, "labels": OWN_LABELS}
    if variables.get("inventory_hostname") == args.manager:
        declared["nodes"] = NODES
    return declared


def _prune(ctx: TaskContext, members: tuple[str, ...], mine: SwarmInfo) -> list[str]:
    keep = {mine.node_id}
    for name in members:
        if name == ctx.host.name:
            continue
        info = swarm_info(ctx.peer(name), ctx.become)
        if info is not None and info.node_id:
            keep.add(info.node_id)
    listed = parse_nodes(ctx.read(NODES).stdout)
    gone = [row for row in listed if row[1] == "Down" and row[0] not in keep]
    for node, _, _, managing in gone:
        if managing:
            _on(ctx, ctx.conn, ["docker", "node", "demote", node])
        _on(ctx, ctx.conn, ["docker", "node", "rm", "--force", node])
    return [host for _, _, host, _ in gone]


def _labeller(ctx: TaskContext, args: DockerNodeArgs, mine: SwarmInfo) -> Remote | None:
    """A manager to set this node's labels through: this host when it manages (every host of
    three does), else ``manager``, waited for while it joins (a replacement for the first
    host joins side by side with the others' tasks); None in check mode when it is none yet."""
    if mine.manager:
        return ctx.conn
    manager = ctx.peer(args.manager)
    theirs = wait_for_manager(manager, ctx.become, 0 if ctx.check else JOIN_WAIT)
    if theirs is None or theirs.state != "active" or not theirs.manager:
        if ctx.check:
            return None
        raise TaskError(f"{args.manager} is not a swarm manager: cannot label {ctx.host.name}")
    return manager


def apply(ctx: TaskContext, args: DockerNodeArgs) -> Outcome:
    looked = ctx.looked(reads(args, ctx.vars))
    mine = parse_swarm(looked["swarm"].stdout)
    if mine is None or mine.state != "active":
        if ctx.check:
            return ctx.changed("would label the node once it is in the swarm")
        raise TaskError(f"{ctx.host.name} is in no swarm: run docker_swarm first")
    manager = _labeller(ctx, args, mine)
    if manager is None:
        return ctx.changed(f"would label the node once {args.manager} manages the swarm")
    shown = looked["labels"] if manager is ctx.conn else manager.run(
        [*OWN_LABELS[:-1], mine.node_id], sudo=ctx.become, warn=True)  # fmt: skip
    held = json.loads(shown.stdout.strip() or "{}") or {} if shown.ok else {}
    changes = label_changes(held, args.labels)
    if changes:
        _on(ctx, manager, ["docker", "node", "update", *changes, mine.node_id])
    removed = _prune(ctx, args.members, mine) if ctx.host.name == args.manager else []
    if not changes and not removed:
        return ctx.ok(f"node {mine.node_id[:12]} as asked", node_id=mine.node_id)
    words = [f"labels {' '.join(changes[1::2])}"] if changes else []
    words += [f"removed gone node(s) {', '.join(removed)}"] if removed else []
    return ctx.changed("; ".join(words), node_id=mine.node_id, removed=removed)


SPEC = ModuleSpec("docker_node", DockerNodeArgs, apply, reads=reads)
