"""Where instances live: the VPC, and a security group that lets in SSH from us and HTTP.

The group opens 22 to the caller's own /32 (or the ``ssh_cidrs`` given), 80 to the configured
CIDR, and nothing else: Redis (6379) stays reachable only through an SSH tunnel. A Swarm
cluster adds the Swarm ports (2377/tcp, 7946/tcp+udp, 4789/udp; ESP, IP protocol 50, when the
overlay is encrypted) and 22/tcp (the manager relays the images to the other hosts) from the
group itself only: its own instances, never a CIDR.
"""

from __future__ import annotations

import ipaddress
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from provision.aws.calls import Clients, call, pages
from provision.aws.tags import cluster_filters, tag_specifications
from provision.aws.waits import poll
from provision.errors import CloudError, ConfigError

AddressFinder = Callable[[], str]
CHECKIP_URL = "https://checkip.amazonaws.com"


def checkip_address() -> str:
    """The caller's public IPv4 address, as checkip.amazonaws.com sees it (the default finder)."""
    with urllib.request.urlopen(CHECKIP_URL, timeout=10) as answer:
        text = answer.read(64).decode("ascii", "replace").strip()
    return str(ipaddress.IPv4Address(text))


def ssh_cidrs(given: tuple[str, ...] | None, finder: AddressFinder | None) -> tuple[str, ...]:
    """The CIDRs allowed to SSH in: the spec's list, else the caller's address as a /32."""
    if given:
        return given
    try:
        address = ipaddress.IPv4Address((finder or checkip_address)().strip())
    except (OSError, ValueError) as exc:
        raise CloudError(
            f"could not find this machine's public address ({exc}); set ssh_cidrs in the inventory",
            code="NoCallerAddress",
        ) from exc
    return (f"{address}/32",)


def vpc_id(clients: Clients, subnet_id: str | None) -> str:
    """The subnet's VPC, or the region's default VPC."""
    if subnet_id:
        subnets = call(clients.ec2, "describe_subnets", {"SubnetIds": [subnet_id]})["Subnets"]
        return str(subnets[0]["VpcId"])
    params = {"Filters": [{"Name": "is-default", "Values": ["true"]}]}
    vpcs = call(clients.ec2, "describe_vpcs", params)["Vpcs"]
    if not vpcs:
        raise CloudError(
            f"region {clients.region} has no default VPC; set `subnet` in the inventory",
            code="NoDefaultVpc",
        )
    return str(vpcs[0]["VpcId"])


def launch_subnet(
    clients: Clients, instance_type: str, subnet_id: str | None, vpc: str
) -> str | None:
    """The subnet to launch into, checked before anything is created: an instance type is not
    offered in every zone (RunInstances answers ``Unsupported`` after the key pair and the
    security group exist). A chosen subnet in a zone without the type is refused; without
    one, EC2 picks the zone unless some zone lacks the type, and then a default subnet of
    ``vpc`` in a zone that has it is taken. AWS's offerings unknown (empty): no check."""
    params = {"LocationType": "availability-zone",
              "Filters": [{"Name": "instance-type", "Values": [instance_type]}]}  # fmt: skip
    offers = pages(clients.ec2, "describe_instance_type_offerings", params, "InstanceTypeOfferings")
    offered = {str(o["Location"]) for o in offers}
    if not offered:
        return subnet_id
    if subnet_id:
        subnet = call(clients.ec2, "describe_subnets", {"SubnetIds": [subnet_id]})["Subnets"][0]
        zone = str(subnet["AvailabilityZone"])
        if zone not in offered:
            raise ConfigError(
                f"subnet {subnet_id} is in {zone}, which does not offer {instance_type}; "
                f"choose a subnet in {', '.join(sorted(offered))}",
                field="subnet",
            )
        return subnet_id
    filters = [{"Name": "vpc-id", "Values": [vpc]}, {"Name": "default-for-az", "Values": ["true"]}]
    subnets = pages(clients.ec2, "describe_subnets", {"Filters": filters}, "Subnets")
    zones = {str(s["AvailabilityZone"]): str(s["SubnetId"]) for s in subnets}
    if set(zones) <= offered:
        return None
    usable = sorted(z for z in zones if z in offered)
    if not usable:
        raise ConfigError(
            f"no default subnet of {vpc} is in a zone that offers {instance_type} "
            f"({', '.join(sorted(offered))}); set `subnet` to one that is",
            field="subnet",
        )
    return zones[usable[0]]


