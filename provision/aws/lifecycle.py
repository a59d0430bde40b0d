"""``up``: stand a cluster up, or find it standing and change nothing.

Order matters: every read-only check (credentials, instance type, caller address, image, VPC)
runs before the first create, so a bad spec costs nothing. Then key pair, security group and
instances, each found by its tags first and recorded in the state file as soon as it exists.
"""

from __future__ import annotations

import datetime as dt
import getpass
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from provision.aws import hostkeys, instances, keys, network, waits
from provision.aws import state as statefile
from provision.aws.calls import Clients, call, make_clients
from provision.aws.images import resolve_ami, root_device_name
from provision.aws.results import (
    DEFAULT_TIMEOUTS,
    ClusterResult,
    EndpointFor,
    Instance,
    OnEvent,
    Timeouts,
    no_events,
)
from provision.aws.spec import ClusterSpec
from provision.aws.tags import CLUSTER, CREATED_BY, EXPIRES_AT, RUN_ID, is_expired
from provision.connection.keys import scan_host_key
from provision.errors import CloudError, ConfigError, ConnectError, Interrupted

SshWait = Callable[[str, int], object]
"""Waits until ``address:port`` speaks SSH; raises ConnectError if it never does."""
CloudInitHook = Callable[[Instance], object]


@dataclass
class _Run:
    """Everything one ``up`` works with; ``created`` lists what this invocation made."""

    spec: ClusterSpec
    clients: Clients
    state_dir: Path
    state: statefile.ClusterState
    timeouts: Timeouts
    emit: OnEvent
    created: list[str] = field(default_factory=list)

    def record(self, resource_id: str | None = None) -> None:
        if resource_id:
            self.created.append(resource_id)
            self.state.created.append(resource_id)
        statefile.save_state(self.state_dir, self.state)


@dataclass(frozen=True)
class _Reach:
    """How to reach and trust each host once it is running."""

    endpoint_for: EndpointFor | None
    wait_ssh: SshWait | None
    scanner: hostkeys.HostKeyScanner | None
    trust_on_first_use: bool
    cloud_init: CloudInitHook | None


def up(
    spec: ClusterSpec,
    *,
    state_dir: Path,
    run_id: str | None = None,
    endpoint_for: EndpointFor | None = None,
    wait_ssh: bool | SshWait = True,
    host_key_scanner: hostkeys.HostKeyScanner | None = scan_host_key,
    trust_on_first_use: bool = False,
    cloud_init: CloudInitHook | None = None,
    my_address: network.AddressFinder | None = None,
    session: Any = None,
    endpoint_url: str | None = None,
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
    on_event: OnEvent | None = None,
    now: dt.datetime | None = None,
    created_by: str | None = None,
) -> ClusterResult:
    """Stand the cluster up (or find it standing) and return how to reach its hosts.

    >>> result = up(ClusterSpec.from_vars(vars), state_dir=Path(".provision"))  # doctest: +SKIP

    ``endpoint_for`` maps an instance to the (address, port) to use instead of its public IP;
    ``wait_ssh`` False skips the SSH banner wait and host-key scan (moto's addresses are not
    reachable), a callable replaces the banner wait; ``cloud_init`` is called per host last.
    """
    emit = on_event or no_events
    clients = make_clients(spec.region, session=session, endpoint_url=endpoint_url)
    run = _Run(spec, clients, state_dir, _load_or_new(spec, state_dir, run_id), timeouts, emit)
    reach = _Reach(
        endpoint_for,
        _ssh_wait(wait_ssh, timeouts),
        host_key_scanner if wait_ssh is not False else None,
        trust_on_first_use,
        cloud_init,
    )
    try:
        return _up(run, reach, my_address, now, created_by)
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted while standing up {spec.cluster}: run `provision up` again to finish, "
            f"or `provision down` to remove what was created (state: "
            f"{statefile.state_path(state_dir, spec.cluster)})"
        ) from None


