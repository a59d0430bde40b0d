"""The instance type's CPU architecture picks the image (#21, defect 3): t4g, m7g and c7g are
arm64, so an image alias resolves through its arm64 SSM parameter; a custom AMI built for the
other architecture is refused before anything is created (on the old code every alias took
its x86_64 parameter, and the mismatch failed RunInstances after the key pair and security
group existed)."""

from __future__ import annotations

import pytest

from moto_tests.conftest import (
    DEBIAN_AMI,
    add_public_image,
    publish_public_parameter,
    quick_up,
)
from provision.errors import ConfigError

pytestmark = pytest.mark.usefixtures("aws")

DEBIAN_ARM_AMI = "ami-0deb12a000000000c"


def test_realism_an_arm64_instance_type_picks_the_arm64_image(session, state_dir, calls):
    add_public_image(DEBIAN_ARM_AMI, "136693071363", "debian-12-arm64-20250101-2000",
                     "/dev/xvda", 2025, architecture="arm64")  # fmt: skip
    publish_public_parameter("/aws/service/debian/release/12/latest/arm64", DEBIAN_ARM_AMI)
    result = quick_up(session, state_dir, instance_type="t4g.small")
    assert result.ami_id == DEBIAN_ARM_AMI
    asked = [c.params["Name"] for c in calls.calls if c.operation == "GetParameter"]
    assert asked == ["/aws/service/debian/release/12/latest/arm64"]
    (launch,) = [c.params for c in calls.calls if c.operation == "RunInstances"]
    assert launch["ImageId"] == DEBIAN_ARM_AMI and launch["InstanceType"] == "t4g.small"


def test_an_x86_64_instance_type_keeps_the_x86_64_image(session, state_dir, calls):
    result = quick_up(session, state_dir, instance_type="t3.small")
    assert result.ami_id == DEBIAN_AMI


def test_a_custom_x86_64_ami_with_an_arm64_type_is_refused_before_any_create(
    session, state_dir, calls
):
    with pytest.raises(ConfigError) as caught:
        quick_up(session, state_dir, instance_type="t4g.small", image=DEBIAN_AMI, ssh_user="admin")
    assert caught.value.field == "image"
    assert f"AMI {DEBIAN_AMI} is built for x86_64, but the instance type runs arm64" in str(
        caught.value
    )
    assert calls.creates() == []


def test_realism_a_subnet_without_public_ips_still_gives_the_instance_one(
    session, state_dir, calls, ec2
):
    """A chosen subnet that does not map public IPs on launch (the default outside a default
    VPC): the instance asks for one on its interface, so it is reachable (on the old code it
    launched without one and `up` failed after launch with NoPublicIp)."""
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.1.0/24")["Subnet"]
    assert not subnet["MapPublicIpOnLaunch"]
    result = quick_up(session, state_dir, subnet=subnet["SubnetId"])
    (host,) = result.instances
    assert host.public_ip, host
    (launch,) = [c.params for c in calls.calls if c.operation == "RunInstances"]
    (interface,) = launch["NetworkInterfaces"]
    assert interface["SubnetId"] == subnet["SubnetId"] and interface["AssociatePublicIpAddress"]
    assert interface["Groups"] == [result.security_group_id]