@dataclass(frozen=True)
class SecurityGroup:
    group_id: str
    created: bool


# A rule as (protocol, from port, to port, source): comparable, and enough to revoke it again.
# The source is a CIDR, or a security group id (``sg-...``) for a rule from that group.
Rule = tuple[str, int, int, str]

#: Docker Swarm between the cluster's hosts: management, gossip, VXLAN data; and SSH, by
#: which the manager relays the images to the other hosts (``tasks/image_relay.py``)
SWARM_PORTS: tuple[tuple[str, int, int], ...] = (
    ("tcp", 2377, 2377), ("tcp", 7946, 7946), ("udp", 7946, 7946), ("udp", 4789, 4789),
    ("tcp", 22, 22),
)  # fmt: skip
ESP = ("50", -1, -1)  # IPsec of an encrypted overlay


def swarm_rules(group_id: str, *, encrypted: bool) -> set[Rule]:
    """The Swarm rules, each from the group itself."""
    ports = (*SWARM_PORTS, ESP) if encrypted else SWARM_PORTS
    return {(proto, low, high, group_id) for proto, low, high in ports}


def _wanted_rules(ssh: tuple[str, ...], http_cidr: str) -> set[Rule]:
    return {("tcp", 22, 22, cidr) for cidr in ssh} | {("tcp", 80, 80, http_cidr)}


def _held_rules(group: Mapping[str, Any]) -> set[Rule]:
    held = set()
    for p in group.get("IpPermissions", []):
        key = (str(p["IpProtocol"]), int(p.get("FromPort", -1)), int(p.get("ToPort", -1)))
        held |= {(*key, str(r["CidrIp"])) for r in p.get("IpRanges", [])}
        held |= {(*key, str(g["GroupId"])) for g in p.get("UserIdGroupPairs", [])}
    return held


def _permissions(rules: set[Rule]) -> list[dict[str, Any]]:
    permissions = []
    for proto, low, high, source in sorted(rules):
        # ESP has no ports: -1 to -1, as AWS lists it.
        permission: dict[str, Any] = {"IpProtocol": proto, "FromPort": low, "ToPort": high}
        if source.startswith("sg-"):
            permission["UserIdGroupPairs"] = [{"GroupId": source}]
        else:
            permission["IpRanges"] = [{"CidrIp": source}]
        permissions.append(permission)
    return permissions


def ensure_security_group(
    clients: Clients,
    *,
    cluster: str,
    vpc: str,
    ssh: tuple[str, ...],
    http_cidr: str,
    tags: Mapping[str, str],
    timeout: float,
    interval: float,
    swarm: bool = False,
    encrypted: bool = False,
) -> SecurityGroup:
    """Find the cluster's group by its tags, or create it; then make its rules exactly ours
    (with ``swarm``, the Swarm ports from the group itself)."""
    filters = [*cluster_filters(cluster), {"Name": "vpc-id", "Values": [vpc]}]
    groups = call(clients.ec2, "describe_security_groups", {"Filters": filters})["SecurityGroups"]
    created = not groups
    if created:
        params = {
            "GroupName": f"provision-{cluster}",
            "Description": f"provision cluster {cluster}: SSH from the operator, HTTP",
            "VpcId": vpc,
            "TagSpecifications": tag_specifications(["security-group"], tags),
        }
        group_id = str(call(clients.ec2, "create_security_group", params)["GroupId"])
        held: set[Rule] = set()
    else:
        group_id, held = str(groups[0]["GroupId"]), _held_rules(groups[0])
    wanted = _wanted_rules(ssh, http_cidr)
    if swarm:
        wanted |= swarm_rules(group_id, encrypted=encrypted)
    _sync_rules(clients, group_id, held, wanted, timeout, interval)
    return SecurityGroup(group_id, created)


def _sync_rules(
    clients: Clients,
    group_id: str,
    held: set[Rule],
    wanted: set[Rule],
    timeout: float,
    interval: float,
) -> None:
    """Add missing rules and revoke extra ones (e.g. an old caller address, or 6379)."""
    for method, rules in (
        ("authorize_security_group_ingress", wanted - held),
        ("revoke_security_group_ingress", held - wanted),
    ):
        if not rules:
            continue
        params = {"GroupId": group_id, "IpPermissions": _permissions(rules)}
        # A group AWS has just created may not be visible yet: retried as "not yet".
        poll(
            partial(call, clients.ec2, method, params),
            what=f"{method} on {group_id}",
            timeout=timeout,
            interval=interval,
        )
