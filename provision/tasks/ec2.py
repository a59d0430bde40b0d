"""Cloud modules, run on the controller (``hosts: localhost``): ``ec2_cluster`` stands the
cluster's instance(s) up and adds them to the ``cluster`` group; ``ec2_hosts`` finds them again
by their tags; ``ec2_teardown`` removes everything tagged with the cluster's name.

They are adapters: the AWS work is ``provision.aws`` (the only user of boto3). ``cloud:
sandbox`` points the same code at a local moto server and maps each instance to an EC2-like
SSH host container (``provision.sandbox.cloud``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from provision.models.names import check_name
from provision.tasks.base import ModuleSpec, Outcome, TaskContext

if TYPE_CHECKING:
    from provision.aws.results import Instance

__all__ = [
    "CLUSTER_SPEC", "HOSTS_SPEC", "TEARDOWN_SPEC", "ClusterArgs", "FindArgs", "find", "sweep",
]

Cloud = Literal["aws", "sandbox"]


@dataclass(frozen=True)
class ClusterArgs:
    cloud: Cloud
    cluster: str
    region: str
    state_dir: str
    instance_type: str = "t3.small"
    image: str = "debian-12"
    ttl: str = "4h"
    ssh_cidrs: tuple[str, ...] = ()
    http_cidr: str = "0.0.0.0/0"
    root_volume_size: int = 10
    instance_count: int = 1
    subnet: str = ""
    trust_on_first_use: bool = False

    def __post_init__(self) -> None:
        check_name(self.cluster, "ec2_cluster.cluster")


@dataclass(frozen=True)
class FindArgs:
    cloud: Cloud
    cluster: str
    region: str
    state_dir: str

    def __post_init__(self) -> None:
        check_name(self.cluster, "cluster")


def find(args: FindArgs | ClusterArgs) -> list[Instance]:
    """The cluster's running instances, by tags; in the sandbox, mapped to their containers."""
    from provision import aws

    state_dir = Path(args.state_dir)
    endpoint_for = None
    if args.cloud == "sandbox":
        from provision.sandbox.cloud import existing_endpoint

        endpoint_for = existing_endpoint(args.cluster)
    return aws.find_hosts(args.cluster, region=args.region, state_dir=state_dir,
                          endpoint_for=endpoint_for,
                          endpoint_url=_endpoint_url(args.cloud, state_dir))


def _endpoint_url(cloud: str, state_dir: Path) -> str | None:
    if cloud != "sandbox":
        return None
    from provision.sandbox.cloud import sandbox_dir
    from provision.sandbox.moto_server import ensure_server

    return ensure_server(sandbox_dir(state_dir))


def host_entry(instance: Instance, cloud: str, cluster: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "ansible_host": instance.address, "ansible_port": instance.port,
        "ansible_user": instance.user, "instance_id": instance.instance_id,
    }
    if instance.key_file is not None:
        entry["ansible_ssh_private_key_file"] = str(instance.key_file)
    url = f"http://{instance.public_ip or instance.address}"
    if cloud == "sandbox":
        from provision.sandbox.cloud import host_for_instance

        host = host_for_instance(cluster, instance.instance_id)
        url = host.url if host else url
    return {"name": instance.name, "vars": entry, "url": url}


def _found(instances: list[Instance] | tuple[Instance, ...], cloud: str, cluster: str,
           changed: bool, msg: str, **data: Any) -> Outcome:
    entries = [host_entry(i, cloud, cluster) for i in instances]
    urls = sorted({e["url"] for e in entries})
    return Outcome(changed, msg, data={
        "add_hosts": entries, "group": "cluster", "hosts": [e["name"] for e in entries],
        "url": urls[0] if len(urls) == 1 else ", ".join(urls), **data,
    })


