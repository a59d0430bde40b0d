"""``docker_swarm``: this host in the cluster's Docker Swarm (present) or out of any (absent).

The host named ``manager`` initialises the swarm (advertise address: its private address, the
source address of its default route, unless ``advertise_addr`` is given) when no host of
``members`` is in one yet; every other host joins it. The first ``managers`` hosts of
``members`` join as managers (three, where there are three or more hosts: Raft keeps the
swarm, its services, networks and secrets, with one of them lost), the rest as workers, with
the token read over SSH on a manager. A host that is not in the swarm (a replacement for one
gone for good, the first host included) joins it through whichever member still manages it,
rather than starting a second swarm; a worker that should be a manager is promoted. The token
travels on stdin, never on a command line: it is in no output, event, report, state file or
error.

Re-run: ok. A host that is already in another swarm is an error that says so (leave it first,
``docker swarm leave``); nothing is forced.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from provision.connection.base import Remote
from provision.errors import CommandError, ConfigError, TaskError
from provision.models.names import check_name
from provision.tasks.base import ModuleSpec, Outcome, Reads, TaskContext

__all__ = [
    "JOIN_WAIT",
    "SPEC",
    "SWARM_INFO",
    "DockerSwarmArgs",
    "SwarmInfo",
    "parse_swarm",
    "swarm_info",
    "wait_for_manager",
]

SWARM_INFO = ["docker", "info", "--format", "{{json .Swarm}}"]
# The source address of the default route (no packet is sent): the private address on EC2,
# the address on the cluster's network in the sandbox.
ADDRESS = (
    "python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
    's.connect(("192.0.2.1", 9)); print(s.getsockname()[0])\' 2>/dev/null '
    "|| hostname -I | cut -d' ' -f1"
)
# $1 the manager's address:2377, $2 this host's advertise address; the token on stdin.
JOIN = 'read -r token && exec docker swarm join --advertise-addr "$2" --token "$token" "$1"'
JOIN_WAIT = 120.0  # seconds a worker waits for the manager's swarm
# Exit 0 while something listens on the gossip port, 7946/tcp (0x1F0A), on a host in no swarm.
# Seen here: after `docker swarm leave`, dockerd keeps its old networkdb agent bound to it,
# so the next join's agent cannot start ("bind: address already in use") and the overlay's
# DNS never learns the other nodes' services. A Docker restart frees it.
GOSSIP_HELD = ["sh", "-c", "grep -Eqi ':1F0A [0-9A-F]+:0000 0A' /proc/net/tcp /proc/net/tcp6"]
RESTART = (
    "systemctl restart docker 2>/dev/null || service docker restart; i=0; "
    "until docker info >/dev/null 2>&1; do i=$((i+1)); [ $i -gt 60 ] && exit 1; sleep 1; done"
)


@dataclass(frozen=True)
class DockerSwarmArgs:
    manager: str  # the inventory name of the host that makes the swarm when there is none
    state: Literal["present", "absent"] = "present"
    advertise_addr: str = ""  # "" = the host's private address
    #: the cluster's hosts, in order: a host joins through whichever of them manages the swarm
    members: tuple[str, ...] = ()
    managers: int = 1  # how many of the first ``members`` are managers

    def __post_init__(self) -> None:
        check_name(self.manager, "docker_swarm.manager")
        for i, name in enumerate(self.members):
            check_name(name, f"docker_swarm.members[{i}]")
        if not isinstance(self.managers, int) or self.managers < 1:
            raise ConfigError("managers must be a whole number of at least 1",
                              field="docker_swarm.managers")  # fmt: skip
        if self.advertise_addr:
            check_name(self.advertise_addr, "docker_swarm.advertise_addr")


@dataclass(frozen=True)
class SwarmInfo:
    """``docker info``'s Swarm part: the node's state, id, address and managers."""

    state: str  # inactive, pending, active, error, locked
    node_id: str = ""
    node_addr: str = ""
    manager: bool = False
    cluster_id: str = ""
    managers: tuple[str, ...] = ()  # "address:2377" of the managers this node knows


def parse_swarm(stdout: str) -> SwarmInfo | None:
    """From ``docker info --format '{{json .Swarm}}'``; None when Docker did not answer."""
    try:
        raw: dict[str, Any] = json.loads(stdout.strip() or "null") or {}
    except json.JSONDecodeError:
        return None
    if not raw.get("LocalNodeState"):
        return None
    return SwarmInfo(
        state=str(raw["LocalNodeState"]),
        node_id=str(raw.get("NodeID") or ""),
        node_addr=str(raw.get("NodeAddr") or ""),
        manager=bool(raw.get("ControlAvailable")),
        cluster_id=str((raw.get("Cluster") or {}).get("ID") or ""),
        managers=tuple(str(m.get("Addr", "")) for m in raw.get("RemoteManagers") or []),
    )


def swarm_info(conn: Remote, sudo: bool) -> SwarmInfo | None:
    return parse_swarm(conn.run(SWARM_INFO, sudo=sudo, warn=True).stdout)


def reads(args: DockerSwarmArgs, variables: Mapping[str, Any]) -> Reads:
    """This host's swarm state; and, to join, whether the gossip port is still held."""
    if args.state == "absent":
        return {"swarm": SWARM_INFO}
    return {"swarm": SWARM_INFO, "gossip": GOSSIP_HELD}


