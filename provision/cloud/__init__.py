"""The one facade over where hosts come from: AWS (``provision.aws``) or the local sandbox
(``provision.sandbox``: a moto server as EC2, EC2-like SSH host containers as instances).

Everything above (the cloud tasks, the API, the route table) calls these functions and never
asks which cloud it is; the sandbox branches are here and only here.

>>> target = Target.from_vars({"cloud": "sandbox", "cluster_name": "demo",
...                            "region": "us-east-1"}, Path(".provision"))
>>> [h.name for h in find(target)]                                   # doctest: +SKIP
['demo-1']
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from provision.errors import ConfigError
from provision.models.names import check_name, check_region

if TYPE_CHECKING:
    from provision.aws.results import ClusterResult, Instance
    from provision.models import HostSpec

__all__ = [
    "CLOUDS",
    "Cloud",
    "Target",
    "find",
    "host_entry",
    "status",
    "sweep",
    "teardown",
    "up",
]

Cloud = Literal["aws", "sandbox"]
CLOUDS: tuple[str, ...] = ("aws", "sandbox")
Say = Callable[[str], None]


def _quiet(message: str) -> None:
    return None


@dataclass(frozen=True)
class Target:
    """Which cluster, in which cloud and region, with local state where."""

    cloud: Cloud
    cluster: str
    region: str
    state_dir: Path

    def __post_init__(self) -> None:
        if self.cloud not in CLOUDS:
            raise ConfigError(
                f"must be one of {', '.join(CLOUDS)}, got {self.cloud!r}", field="cloud"
            )
        check_name(self.cluster, "cluster_name")
        check_region(self.region, "region")

    @classmethod
    def from_vars(cls, variables: Mapping[str, Any], state_dir: Path) -> Target:
        """The cluster the variables name (``cloud``, ``cluster_name``, ``region``)."""
        cloud = variables.get("cloud", "none")
        if cloud not in CLOUDS:
            raise ConfigError(
                f"this needs an inventory with cloud: aws or sandbox, got {cloud!r}", field="cloud"
            )
        return cls(
            cloud,
            str(variables.get("cluster_name", "")),
            str(variables.get("region", "us-east-1")),
            state_dir.resolve(),
        )


@contextlib.contextmanager
def _endpoint(
    target: Target, *, read_only: bool = False, say: Say | None = None
) -> Iterator[str | None]:
    """The sandbox's moto server (None for AWS). A command that changes the cloud leaves the
    server running for the next one (it holds the cloud's state); a read-only command that
    finds none running starts one for itself and stops it when done (its recording stays).
    ``say`` hears of a first install of moto into the user's cache (``motoenv``)."""
    if target.cloud != "sandbox":
        yield None
        return
    from provision.sandbox.cloud import sandbox_dir
    from provision.sandbox.moto_server import ensure_server, running_server, stop_server

    folder = sandbox_dir(target.state_dir)
    url = running_server(folder)
    if url is not None or not read_only:
        yield url or ensure_server(folder, progress=say)
        return
    url = ensure_server(folder, progress=say)
    try:
        yield url
    finally:
        stop_server(folder)


def find(target: Target) -> list[Instance]:
    """The cluster's running instances, by tags; in the sandbox, mapped to their containers."""
    if target.cloud == "sandbox" and not _sandbox_exists(target):
        return []  # no server, no recording, no host: nothing to find (and nothing started)
    with _endpoint(target, read_only=True) as url:
        return _find(target, url)


def _find(target: Target, url: str | None) -> list[Instance]:
    from provision import aws

    endpoint_for = None
    if target.cloud == "sandbox":
        from provision.sandbox.cloud import existing_endpoint

        endpoint_for = existing_endpoint(target.cluster)
    return aws.find_hosts(
        target.cluster,
        region=target.region,
        state_dir=target.state_dir,
        endpoint_for=endpoint_for,
        endpoint_url=url,
    )


def host_entry(instance: Instance, target: Target) -> dict[str, Any]:
    """An inventory entry for ``instance``: name, connection variables, its OpenResty URL."""
    entry: dict[str, Any] = {
        "ansible_host": instance.address, "ansible_port": instance.port,
        "ansible_user": instance.user, "instance_id": instance.instance_id,
    }  # fmt: skip
    if instance.key_file is not None:
        entry["ansible_ssh_private_key_file"] = str(instance.key_file)
    url = f"http://{instance.public_ip or instance.address}"
    if target.cloud == "sandbox":
        from provision.sandbox.cloud import host_for_instance

        host = host_for_instance(target.cluster, instance.instance_id)
        url = host.url if host else url
    return {"name": instance.name, "vars": entry, "url": url}


def status(
    target: Target,
    *,
    now: dt.datetime | None = None,
    probe: Callable[[Sequence[dict[str, Any]], Sequence[HostSpec]], None] | None = None,
) -> list[dict[str, Any]]:
    """The cluster's running hosts as plain data (name, id, state, SSH target, public IP,
    URL, when it expires and whether it has: an expired host powers itself off); with none
    running, the instances that ended (state, AWS's reason), such as those that powered
    themselves off at the expiry. ``probe(entries, hosts)`` adds to each running host's entry
    what it finds on the host (given them all at once, as the connection layer reaches them)."""
    from provision import aws

    moment = now or dt.datetime.now(dt.timezone.utc)
    if target.cloud == "sandbox" and not _sandbox_exists(target):
        return []
    with _endpoint(target, read_only=True) as url:  # one server for both reads
        found = _find(target, url)
        ended = [] if found else aws.find_ended(target.cluster, region=target.region,
                                                 endpoint_url=url)  # fmt: skip
    running = [{"name": i.name, "instance_id": i.instance_id, "state": "running",
                "target": f"{i.user}@{i.address}:{i.port}", "public_ip": i.public_ip,
                "url": host_entry(i, target)["url"], "expires_at": i.expires_at,
                "expired": expired(i.expires_at, moment)}
               for i in found]  # fmt: skip
    if probe is not None and found:
        probe(running, [i.to_host_spec() for i in found])
    return running or [{**i, "expired": expired(i["expires_at"], moment)} for i in ended]


def expired(expires_at: str | None, now: dt.datetime) -> bool:
    """``expires_at`` (``2026-12-07T05:00:00Z``) is past at ``now``; unknown is not."""
    from provision.aws.tags import is_expired

    return is_expired(expires_at, now)


def up(
    target: Target,
    spec_vars: Mapping[str, Any],
    *,
    trust_on_first_use: bool = False,
    say: Say = _quiet,
) -> ClusterResult:
    """Stand the cluster's instances up (or find them: idempotent by tags and ClientToken).

    ``spec_vars`` are ``provision.aws.ClusterSpec``'s variables; what is left out takes the
    spec's defaults (there, and only there)."""
    from provision import aws

    spec = aws.ClusterSpec.from_vars(
        {"cluster": target.cluster, "region": target.region, **spec_vars}
    )
    extra: dict[str, Any] = {"trust_on_first_use": trust_on_first_use}
    if target.cloud == "sandbox":  # the engine first: nothing is launched that it cannot run
        from provision.sandbox import localdocker

        localdocker.require()
    with _endpoint(target, say=say) as url:
        if target.cloud == "sandbox" and url is not None:
            from provision.sandbox import cloud

            # As on EC2: host keys from the console output (the host prints them at boot),
            # the user-data run by the host at its first boot.
            extra = {**extra,
                     "endpoint_for": cloud.endpoint_for(
                         target.cluster, progress=say, shared_network=spec.swarm,
                         cloud_dir=cloud.sandbox_dir(target.state_dir),
                         user_data=cloud.user_data_reader(target.region, url)),
                     "timeouts": aws.Timeouts(poll=0.5)}  # fmt: skip
        return aws.up(
            spec,
            state_dir=target.state_dir,
            endpoint_url=url,
            on_event=lambda message, data: say(message),
            **extra,
        )


def would_create(target: Target, spec_vars: Mapping[str, Any]) -> str:
    """What ``up`` would launch, in words (check mode); the spec is validated on the way."""
    from provision import aws

    spec = aws.ClusterSpec.from_vars(
        {"cluster": target.cluster, "region": target.region, **spec_vars}
    )
    return f"would launch {spec.count} x {spec.instance_type} {spec.image} in {spec.region}"


def teardown(target: Target, *, say: Say = _quiet) -> list[str]:
    """Remove everything tagged with the cluster's name; what was removed (empty: nothing)."""
    from provision import aws

    if target.cloud == "sandbox" and not _sandbox_exists(target):
        return []
    with _endpoint(target, say=say) as url:
        result = aws.down(
            target.cluster,
            region=target.region,
            state_dir=target.state_dir,
            endpoint_url=url,
            on_event=lambda message, data: say(message),
        )
    removed = list(result.removed)
    if target.cloud == "sandbox":
        removed += _remove_sandbox(target)
    return removed


def sweep(
    cloud: Cloud, region: str, state_dir: Path, *, all_regions: bool = False
) -> dict[str, list[str]]:
    """Remove every cluster of ``region`` past its expires-at tag: {cluster: removed ids}.
    With ``all_regions``, of every region enabled for the account, keyed ``cluster@region``."""
    from provision import aws

    probe = Target(cloud, "sweep", region, state_dir.resolve())
    if cloud == "sandbox" and not _sandbox_exists(probe, any_cluster=True):
        return {}
    swept: dict[str, list[str]] = {}
    with _endpoint(probe) as url:
        regions = aws.enabled_regions(region, endpoint_url=url) if all_regions else [region]
        for where in regions:
            for result in aws.sweep(where, state_dir=probe.state_dir, endpoint_url=url):
                removed = list(result.removed)
                if cloud == "sandbox":
                    target = Target(cloud, result.cluster, where, probe.state_dir)
                    removed += _remove_sandbox(target)
                key = f"{result.cluster}@{where}" if all_regions else result.cluster
                swept[key] = removed
    return swept


def _sandbox_exists(target: Target, *, any_cluster: bool = False) -> bool:
    """A sandbox cloud is there: a server or its recording, or host containers. (Otherwise
    a read or a `down` would start a moto server only to find it empty.)"""
    from provision.sandbox import cloud

    moto = cloud.sandbox_dir(target.state_dir) / "moto"
    if (moto / "server.json").exists() or (moto / "recording.jsonl").exists():
        return True
    if any_cluster:
        return cloud.any_cluster_left(cloud.sandbox_dir(target.state_dir))
    return bool(cloud.host_containers(target.cluster))


def _remove_sandbox(target: Target) -> list[str]:
    """The host containers, then — once no sandbox cluster is left — the moto server and its
    recorded state."""
    from provision.sandbox import cloud
    from provision.sandbox.moto_server import stop_server

    removed = [f"container {c}" for c in cloud.remove_cluster(target.cluster)]
    if not cloud.any_cluster_left(cloud.sandbox_dir(target.state_dir)) and stop_server(
        cloud.sandbox_dir(target.state_dir), forget=True
    ):
        removed.append("moto server")
    return removed