def _up(
    run: _Run,
    reach: _Reach,
    my_address: network.AddressFinder | None,
    now: dt.datetime | None,
    created_by: str | None,
) -> ClusterResult:
    spec, clients = run.spec, run.clients
    ssh_cidrs = network.ssh_cidrs(spec.ssh_cidrs, my_address)
    arch = _check_instance_type(clients, spec.instance_type)
    existing = instances.find_instances(clients, spec.cluster)
    ami = _choose_ami(run, existing, arch)
    missing = spec.count - len(existing)  # a host gone for good is replaced
    # A custom AMI must match the type's architecture (an alias is resolved for it).
    checked = arch if spec.image.startswith("ami-") else None
    root_device = root_device_name(clients, ami, arch=checked) if missing > 0 else ""
    vpc = network.vpc_id(clients, spec.subnet_id)
    subnet = network.launch_subnet(clients, spec.instance_type, spec.subnet_id, vpc)
    tags = _tags(run, now, created_by)
    if is_expired(run.state.expires_at, now or dt.datetime.now(dt.timezone.utc)):
        # Its instances power themselves off at the expiry (userdata.ttl_script): one
        # launched now would do so at once. Refused before anything is made.
        raise CloudError(
            f"cluster {spec.cluster!r} expired at {run.state.expires_at} (ttl): its instances "
            "power themselves off. Run `provision down`, then `provision up` for a new one",
            code="ClusterExpired",
        )
    key = _ensure_key(run, tags)
    group = network.ensure_security_group(
        clients,
        cluster=spec.cluster,
        vpc=vpc,
        ssh=ssh_cidrs,
        http_cidr=spec.http_cidr,
        tags=tags,
        timeout=run.timeouts.delete,
        interval=run.timeouts.poll,
        swarm=spec.swarm,
        encrypted=spec.swarm_encrypted,
    )
    if group.created:
        run.emit("security group created", {"group": group.group_id})
    run.state.security_group_id = group.group_id
    run.record(group.group_id if group.created else None)
    ids = [i["InstanceId"] for i in existing]
    if missing > 0:
        ids += _launch(run, ami, root_device, key, tags, count=missing, existing=ids,
                       subnet=subnet)  # fmt: skip
    described = _wait_ready(run, ids)
    hosts = tuple(_reach_host(run, reach, i, key.private_key) for i in described)
    run.state.finished = True
    run.record()
    return ClusterResult(
        cluster=spec.cluster,
        region=spec.region,
        instances=hosts,
        security_group_id=group.group_id,
        key_name=key.name,
        ami_id=ami,
        created=tuple(run.created),
        run_id=run.state.run_id,
    )


def _load_or_new(spec: ClusterSpec, state_dir: Path, run_id: str | None) -> statefile.ClusterState:
    """The saved state; an unfinished run keeps its run id, so its ClientToken is reused."""
    saved = statefile.load_state(state_dir, spec.cluster)
    if saved is not None and saved.region != spec.region:
        raise ConfigError(
            f"cluster {spec.cluster} was stood up in {saved.region}, not {spec.region}; "
            f"run `provision down` there first",
            field="region",
        )
    fresh_id = run_id or f"{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    if saved is None:
        return statefile.ClusterState(spec.cluster, spec.region, fresh_id)
    if saved.finished:
        saved.run_id, saved.finished, saved.created = fresh_id, False, []
    return saved


def _ssh_wait(wait_ssh: bool | SshWait, timeouts: Timeouts) -> SshWait | None:
    if wait_ssh is False:
        return None
    if wait_ssh is True:
        return lambda address, port: waits.wait_ssh_banner(
            address, port, timeout=timeouts.ssh, interval=timeouts.poll
        )
    return wait_ssh


def _check_instance_type(clients: Clients, instance_type: str) -> str:
    """Ask AWS (read-only) whether the type exists in this region; its CPU architecture
    (``arm64`` for t4g, m7g, c7g...; else ``x86_64``)."""
    try:
        answer = call(clients.ec2, "describe_instance_types", {"InstanceTypes": [instance_type]})
    except CloudError as exc:
        if exc.code != "InvalidInstanceType":
            raise
        raise ConfigError(
            f"instance type {instance_type!r} is not offered in {clients.region}",
            field="instance_type",
        ) from exc
    types = answer.get("InstanceTypes") or [{}]
    supported = types[0].get("ProcessorInfo", {}).get("SupportedArchitectures") or ["x86_64"]
    return "x86_64" if "x86_64" in supported else str(supported[0])


