"""``docker_network``: a Docker network present (with this driver and options) or absent.

Absent refuses while containers are attached, unless ``force`` (then they are disconnected).
A present network whose driver or options differ is recreated, with the same rule.
The outcome's data carries the network's ``gateway`` and ``subnet`` (for ``register``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from provision.errors import TaskError
from provision.models.names import check_name
from provision.tasks.base import ModuleSpec, Outcome, Reads, TaskContext
from provision.tasks.facts import NetworkInfo, parse_network

__all__ = ["SPEC", "DockerNetworkArgs"]


@dataclass(frozen=True)
class DockerNetworkArgs:
    name: str
    state: Literal["present", "absent"] = "present"
    driver: str = "bridge"
    options: dict[str, str] = field(default_factory=dict)
    attachable: bool = False
    force: bool = False

    def __post_init__(self) -> None:
        check_name(self.name, "docker_network.name")
        check_name(self.driver, "docker_network.driver")


def reads(args: DockerNetworkArgs, variables: Mapping[str, Any]) -> Reads:
    return {"network": ["docker", "network", "inspect", args.name]}


def read_network(ctx: TaskContext, args: DockerNetworkArgs) -> NetworkInfo | None:
    return parse_network(ctx.looked(reads(args, ctx.vars))["network"].stdout)


def _differs(net: NetworkInfo, args: DockerNetworkArgs) -> list[str]:
    wrong = []
    if net.driver != args.driver:
        wrong.append(f"driver {net.driver} != {args.driver}")
    for key, value in args.options.items():
        if net.options.get(key) != str(value):
            wrong.append(f"option {key}={net.options.get(key)!r} != {value!r}")
    return wrong


def _remove(ctx: TaskContext, net: NetworkInfo, args: DockerNetworkArgs, why: str) -> None:
    if net.containers and not args.force:
        raise TaskError(
            f"network {net.name} {why}, but containers are attached: "
            f"{', '.join(net.containers)} (stop them, or set force: true)"
        )
    for container in net.containers:
        ctx.run(["docker", "network", "disconnect", "--force", net.name, container])
    ctx.run(["docker", "network", "rm", net.name])


def _create(ctx: TaskContext, args: DockerNetworkArgs) -> None:
    argv = ["docker", "network", "create", "--driver", args.driver]
    if args.attachable:
        argv.append("--attachable")
    for key, value in sorted(args.options.items()):
        argv += ["--opt", f"{key}={value}"]
    ctx.run([*argv, args.name])


def apply(ctx: TaskContext, args: DockerNetworkArgs) -> Outcome:
    net = read_network(ctx, args)
    if args.state == "absent":
        if net is None:
            return ctx.ok(f"network {args.name} absent")
        _remove(ctx, net, args, "is to be removed")
        return ctx.changed(f"removed network {args.name}")
    if net is not None:
        wrong = _differs(net, args)
        if not wrong:
            return ctx.ok(f"network {args.name} present", gateway=net.gateway, subnet=net.subnet)
        _remove(ctx, net, args, "must be recreated (" + "; ".join(wrong) + ")")
    _create(ctx, args)
    created = None if ctx.check else read_network(ctx, args)
    # In check mode the address is not known yet; "" keeps `{{ net.gateway }}` usable.
    gateway, subnet = (created.gateway, created.subnet) if created else ("", "")
    verb = "recreated" if net is not None else "created"
    return ctx.changed(f"{verb} network {args.name}", gateway=gateway, subnet=subnet)


SPEC = ModuleSpec("docker_network", DockerNetworkArgs, apply, reads=reads)
