"""``ClusterSpec``: the instance spec, parsed and validated from inventory variables.

Variables read (everything else in the mapping is ignored):

=================== ============================== ===============================================
variable            default                        meaning
=================== ============================== ===============================================
``cluster``         (required)                     name: a-z, 0-9, '-', at most 40 characters
``region``          (required)                     an EC2 region botocore knows, e.g. eu-west-1
``instance_type``   ``t3.micro``                   e.g. t3.small, m7i.large
``image``           ``debian-12``                  debian-12, ubuntu-24.04, al2023(-ecs), ami-…
``ssh_user``        from the image                 login user; required with an ami- id
``subnet``          (default VPC)                  a subnet-… id to launch into
``root_volume_size`` ``10``                        root volume in GiB (encrypted gp3)
``ttl``             ``4h``                         time to live: seconds or 30m / 4h / 2d
``ssh_cidrs``       (caller's public /32)          list of CIDRs allowed to reach port 22
``http_cidr``       ``0.0.0.0/0``                  CIDR allowed to reach port 80
``instance_count``  ``1``                          how many hosts
``swarm``           ``false``                      open the Swarm ports between the hosts
``swarm_encrypted`` ``false``                      and ESP (an encrypted overlay)
=================== ============================== ===============================================

>>> ClusterSpec.from_vars({"cluster": "demo", "region": "eu-west-1"}).login_user
'admin'
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from provision.aws.images import IMAGES
from provision.aws.tags import check_cluster_name
from provision.errors import ConfigError
from provision.models.names import check_image, shown, truth, whole_number

# Instance families and sizes as AWS spells them (t3.micro, m7i-flex.large, u-6tb1.metal, ...);
# the launch also asks describe_instance_types, read-only, before creating anything.
_INSTANCE_TYPE = re.compile(
    r"[a-z][a-z0-9-]*[0-9][a-z0-9-]*\."
    r"(nano|micro|small|medium|large|metal|metal-\d+xl|\d*xlarge)"
)
_SUBNET = re.compile(r"subnet-[0-9a-f]{8,17}")
_AMI = re.compile(r"ami-[0-9a-f]{8,17}")
_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_TTL = re.compile(r"(\d{1,9})\s*([smhd]?)")
_TTL_MAX = 30 * 86400  # a test cluster that outlives a month is a forgotten one
_TTL_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_PARTITIONS = ("aws", "aws-cn", "aws-us-gov")


@cache
def known_regions() -> frozenset[str]:
    """EC2 regions in botocore's endpoint data (no network call)."""
    import botocore.session

    session = botocore.session.get_session()
    return frozenset(
        region
        for partition in _PARTITIONS
        for region in session.get_available_regions("ec2", partition_name=partition)
    )


@dataclass(frozen=True)
class ClusterSpec:
    """A validated description of the cluster to stand up."""

    cluster: str
    region: str
    instance_type: str = "t3.micro"
    image: str = "debian-12"
    ssh_user: str | None = None
    subnet_id: str | None = None
    root_volume_gb: int = 10
    ttl_seconds: int = 4 * 3600
    ssh_cidrs: tuple[str, ...] | None = None
    http_cidr: str = "0.0.0.0/0"
    count: int = 1
    swarm: bool = False
    swarm_encrypted: bool = False
    docker_at_boot: bool = True  # the user-data installs Docker while the instance boots
    wait_status_checks: bool = False  # also wait for EC2's status checks (minutes; not needed)
    pull_at_boot: tuple[str, ...] = ()  # images the user-data pulls once Docker is in

    @property
    def login_user(self) -> str:
        """The user to log in as: ``ssh_user`` if set, else the image's (admin, ubuntu...)."""
        if self.ssh_user:
            return self.ssh_user
        return IMAGES[self.image].user

    @classmethod
    def from_vars(cls, vars: Mapping[str, Any], *, source: str = "") -> ClusterSpec:
        """Parse inventory variables; a bad value raises ``ConfigError`` naming the variable."""
        p = _Parser(vars, source)
        image = p.image()
        return cls(
            cluster=check_cluster_name(p.required("cluster"), source=source),
            region=p.region(),
            instance_type=p.instance_type(),
            image=image,
            ssh_user=p.ssh_user(image),
            subnet_id=p.subnet(),
            root_volume_gb=p.integer("root_volume_size", 10, low=8, high=16384),
            ttl_seconds=p.ttl(),
            ssh_cidrs=p.ssh_cidrs(),
            http_cidr=p.cidr("http_cidr", vars.get("http_cidr", "0.0.0.0/0")),
            count=p.integer("instance_count", 1, low=1, high=10),
            swarm=p.boolean("swarm"),
            swarm_encrypted=p.boolean("swarm_encrypted"),
            docker_at_boot=p.boolean("docker_at_boot", default=True),
            wait_status_checks=p.boolean("wait_status_checks"),
            pull_at_boot=p.images("pull_at_boot"),
        )


