"""``verify``: the verification suite on a host (``provision.verify``), each check with its
evidence in the result. Never changes anything; fails when a check fails. Skipped in check
mode, where the cluster it would look at may not exist yet. The cluster it looks at is the
layout of the host's variables (``provision.cluster.layout``).

In a swarm (``topology: swarm``) every node runs its checks with the manager's connection
beside its own (``provision.verify.swarm``): ``manager`` names it, by default the first host
of the play that is a swarm manager (``docker info``), and the swarm should have as many nodes
as the play has hosts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from provision.cluster.layout import Layout
from provision.models.names import check_name
from provision.tasks.base import ModuleSpec, Outcome, TaskContext
from provision.tasks.docker_swarm import swarm_info
from provision.tasks.facts import host_layout
from provision.verify import DEFAULT_CHECKS, FIRST_CHECKS, SLOW_CHECKS, Swarm, run_suite

__all__ = ["SPEC", "VerifyArgs"]

SUITES = {
    "first": FIRST_CHECKS,
    "default": DEFAULT_CHECKS,
    "full": (*DEFAULT_CHECKS, *SLOW_CHECKS),
}


@dataclass(frozen=True)
class VerifyArgs:
    suite: Literal["first", "default", "full"] = "first"
    checks: tuple[str, ...] = ()  # explicit check names; overrides ``suite``
    manager: str = ""  # swarm: the manager's inventory name ("" = found among the play's hosts)

    def __post_init__(self) -> None:
        if self.manager:
            check_name(self.manager, "verify.manager")


def apply(ctx: TaskContext, args: VerifyArgs) -> Outcome:
    if ctx.check:
        return Outcome(False, "not run in check mode", skipped=True)
    layout = host_layout(ctx)
    swarm = _swarm(ctx, args, layout) if layout.swarm else None
    results = run_suite(ctx.conn, layout, checks=args.checks or SUITES[args.suite], swarm=swarm)
    passed = sum(r.passed for r in results)
    failed = [r.name for r in results if not r.passed]
    msg = f"{passed}/{len(results)} checks passed" + (
        f"; failed: {', '.join(failed)}" if failed else ""
    )
    return Outcome(False, msg, checks=tuple(results), failed=bool(failed))


def _swarm(ctx: TaskContext, args: VerifyArgs, layout: Layout) -> Swarm:
    hosts = [str(h) for h in ctx.vars.get("play_hosts") or [ctx.host.name]]
    manager = args.manager
    if not manager:  # the first host that is a manager; else the first (its checks say why)
        managers = (h for h in hosts if _is_manager(ctx, h))
        manager = next(managers, hosts[0])
    conn = ctx.conn if manager == ctx.host.name else ctx.peer(manager)
    return Swarm(manager=conn, nodes=len(hosts))


def _is_manager(ctx: TaskContext, name: str) -> bool:
    conn = ctx.conn if name == ctx.host.name else ctx.peer(name)
    info = swarm_info(conn, ctx.become)
    return info is not None and info.state == "active" and info.manager


SPEC = ModuleSpec("verify", VerifyArgs, apply)
