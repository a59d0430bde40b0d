"""Which AMI a cluster boots: AWS's public SSM parameters first, ``describe_images`` second."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from provision.aws.calls import Clients, call
from provision.errors import CloudError, ConfigError

#: the CPU architectures EC2 instance types have, as DescribeInstanceTypes names them
ARCHITECTURES = ("x86_64", "arm64")


@dataclass(frozen=True)
class ImageFamily:
    """An image alias: where AWS publishes its latest AMI id (per architecture), who logs in.

    ``ssm_parameter`` and ``name_pattern`` are the x86_64 ones; ``arm64_parameter`` /
    ``arm64_pattern`` give the arm64 image (t4g, m7g, c7g...)."""

    alias: str
    ssm_parameter: str
    owner: str
    name_pattern: str
    user: str
    arm64_parameter: str = ""
    arm64_pattern: str = ""

    def parameter(self, arch: str = "x86_64") -> str:
        return self.arm64_parameter if arch == "arm64" else self.ssm_parameter

    def pattern(self, arch: str = "x86_64") -> str:
        return self.arm64_pattern if arch == "arm64" else self.name_pattern

    @property
    def parameters(self) -> tuple[str, ...]:
        return (self.ssm_parameter, self.arm64_parameter)


IMAGES: dict[str, ImageFamily] = {
    f.alias: f
    for f in (
        ImageFamily(
            "debian-12",
            "/aws/service/debian/release/12/latest/amd64",
            "136693071363",
            "debian-12-amd64-*",
            "admin",
            "/aws/service/debian/release/12/latest/arm64",
            "debian-12-arm64-*",
        ),
        ImageFamily(
            "ubuntu-24.04",
            "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id",
            "099720109477",
            "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*",
            "ubuntu",
            "/aws/service/canonical/ubuntu/server/24.04/stable/current/arm64/hvm/ebs-gp3/ami-id",
            "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-*",
        ),
        ImageFamily(
            "al2023",
            "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
            "137112412989",
            "al2023-ami-2023.*-kernel-6.1-x86_64",
            "ec2-user",
            "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64",
            "al2023-ami-2023.*-kernel-6.1-arm64",
        ),
        # The ECS-optimized Amazon Linux 2023 AMI: Docker Engine installed and enabled (its
        # ECS agent is switched off by the user-data: no ECS cluster here); the Compose
        # plugin, which it lacks, is the only install left.
        ImageFamily(
            "al2023-ecs",
            "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id",
            "591542846629",
            "al2023-ami-ecs-hvm-2023.*-kernel-6.1-x86_64",
            "ec2-user",
            "/aws/service/ecs/optimized-ami/amazon-linux-2023/arm64/recommended/image_id",
            "al2023-ami-ecs-hvm-2023.*-kernel-6.1-arm64",
        ),
    )
}

# SSM answers these when a public parameter is not published in a region (or in moto).
_MISSING_PARAMETER = {"ParameterNotFound", "AccessDeniedException"}


def resolve_ami(
    clients: Clients,
    image: str,
    *,
    on_event: Callable[[str, dict[str, Any]], None],
    arch: str = "x86_64",
) -> str:
    """The AMI id for an alias (``debian-12``...) or an ``ami-`` id, as AWS publishes it today,
    for the instance type's architecture ``arch``.

    Callers record the answer in the cluster state, so a later run keeps the same image.
    """
    if image.startswith("ami-"):
        return image
    family = IMAGES[image]
    parameter = family.parameter(arch)
    try:
        answer = call(clients.ssm, "get_parameter", {"Name": parameter})
        ami = str(answer["Parameter"]["Value"])
        on_event("image resolved", {"image": image, "ami": ami, "via": parameter, "arch": arch})
        return ami
    except CloudError as exc:
        if exc.code not in _MISSING_PARAMETER:
            raise
    ami = _newest_image(clients, family, arch)
    on_event("image resolved", {"image": image, "ami": ami, "via": "describe_images"})
    return ami


def _newest_image(clients: Clients, family: ImageFamily, arch: str = "x86_64") -> str:
    params = {
        "Owners": [family.owner],
        "Filters": [
            {"Name": "name", "Values": [family.pattern(arch)]},
            {"Name": "architecture", "Values": [arch]},
            {"Name": "state", "Values": ["available"]},
        ],
    }
    images = call(clients.ec2, "describe_images", params).get("Images", [])
    if not images:
        raise CloudError(
            f"no {arch} AMI found for {family.alias}: SSM parameter {family.parameter(arch)} is "
            f"missing and no image of owner {family.owner} matches {family.pattern(arch)!r}",
            code="ImageNotFound",
            operation="DescribeImages",
        )
    newest = max(images, key=lambda i: str(i.get("CreationDate", "")))
    return str(newest["ImageId"])


def root_device_name(clients: Clients, ami: str, *, arch: str | None = None) -> str:
    """The AMI's root device (``/dev/xvda`` on Debian and AL2023, ``/dev/sda1`` on Ubuntu).

    With ``arch`` (the instance type's), an AMI built for another architecture is refused:
    RunInstances would fail only after the key pair and security group were made."""
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
    built_for = str(images[0].get("Architecture") or "")
    if arch and built_for and built_for != arch:
        raise ConfigError(
            f"AMI {ami} is built for {built_for}, but the instance type runs {arch}: choose an "
            f"{arch} image, or an instance type of {built_for}",
            field="image",
        )
    return str(images[0].get("RootDeviceName") or "/dev/xvda")
