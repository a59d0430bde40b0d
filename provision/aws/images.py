"""Which AMI a cluster boots: AWS's public SSM parameters first, ``describe_images`` second."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from provision.aws.calls import Clients, call
from provision.errors import CloudError, ConfigError


@dataclass(frozen=True)
class ImageFamily:
    """An image alias: where AWS publishes its latest AMI id, and who logs in."""

    alias: str
    ssm_parameter: str
    owner: str
    name_pattern: str
    user: str


IMAGES: dict[str, ImageFamily] = {
    f.alias: f
    for f in (
        ImageFamily(
            "debian-12",
            "/aws/service/debian/release/12/latest/amd64",
            "136693071363",
            "debian-12-amd64-*",
            "admin",
        ),
        ImageFamily(
            "ubuntu-24.04",
            "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id",
            "099720109477",
            "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*",
            "ubuntu",
        ),
        ImageFamily(
            "al2023",
            "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
            "137112412989",
            "al2023-ami-2023.*-kernel-6.1-x86_64",
            "ec2-user",
        ),
    )
}

# SSM answers these when a public parameter is not published in a region (or in moto).
_MISSING_PARAMETER = {"ParameterNotFound", "AccessDeniedException"}


def resolve_ami(
    clients: Clients, image: str, *, on_event: Callable[[str, dict[str, Any]], None]
) -> str:
    """The AMI id for an alias (``debian-12``...) or an ``ami-`` id, as AWS publishes it today.

    Callers record the answer in the cluster state, so a later run keeps the same image.
    """
    if image.startswith("ami-"):
        return image
    family = IMAGES[image]
    try:
        answer = call(clients.ssm, "get_parameter", {"Name": family.ssm_parameter})
        ami = str(answer["Parameter"]["Value"])
        on_event("image resolved", {"image": image, "ami": ami, "via": family.ssm_parameter})
        return ami
    except CloudError as exc:
        if exc.code not in _MISSING_PARAMETER:
            raise
    ami = _newest_image(clients, family)
    on_event("image resolved", {"image": image, "ami": ami, "via": "describe_images"})
    return ami


def _newest_image(clients: Clients, family: ImageFamily) -> str:
    params = {
        "Owners": [family.owner],
        "Filters": [
            {"Name": "name", "Values": [family.name_pattern]},
            {"Name": "architecture", "Values": ["x86_64"]},
            {"Name": "state", "Values": ["available"]},
        ],
    }
    images = call(clients.ec2, "describe_images", params).get("Images", [])
    if not images:
        raise CloudError(
            f"no AMI found for {family.alias}: SSM parameter {family.ssm_parameter} is missing "
            f"and no image of owner {family.owner} matches {family.name_pattern!r}",
            code="ImageNotFound",
            operation="DescribeImages",
        )
    newest = max(images, key=lambda i: str(i.get("CreationDate", "")))
    return str(newest["ImageId"])


def root_device_name(clients: Clients, ami: str) -> str:
    """The AMI's root device (``/dev/xvda`` on Debian and AL2023, ``/dev/sda1`` on Ubuntu)."""
    try:
        images = call(clients.ec2, "describe_images", {"ImageIds": [ami]}).get("Images", [])
    except CloudError as exc:
        if exc.code not in ("InvalidAMIID.NotFound", "InvalidAMIID.Malformed"):
            raise
        images = []
    if not images:
        raise ConfigError(
            f"AMI {ami} does not exist in {clients.region} (or is not shared with this account)",
            field="image",
        )
    return str(images[0].get("RootDeviceName") or "/dev/xvda")
