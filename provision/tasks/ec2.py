"""Cloud tasks, run on the controller (``hosts: localhost``): ``ec2_cluster`` stands the
cluster's instance(s) up and adds them to the ``cluster`` group; ``ec2_hosts`` finds them again
by their tags; ``ec2_teardown`` removes everything tagged with the cluster's name.

Thin adapters over ``provision.cloud`` (AWS or the sandbox; they never ask which).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provision import cloud
from provision.cloud import Cloud, Target
from provision.tasks.base import ModuleSpec, Outcome, TaskContext

if TYPE_CHECKING:
    from provision.aws.results import Instance

__all__ = ["CLUSTER_SPEC", "HOSTS_SPEC", "TEARDOWN_SPEC", "ClusterArgs", "FindArgs"]


@dataclass(frozen=True)
class FindArgs:
    cloud: Cloud
    cluster: str
    region: str
    state_dir: str

    def __post_init__(self) -> None:
        self.target()  # a bad cloud or cluster name fails when the task is checked

    def target(self) -> Target:
        return cloud.Target(self.cloud, self.cluster, self.region, Path(self.state_dir))


@dataclass(frozen=True)
class ClusterArgs(FindArgs):
    """The instance spec's variables; None takes ``provision.aws.ClusterSpec``'s default."""

    instance_type: str | None = None
    image: str | None = None
    ttl: str | None = None
    ssh_cidrs: tuple[str, ...] = ()
    http_cidr: str | None = None
    root_volume_size: int | None = None
    instance_count: int | None = None
    subnet: str | None = None
    trust_on_first_use: bool = False
    swarm: bool = False  # open the Swarm ports between the hosts (topology: swarm)
    swarm_encrypted: bool = False
    docker_at_boot: bool = True  # the user-data installs Docker while the instance boots
    wait_status_checks: bool = False  # also wait for EC2's status checks (not needed for SSH)
    # Images the user-data pulls once Docker is in, while the rest of the run goes on (where
    # the hosts can pull: transfer_images false).
    pull_at_boot: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        # The instance spec is checked with the task (at load time when its arguments can be
        # rendered then): a bad ttl or CIDR fails before any cloud call.
        cloud.would_create(self.target(), self.spec_vars())

    def spec_vars(self) -> dict[str, Any]:
        values = {"instance_type": self.instance_type, "image": self.image, "ttl": self.ttl,
                  "http_cidr": self.http_cidr, "root_volume_size": self.root_volume_size,
                  "instance_count": self.instance_count, "subnet": self.subnet or None,
                  "ssh_cidrs": list(self.ssh_cidrs) or None,
                  "swarm": self.swarm or None,
                  "swarm_encrypted": self.swarm_encrypted or None,
                  "docker_at_boot": self.docker_at_boot,
                  "wait_status_checks": self.wait_status_checks,
                  "pull_at_boot": list(self.pull_at_boot) or None}  # fmt: skip
        return {k: v for k, v in values.items() if v is not None}


def _name_key(name: str) -> tuple[str | int, ...]:
    """``c-2`` before ``c-10``: names in their natural order."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def _found(
    instances: Sequence[Instance], target: cloud.Target, changed: bool, msg: str, **data: Any
) -> Outcome:
    # In name order, whatever the launch order: ``<cluster>-1`` stays first (the Swarm
    # manager) when a replacement for a gone host comes from a later RunInstances.
    entries = sorted((cloud.host_entry(i, target) for i in instances),
                     key=lambda e: _name_key(str(e["name"])))  # fmt: skip
    urls = sorted({e["url"] for e in entries})
    return Outcome(changed, msg, data={
        "add_hosts": entries, "group": "cluster", "hosts": [e["name"] for e in entries],
        "url": urls[0] if len(urls) == 1 else ", ".join(urls), **data,
    })  # fmt: skip


def _say(ctx: TaskContext) -> cloud.Say:
    return lambda message: ctx.progress(message, 0, 0)


def apply_cluster(ctx: TaskContext, args: ClusterArgs) -> Outcome:
    target = args.target()
    if ctx.check:
        existing = cloud.find(target)
        if existing:
            return _found(existing, target, False, "instances exist")
        return Outcome(True, cloud.would_create(target, args.spec_vars()))
    result = cloud.up(
        target, args.spec_vars(), trust_on_first_use=args.trust_on_first_use, say=_say(ctx)
    )
    msg = (
        f"created {', '.join(result.created)}"
        if result.created
        else f"{len(result.instances)} instance(s) up"
    )
    return _found(
        result.instances,
        target,
        bool(result.created),
        msg,
        created=list(result.created),
        ami=result.ami_id,
        security_group=result.security_group_id,
        key_name=result.key_name,
    )


def apply_hosts(ctx: TaskContext, args: FindArgs) -> Outcome:
    found = cloud.find(args.target())
    return _found(found, args.target(), False, f"{len(found)} host(s) found")


def apply_teardown(ctx: TaskContext, args: FindArgs) -> Outcome:
    target = args.target()
    if ctx.check:
        found = cloud.find(target)
        return Outcome(bool(found), f"would remove {len(found)} instance(s) and their group/key")
    removed = cloud.teardown(target, say=_say(ctx))
    return Outcome(
        bool(removed),
        f"removed {', '.join(removed)}" if removed else "nothing to remove",
        data={"removed": removed},
    )


CLUSTER_SPEC = ModuleSpec("ec2_cluster", ClusterArgs, apply_cluster)
HOSTS_SPEC = ModuleSpec("ec2_hosts", FindArgs, apply_hosts)
TEARDOWN_SPEC = ModuleSpec("ec2_teardown", FindArgs, apply_teardown)
