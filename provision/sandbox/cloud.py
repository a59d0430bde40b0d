"""The sandbox cloud: a moto server plays EC2, and each instance it launches is an EC2-like
SSH host container of the local engine (systemd, sshd, user ``admin``, its own Docker).

The AWS layer runs unchanged against the moto server; only one thing is mapped: where an
instance's SSH answers (a loopback port). Host keys come as on EC2: each host prints
cloud-init's host-key block to its console at boot (its container's log), and the moto
server answers ``GetConsoleOutput`` from that console (``console_output``).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from provision.aws.hostkeys import BEGIN
from provision.connection.keys import ensure_key_file
from provision.errors import CommandError, SandboxError
from provision.sandbox import hosts, images, localdocker, realism

if TYPE_CHECKING:
    from provision.aws.results import Instance

__all__ = [
    "CLUSTER_LABEL",
    "DOCKER_READY_ENV",
    "PRELOADED_ENV",
    "console_output",
    "endpoint_for",
    "host_for_instance",
    "powered_off",
    "remove_cluster",
    "sandbox_dir",
    "user_data_reader",
]

CLUSTER_LABEL = "io.provision.sandbox.cluster"
#: On each host container: the sandbox cloud (its folder, ``sandbox_dir``) that launched it,
#: so that one cloud's moto server is stopped when *its* last cluster is gone, whatever other
#: sandbox clouds (other state folders) still run on the same engine.
CLOUD_LABEL = "io.provision.sandbox.cloud"
#: On each host container: the instance it plays, so that the moto server finds its console.
INSTANCE_LABEL = "io.provision.sandbox.instance"
#: Set to 1, the sandbox's hosts start with Docker and Compose installed (the stand-in for
#: an AMI that ships Docker) instead of bare: for runs that are not about installing Docker,
#: such as most of the test suite. Read once, when a run's endpoint mapping is made.
DOCKER_READY_ENV = "PROVISION_SANDBOX_DOCKER_READY"
#: Set to 1 as well, the Docker-ready hosts' engines also start with the service images
#: loaded (``seed``: an AMI baked with them), so ``up`` sends none. Ignored for bare hosts.
PRELOADED_ENV = "PROVISION_SANDBOX_PRELOADED"


def sandbox_dir(state_dir: Path) -> Path:
    # Not a valid cluster name, so never the folder of a cluster (which `down` deletes).
    return state_dir / "_sandbox-cloud"


def _host_name(cluster: str, instance_id: str) -> str:
    return f"{cluster[:24]}-{instance_id.removeprefix('i-')[-12:]}".lower()


def host_for_instance(cluster: str, instance_id: str) -> hosts.SandboxHost | None:
    return hosts.find_host(_host_name(cluster, instance_id))


def cluster_network(cluster: str) -> str:
    """The user-defined network of the local engine that a cluster's hosts share (its VPC),
    made once, labelled with the cluster so that ``remove_cluster`` removes it too."""
    name = f"{hosts.CONTAINER_PREFIX}{cluster[:40]}-vpc"
    if not localdocker.docker("network", "inspect", name, check=False).ok:
        localdocker.docker(
            "network", "create", "--label", localdocker.SANDBOX_LABEL,
            "--label", f"{CLUSTER_LABEL}={cluster}", name,
        )  # fmt: skip
    return name


def endpoint_for(
    cluster: str,
    *,
    distro: str = "bookworm",
    progress: Callable[[str], None] | None = None,
    shared_network: bool = False,
    cloud_dir: Path | None = None,
    user_data: Callable[[str], str] | None = None,
) -> Callable[[Instance], tuple[str, int]]:
    """For ``provision.aws.up``: an instance → the loopback address and port of its host
    container, started (with the cluster's public key) on first sight. With
    ``shared_network`` (a Swarm cluster) the hosts join one network: ``cluster_network``.
    The hosts start bare, or Docker-ready when ``DOCKER_READY_ENV`` is 1 (and then with the
    service images loaded when ``PRELOADED_ENV`` is 1 too). ``user_data`` (an instance ID →
    what it was launched with: ``user_data_reader``) is run by each host at its first boot."""
    docker_ready = os.environ.get(DOCKER_READY_ENV, "") == "1"
    preloaded = docker_ready and os.environ.get(PRELOADED_ENV, "") == "1"
    # Under the realism layer (the default) a host's apt-daily holds the apt lists lock for
    # a while after boot, as on a fresh Debian or Ubuntu instance.
    apt_daily = realism.sandbox_timings().apt_lists

    def endpoint(instance: Instance) -> tuple[str, int]:
        host = host_for_instance(cluster, instance.instance_id)
        if host is None:
            if instance.key_file is None:
                raise SandboxError(f"{instance.instance_id} has no key file")
            # the first time: ~2 min
            images.ensure_images((distro,), docker_ready=docker_ready, progress=progress)
            host = hosts.start_host(
                _host_name(cluster, instance.instance_id),
                distro=distro,
                public_key=ensure_key_file(instance.key_file),
                labels={
                    CLUSTER_LABEL: cluster,
                    INSTANCE_LABEL: instance.instance_id,
                    **({CLOUD_LABEL: str(cloud_dir)} if cloud_dir else {}),
                },
                network=cluster_network(cluster) if shared_network else None,
                docker_ready=docker_ready,
                preloaded=preloaded,
                user_data=user_data(instance.instance_id) if user_data else "",
                apt_daily=apt_daily,
            )
        return host.address, host.port

    return endpoint


def user_data_reader(region: str, endpoint_url: str) -> Callable[[str], str]:
    """An instance ID → the user-data ``RunInstances`` received (the sandbox's EC2 keeps it),
    read as an instance's cloud-init reads it from the instance metadata; "" for none."""
    from provision.aws.calls import call, make_clients

    def read(instance_id: str) -> str:
        ec2 = make_clients(region, endpoint_url=endpoint_url).ec2
        answer = call(ec2, "describe_instance_attribute",
                      {"InstanceId": instance_id, "Attribute": "userData"})  # fmt: skip
        value = answer.get("UserData", {}).get("Value")
        return base64.b64decode(value).decode("utf-8") if value else ""

    return read


def existing_endpoint(cluster: str) -> Callable[[Instance], tuple[str, int]]:
    """Like ``endpoint_for`` but never starts a host: a missing one is an error, so that a
    sandbox run can never fall back to the (fake, unroutable) address moto made up."""

    def endpoint(instance: Instance) -> tuple[str, int]:
        host = host_for_instance(cluster, instance.instance_id)
        if host is None:
            raise SandboxError(
                f"the sandbox host of {instance.instance_id} is gone; run `provision down` "
                "then `provision up`"
            )
        return host.address, host.port

    return endpoint


def console_output(instance_id: str, cloud_dir: Path) -> str:
    """What the instance of the sandbox cloud in ``cloud_dir`` shows on its console: its host
    container's log, where the host prints cloud-init's host-key block at every boot; "" while
    it has no host (or no engine). By cloud as well as instance: every sandbox cloud's moto
    starts from one seed, so two clouds (two state folders) hand out the same instance IDs."""
    try:
        found = localdocker.container_ids(f"{INSTANCE_LABEL}={instance_id}",
                                           f"{CLOUD_LABEL}={cloud_dir}")  # fmt: skip
        if not found:
            return ""
        done = localdocker.docker("logs", found[0], check=False)
    except (localdocker.EngineUnavailable, CommandError):
        return ""
    return done.stdout + done.stderr


#: The line the kernel prints as a machine powers off; the host's power-off.service prints it
#: on the console (a ``docker stop`` halts instead: no line).
POWER_DOWN = "reboot: Power down"


def powered_off(cloud_dir: Path) -> set[str]:
    """The instances of the sandbox cloud in ``cloud_dir`` whose host container ended by
    powering itself off (``systemctl poweroff``, as the ttl schedule does): stopped, with
    ``POWER_DOWN`` on its console after its last boot (the last host-key block)."""
    try:
        found = localdocker.docker(
            "ps", "--all", "--filter", f"label={INSTANCE_LABEL}", "--filter", "status=exited",
            "--filter", f"label={CLOUD_LABEL}={cloud_dir}",
            "--format", f'{{{{.ID}}}} {{{{.Label "{INSTANCE_LABEL}"}}}}', check=False,
        ).stdout  # fmt: skip
        off = set()
        for line in found.splitlines():
            container, _, instance_id = line.strip().partition(" ")
            if not instance_id:
                continue
            console = localdocker.docker("logs", container, check=False).stdout
            if POWER_DOWN in console[console.rfind(BEGIN) :]:
                off.add(instance_id)
        return off
    except (localdocker.EngineUnavailable, CommandError):
        return set()


def remove_cluster(cluster: str) -> list[str]:
    """Remove the cluster's host containers and their volumes; the names removed."""
    selector = f"{CLUSTER_LABEL}={cluster}"
    removed = [c[:12] for c in localdocker.container_ids(selector)]
    hosts.remove_all(selector)
    return removed


def host_containers(cluster: str) -> list[str]:
    return localdocker.container_ids(f"{CLUSTER_LABEL}={cluster}")


def any_cluster_left(cloud_dir: Path | None = None) -> bool:
    """A host container of any sandbox cluster is left (of the cloud in ``cloud_dir`` only,
    when given)."""
    return bool(localdocker.container_ids(f"{CLOUD_LABEL}={cloud_dir}" if cloud_dir
                                          else CLUSTER_LABEL))  # fmt: skip