def _mine(ctx: TaskContext, args: DockerSwarmArgs) -> SwarmInfo:
    info = parse_swarm(ctx.looked(reads(args, ctx.vars))["swarm"].stdout)
    if info is None:
        raise TaskError(f"{ctx.host.name}: docker info did not answer: is Docker running?")
    return info


def _address(ctx: TaskContext, args: DockerSwarmArgs) -> str:
    if args.advertise_addr:
        return args.advertise_addr
    address = ctx.read_sh(ADDRESS).stdout.strip()
    if not address:
        raise TaskError(f"{ctx.host.name}: no private address found; set advertise_addr")
    return address


def _role(ctx: TaskContext, args: DockerSwarmArgs) -> str:
    """``manager`` for the manager and the first ``managers`` members, else ``worker``. The
    managers are an odd number at most (two managers need both for a quorum: losing either
    would lose the swarm, where one manager and a worker lose it only with the manager)."""
    names = list(args.members) or [args.manager]
    if ctx.host.name == args.manager:
        return "manager"
    odd = len(names) if len(names) % 2 else len(names) - 1
    rank = names.index(ctx.host.name) if ctx.host.name in names else len(names)
    return "manager" if rank < min(args.managers, max(odd, 1)) else "worker"


def _managing(ctx: TaskContext, args: DockerSwarmArgs) -> tuple[str, SwarmInfo] | None:
    """The first other member (``manager`` first) that manages a swarm now, and its state."""
    for name in dict.fromkeys([args.manager, *args.members]):
        if name == ctx.host.name:
            continue
        theirs = swarm_info(ctx.peer(name), ctx.become)
        if theirs is not None and theirs.state == "active" and theirs.manager:
            return name, theirs
    return None


def _init(ctx: TaskContext, args: DockerSwarmArgs) -> Outcome:
    address = _address(ctx, args)
    _free_gossip_port(ctx)
    ctx.run(["docker", "swarm", "init", "--advertise-addr", address])
    after = None if ctx.check else parse_swarm(ctx.read(SWARM_INFO).stdout)
    return ctx.changed(f"initialised the swarm on {address}", role="manager", address=address,
                       node_id=after.node_id if after else "")  # fmt: skip


def wait_for_manager(manager: Remote, sudo: bool, wait: float) -> SwarmInfo | None:
    """The manager's swarm state, waiting up to ``wait`` seconds for it to be an active
    manager: hosts run their tasks side by side, so the join may come before the init."""
    deadline = time.monotonic() + wait
    while True:
        theirs = swarm_info(manager, sudo)
        if (theirs and theirs.state == "active" and theirs.manager) or time.monotonic() > deadline:
            return theirs
        time.sleep(0.5)


def _in_swarm_of(manager: Remote, sudo: bool, node_id: str) -> bool:
    known = manager.run(["docker", "node", "inspect", "--format", "{{.ID}}", node_id],
                        sudo=sudo, warn=True)  # fmt: skip
    return known.ok and known.stdout.strip() == node_id