def _choose_ami(run: _Run, existing: list[dict[str, Any]], arch: str = "x86_64") -> str:
    """The running image, else the recorded one, else today's: a re-run never changes image."""
    ami = existing[0]["ImageId"] if existing else run.state.ami_id
    if not ami:
        ami = resolve_ami(run.clients, run.spec.image, on_event=run.emit, arch=arch)
    run.state.ami_id = str(ami)
    return str(ami)


def _tags(run: _Run, now: dt.datetime | None, created_by: str | None) -> dict[str, str]:
    if not run.state.expires_at:
        start = now or dt.datetime.now(dt.timezone.utc)
        expires = start + dt.timedelta(seconds=run.spec.ttl_seconds)
        run.state.expires_at = expires.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        CLUSTER: run.spec.cluster,
        RUN_ID: run.state.run_id,
        CREATED_BY: created_by or f"{getpass.getuser()}@{socket.gethostname()}",
        EXPIRES_AT: run.state.expires_at,
    }


def _ensure_key(run: _Run, tags: dict[str, str]) -> keys.KeyPair:
    private_key = statefile.cluster_dir(run.state_dir, run.spec.cluster) / "id_ed25519"
    key = keys.ensure_key_pair(run.clients, keys.key_name(run.spec.cluster), private_key, tags)
    if key.created:
        run.emit("key pair imported", {"key": key.name, "file": str(private_key)})
    run.state.key_name, run.state.key_pair_id = key.name, key.key_pair_id
    run.record(key.name if key.created else None)
    return key


def _launch(
    run: _Run,
    ami: str,
    root_device: str,
    key: keys.KeyPair,
    tags: dict[str, str],
    *,
    count: int,
    existing: list[str],
    subnet: str | None,
) -> list[str]:
    """``count`` instances in one RunInstances; named ``<cluster>-<n>`` with numbers the
    ``existing`` instances do not hold (a replacement takes a new name)."""
    spec = run.spec
    request = instances.LaunchRequest(
        cluster=spec.cluster,
        run_id=run.state.run_id,
        ami_id=ami,
        root_device=root_device,
        instance_type=spec.instance_type,
        root_volume_gb=spec.root_volume_gb,
        count=count,
        key_name=key.name,
        security_group_id=run.state.security_group_id,
        subnet_id=subnet,
        user=spec.login_user,
        expires_at=run.state.expires_at,
        docker_at_boot=spec.docker_at_boot,
        pull_at_boot=spec.pull_at_boot,
    )
    run.emit("launching instances", {"count": count, "type": spec.instance_type, "ami": ami})
    ids = instances.launch(run.clients, request, tags, interval=max(run.timeouts.poll, 0.01))
    held = {r.name for r in run.state.instances if r.instance_id in existing}
    free = (n for n in range(1, 1000) if f"{spec.cluster}-{n}" not in held)
    for number, instance_id in zip(free, ids, strict=False):
        record = statefile.InstanceRecord(instance_id, f"{spec.cluster}-{number}")
        run.state.instances.append(record)
        run.record(instance_id)
    return ids


def _wait_ready(run: _Run, ids: list[str]) -> list[dict[str, Any]]:
    t = run.timeouts
    run.emit("waiting for instance running", {"instances": ids})
    # Not for the status checks: they pass two to four minutes after launch on real EC2, and
    # SSH answers long before (Terraform and Ansible's ec2_instance do not wait for them
    # either); the SSH wait that follows is what says the host is reachable.
    described = waits.wait_state(run.clients, ids, "running", timeout=t.running, interval=t.poll)
    if run.spec.wait_status_checks:  # asked for: the path before readiness meant SSH
        run.emit("waiting for the status checks", {"instances": ids})
        waits.wait_status_ok(run.clients, ids, timeout=t.status, interval=t.poll)
    return sorted(described, key=lambda i: (i.get("AmiLaunchIndex", 0), i["InstanceId"]))