class _Parser:
    """One method per variable; each raises ConfigError(field=<variable>)."""

    def __init__(self, vars: Mapping[str, Any], source: str) -> None:
        self.vars = vars
        self.source = source

    def fail(self, field: str, message: str) -> ConfigError:
        return ConfigError(message, file=self.source or None, field=field)

    def required(self, name: str) -> str:
        value = self.vars.get(name)
        if value in (None, ""):
            raise self.fail(name, f"{name} is required")
        if not isinstance(value, str):
            raise self.fail(name, f"{name} must be a string, not {type(value).__name__}")
        return value

    def region(self) -> str:
        region = self.required("region")
        if region not in known_regions():
            raise self.fail("region", f"unknown EC2 region {region!r}")
        return region

    def instance_type(self) -> str:
        value = self.vars.get("instance_type", "t3.micro")
        if not isinstance(value, str) or not _INSTANCE_TYPE.fullmatch(value):
            raise self.fail("instance_type", f"unknown instance type {value!r} (e.g. t3.micro)")
        return value

    def image(self) -> str:
        value = self.vars.get("image", "debian-12")
        if isinstance(value, str) and (value in IMAGES or _AMI.fullmatch(value)):
            return value
        known = ", ".join(IMAGES)
        raise self.fail("image", f"unknown image {value!r}: use one of {known} or an ami- id")

    def ssh_user(self, image: str) -> str | None:
        value = self.vars.get("ssh_user")
        if value is None:
            if image not in IMAGES:
                raise self.fail("ssh_user", f"ssh_user is required with a custom image {image}")
            return None
        if not isinstance(value, str) or not _USER.fullmatch(value):
            raise self.fail("ssh_user", f"bad login user {value!r}")
        return value

    def subnet(self) -> str | None:
        value = self.vars.get("subnet")
        if value is None:
            return None
        if not isinstance(value, str) or not _SUBNET.fullmatch(value):
            raise self.fail("subnet", f"bad subnet id {value!r} (e.g. subnet-0123abcd)")
        return value

    def integer(self, name: str, default: int, *, low: int, high: int) -> int:
        """A whole number, or its text (``-e`` gives text, as Ansible's does)."""
        value = self.vars.get(name, default)
        number = whole_number(value)
        if number is None or not low <= number <= high:
            raise self.fail(
                name, f"{name} must be an integer from {low} to {high}, not {shown(value)}"
            )
        return number

    def boolean(self, name: str, default: bool = False) -> bool:
        """true/false, or a text Ansible reads as one (``-e docker_at_boot=no``)."""
        value = self.vars.get(name, default)
        flag = truth(value)
        if flag is None:
            raise self.fail(name, f"{name} must be true or false, not {shown(value)}")
        return flag

    def images(self, name: str) -> tuple[str, ...]:
        """A list of image references (``redis:latest``), each checked: they reach a shell."""
        value = self.vars.get(name) or []
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise self.fail(name, f"{name} must be a list of images, not {shown(value)}")
        for i, ref in enumerate(value):
            try:
                check_image(ref, f"{name}[{i}]")
            except ConfigError as exc:
                raise self.fail(name, exc.message) from None
        return tuple(value)

    def ttl(self) -> int:
        value = self.vars.get("ttl", "4h")
        match = _TTL.fullmatch(str(value).strip()) if not isinstance(value, bool) else None
        seconds = int(match.group(1)) * _TTL_UNITS[match.group(2)] if match else 0
        if seconds <= 0:
            raise self.fail("ttl", f"bad time to live {value!r} (e.g. 3600, 90m, 4h, 2d)")
        if seconds > _TTL_MAX:
            raise self.fail("ttl", f"time to live {value!r} is more than 30 days")
        return seconds

    def cidr(self, field: str, value: Any) -> str:
        try:
            network = ipaddress.IPv4Network(str(value), strict=True)
        except ValueError as exc:
            raise self.fail(field, f"bad IPv4 CIDR {value!r}: {exc}") from None
        return str(network)

    def ssh_cidrs(self) -> tuple[str, ...] | None:
        value = self.vars.get("ssh_cidrs")
        if value is None:
            return None
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not value:
            raise self.fail("ssh_cidrs", "ssh_cidrs must be a non-empty list of CIDRs")
        cidrs = tuple(self.cidr("ssh_cidrs", v) for v in value)
        if any(c.endswith("/0") for c in cidrs):
            raise self.fail("ssh_cidrs", "refusing to open SSH to the whole internet (/0)")
        return cidrs