def _member(ctx: TaskContext, args: DockerSwarmArgs, mine: SwarmInfo) -> Outcome:
    """This host is in a swarm: ok if it is the cluster's (promoted if it should manage)."""
    if mine.state != "active":
        raise TaskError(f"{ctx.host.name}: swarm state {mine.state}; leave it first")
    role = _role(ctx, args)
    if mine.manager:
        return ctx.ok(f"manager of swarm {mine.cluster_id[:12]}", node_id=mine.node_id,
                      role="manager", address=mine.node_addr)  # fmt: skip
    found = _managing(ctx, args)
    if found is None or not _in_swarm_of(ctx.peer(found[0]), ctx.become, mine.node_id):
        raise TaskError(
            f"{ctx.host.name} is already in another swarm (managers "
            f"{', '.join(mine.managers) or '?'}), not the cluster's: "
            "run `docker swarm leave` there first"
        )
    if role == "worker":
        return ctx.ok(f"worker of {found[0]}'s swarm", node_id=mine.node_id, role="worker",
                      address=mine.node_addr)  # fmt: skip
    promote = ["docker", "node", "promote", mine.node_id]
    ctx.executed.append(f"{found[0]}: {' '.join(promote)}")
    if not ctx.check:
        ctx.peer(found[0]).run(promote, sudo=ctx.become)
    return ctx.changed(f"promoted to manager (through {found[0]})", node_id=mine.node_id,
                       role="manager", address=mine.node_addr)  # fmt: skip


def _join(ctx: TaskContext, args: DockerSwarmArgs) -> Outcome:
    """This host is in no swarm: join the one a member manages, or make it (``manager``),
    or wait for ``manager`` to make it."""
    found = _managing(ctx, args)
    if found is None and ctx.host.name == args.manager:
        return _init(ctx, args)
    if found is None:
        theirs = wait_for_manager(ctx.peer(args.manager), ctx.become, 0 if ctx.check else JOIN_WAIT)
        if theirs is None or theirs.state != "active" or not theirs.manager:
            if ctx.check:
                return ctx.changed(f"would join the swarm of {args.manager}")
            state = theirs.state if theirs else "no answer"
            raise TaskError(f"{args.manager} is not a swarm manager ({state}): cannot join")
        found = (args.manager, theirs)
    through, theirs = found
    role = _role(ctx, args)
    address = _address(ctx, args)
    target = f"{theirs.node_addr}:2377"
    ctx.executed.append(f"docker swarm join --advertise-addr {address} --token *** {target}")
    if not ctx.check:
        _free_gossip_port(ctx)
        _send_join(ctx, ctx.peer(through), role, target, address)
    return ctx.changed(f"joined the swarm at {target} as a {role}", role=role, address=address)


def _free_gossip_port(ctx: TaskContext) -> None:
    """Restart Docker when a swarm it left still holds the gossip port (see GOSSIP_HELD)."""
    if ctx.check or not ctx.read(GOSSIP_HELD).ok:  # declared in ``reads``: from the batch
        return
    ctx.progress("restarting Docker: port 7946 is still held by the swarm it left", 0, 0)
    ctx.changing()
    ctx.run(["sh", "-c", RESTART], timeout=180)
    if ctx.conn.run(GOSSIP_HELD, sudo=ctx.become, warn=True).ok:
        raise TaskError(
            f"{ctx.host.name}: port 7946/tcp (Swarm's gossip) is held by another process "
            "even after a Docker restart: free it, then run again"
        )


def _send_join(ctx: TaskContext, manager: Remote, role: str, target: str, address: str) -> None:
    read = manager.run(["docker", "swarm", "join-token", "-q", role], sudo=ctx.become, warn=True)
    token = read.stdout.strip()
    if not read.ok or not token:
        raise TaskError(f"could not read the {role} token on {manager.host.name} (exit "
                        f"{read.exit_code})")  # fmt: skip
    ctx.changing()
    try:
        ctx.conn.run(["sh", "-c", JOIN, "sh", target, address], sudo=ctx.become,
                     stdin=f"{token}\n".encode(), timeout=120)  # fmt: skip
    except CommandError as exc:
        # Docker does not echo the token, but make sure: no error carries it.
        text = str(exc).replace(token, "***")
        raise TaskError(f"swarm join failed: {text}") from None


def apply(ctx: TaskContext, args: DockerSwarmArgs) -> Outcome:
    mine = _mine(ctx, args)
    if args.state == "absent":
        if mine.state == "inactive":
            return ctx.ok("in no swarm")
        if mine.manager and ctx.host.name != args.manager:
            # Demoted first: a manager that leaves (even with --force) stays in Raft, and two
            # of three gone would leave the first host without a quorum while it still
            # removes the stacks. The last manager (the first host) cannot be demoted.
            ctx.run(["docker", "node", "demote", mine.node_id], warn=True)
        ctx.run(["docker", "swarm", "leave", "--force"])
        return ctx.changed("left the swarm")
    if mine.state == "inactive":
        return _join(ctx, args)
    return _member(ctx, args, mine)


SPEC = ModuleSpec("docker_swarm", DockerSwarmArgs, apply, reads=reads)