def _reach_host(run: _Run, reach: _Reach, described: dict[str, Any], key_file: Path) -> Instance:
    """Wait for SSH, pin the host key, write known_hosts, then run the cloud-init hook."""
    instance_id = str(described["InstanceId"])
    record = run.state.instance(instance_id)
    if record is None:
        name = instances.host_name(run.spec.cluster, described)
        record = statefile.InstanceRecord(instance_id, name)
        run.state.instances.append(record)
    public_ip = described.get("PublicIpAddress")
    host = Instance(
        record.name, instance_id, public_ip, public_ip or "", 22, run.spec.login_user, key_file
    )
    address, port = reach.endpoint_for(host) if reach.endpoint_for else (host.address, 22)
    if not address:
        raise CloudError(
            f"{instance_id} has no public IP address: is the subnet public?", code="NoPublicIp"
        )
    host = replace(host, address=address, port=port)
    if reach.wait_ssh is not None:
        run.emit("waiting for SSH", {"instance": instance_id, "address": address, "port": port})
        reach.wait_ssh(address, port)
    host = replace(host, host_key=_pin(run, reach, record, host))
    if reach.cloud_init is not None:
        run.emit("waiting for cloud-init", {"instance": instance_id})
        reach.cloud_init(host)
    return host


def _pin(run: _Run, reach: _Reach, record: statefile.InstanceRecord, host: Instance) -> str | None:
    presented = reach.scanner(host.address, host.port) if reach.scanner else None
    # Not connecting (wait_ssh off): one look at the console, no waiting for it to fill.
    wait = run.timeouts.console if reach.wait_ssh is not None else 0.0
    console = () if record.host_keys else _console_keys(run, host.instance_id, wait)
    name = hostkeys.known_hosts_name(host.address, host.port)
    pinned = hostkeys.decide_host_keys(
        name,
        console=console,
        recorded=record.host_keys,
        presented=presented,
        trust_on_first_use=reach.trust_on_first_use,
    )
    if pinned is None:
        if reach.wait_ssh is not None:
            raise ConnectError(
                "no host key to pin: the console output showed none within "
                f"{run.timeouts.console:g}s and trust_on_first_use is off",
                host=name,
            )
        run.emit("host key not pinned", {"instance": host.instance_id})
        return None
    record.host_keys, record.host_key_source = list(pinned.keys), pinned.source
    record.address, record.port = host.address, host.port
    run.record()
    hostkeys.write_known_hosts(run.state_dir / "known_hosts", host.address, host.port, pinned.keys)
    run.emit("host key pinned", {"instance": host.instance_id, "source": pinned.source})
    return pinned.preferred


#: what EC2 answers when an instance type cannot give its latest console output
_NO_LATEST = {"UnsupportedOperation", "InvalidParameterValue", "InvalidParameterCombination"}


def _console_keys(run: _Run, instance_id: str, timeout: float) -> tuple[str, ...]:
    """Host keys from the console output; () if none appear within ``timeout``.

    Asked with ``Latest=True``: without it EC2 answers the buffered output, which stays empty
    for minutes after a boot (GetConsoleOutput's API reference). An instance type that refuses
    ``Latest`` is asked again without it, and from then on."""
    params: dict[str, Any] = {"InstanceId": instance_id, "Latest": True}

    def check() -> tuple[str, ...] | None:
        try:
            answer = call(run.clients.ec2, "get_console_output", params)
        except CloudError as exc:
            if exc.code not in _NO_LATEST or "Latest" not in params:
                raise
            del params["Latest"]
            run.emit("console output: latest refused, buffered output read",
                     {"instance": instance_id, "code": exc.code})  # fmt: skip
            answer = call(run.clients.ec2, "get_console_output", params)
        return hostkeys.parse_console_host_keys(str(answer.get("Output") or "")) or None

    try:
        return waits.poll(
            check,
            what=f"host keys in the console output of {instance_id}",
            timeout=timeout,
            interval=run.timeouts.poll,
        )
    except CloudError as exc:
        if exc.code != "Timeout":
            raise
        return ()