def apply_cluster(ctx: TaskContext, args: ClusterArgs) -> Outcome:
    from provision import aws

    state_dir = Path(args.state_dir)
    spec = aws.ClusterSpec.from_vars({
        "cluster": args.cluster, "region": args.region, "instance_type": args.instance_type,
        "image": args.image, "ttl": args.ttl, "http_cidr": args.http_cidr,
        "root_volume_size": args.root_volume_size, "subnet": args.subnet or None,
        "instance_count": args.instance_count,
        "ssh_cidrs": list(args.ssh_cidrs) or None,
    })
    if ctx.check:
        existing = find(args)
        if existing:
            return _found(existing, args.cloud, args.cluster, False, "instances exist")
        return Outcome(True, f"would launch {spec.instance_type} {spec.image} in {spec.region}")
    extra: dict[str, Any] = {}
    if args.cloud == "sandbox":
        from provision.sandbox import cloud

        # The host key is read from the container itself (out of band, as a console output
        # would give it); moto's console output never carries one, so do not wait for it.
        say = _events(ctx)
        extra = {"endpoint_for": cloud.endpoint_for(args.cluster,
                                                    progress=lambda m: say(m, {})),
                 "host_key_scanner": cloud.host_key_scanner(args.cluster),
                 "trust_on_first_use": True,
                 "timeouts": aws.Timeouts(console=0, poll=0.5)}
    extra.setdefault("trust_on_first_use", args.trust_on_first_use)
    result = aws.up(spec, state_dir=state_dir, endpoint_url=_endpoint_url(args.cloud, state_dir),
                    on_event=_events(ctx), **extra)
    msg = (f"created {', '.join(result.created)}" if result.created
           else f"{len(result.instances)} instance(s) up")
    return _found(result.instances, args.cloud, args.cluster, bool(result.created), msg,
                  created=list(result.created), ami=result.ami_id,
                  security_group=result.security_group_id, key_name=result.key_name)


def apply_hosts(ctx: TaskContext, args: FindArgs) -> Outcome:
    found = find(args)
    return _found(found, args.cloud, args.cluster, False, f"{len(found)} host(s) found")


def apply_teardown(ctx: TaskContext, args: FindArgs) -> Outcome:
    from provision import aws

    state_dir = Path(args.state_dir)
    if args.cloud == "sandbox" and not _sandbox_exists(state_dir, args.cluster):
        return Outcome(False, "sandbox: nothing to remove")
    if ctx.check:
        found = find(args)
        return Outcome(bool(found), f"would remove {len(found)} instance(s) and their group/key")
    result = aws.down(args.cluster, region=args.region, state_dir=state_dir,
                      endpoint_url=_endpoint_url(args.cloud, state_dir), on_event=_events(ctx))
    removed = list(result.removed)
    if args.cloud == "sandbox":
        removed += _remove_sandbox(args.cluster, state_dir)
    return Outcome(bool(removed), f"removed {', '.join(removed)}" if removed
                   else "nothing to remove", data={"removed": removed})


def _sandbox_exists(state_dir: Path, cluster: str) -> bool:
    """A sandbox cloud is there to tear down: a server or its recording, or host containers.
    (Otherwise `down` would start a moto server only to find it empty.)"""
    from provision.sandbox.cloud import host_containers, sandbox_dir

    moto = sandbox_dir(state_dir) / "moto"
    recorded = (moto / "server.json").exists() or (moto / "recording.jsonl").exists()
    return recorded or bool(host_containers(cluster))


def _remove_sandbox(cluster: str, state_dir: Path) -> list[str]:
    """The host containers, then — once no sandbox cluster is left — the moto server and its
    recorded state."""
    from provision.sandbox import cloud
    from provision.sandbox.moto_server import stop_server

    removed = [f"container {c}" for c in cloud.remove_cluster(cluster)]
    if not cloud.any_cluster_left() and stop_server(cloud.sandbox_dir(state_dir), forget=True):
        removed.append("moto server")
    return removed


def _events(ctx: TaskContext) -> Any:
    def emit(message: str, data: dict[str, Any]) -> None:
        ctx.progress(message, 0, 0)

    return emit


CLUSTER_SPEC = ModuleSpec("ec2_cluster", ClusterArgs, apply_cluster, __doc__ or "", local=True)
HOSTS_SPEC = ModuleSpec("ec2_hosts", FindArgs, apply_hosts, __doc__ or "", local=True)
TEARDOWN_SPEC = ModuleSpec("ec2_teardown", FindArgs, apply_teardown, __doc__ or "", local=True)


def sweep(cloud: Cloud, region: str, state_dir: Path) -> dict[str, list[str]]:
    """Remove every cluster of ``region`` past its expires-at tag: {cluster: removed ids}."""
    from provision import aws

    if cloud == "sandbox" and not _sandbox_exists(state_dir, ""):
        return {}
    results = aws.sweep(region, state_dir=state_dir, endpoint_url=_endpoint_url(cloud, state_dir))
    swept = {r.cluster: list(r.removed) for r in results}
    if cloud == "sandbox":
        for cluster in swept:
            swept[cluster] += _remove_sandbox(cluster, state_dir)
    return swept
