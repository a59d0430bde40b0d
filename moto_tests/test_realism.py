"""``provision.aws`` against moto made to behave as real EC2 (``provision.sandbox.realism``):
one test per row of ``BEHAVIOURS``, each named ``test_realism_<row>`` (``pytest moto_tests -k
realism``). Each checks both that the behaviour happened (the layer counts what it did) and
what ``provision`` made of it. The clock is fake: minutes of EC2 pass in milliseconds, and
``realism.clock.now`` says how long a run waited on it."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from moto_tests.conftest import REGION, BannerServer, make_spec, new_session, operator
from provision.aws import down, find_ended, find_hosts, instances, up
from provision.aws.calls import make_clients
from provision.aws.results import DEFAULT_TIMEOUTS
from provision.errors import CloudError, ConfigError
from provision.sandbox import realism as layer_module

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHtLqRr0n8b8hq3bM2kEk1fPjw1Gm8n8oZ0lcdM6Xy4a"
CONSOLE = (
    "[    0.000000] Linux version 6.1.0-18-cloud-amd64\r\n"
    "ec2: -----BEGIN SSH HOST KEY KEYS-----\r\n"
    f"ec2: {KEY} root@ip-10-0-0-1\r\n"
    "ec2: -----END SSH HOST KEY KEYS-----\r\n"
)


TAGS = {"provision:cluster": "alpha"}


@pytest.fixture
def server():
    banner = BannerServer()
    yield banner
    banner.close()


def real_up(state_dir, server: BannerServer, **spec: Any):
    """A whole ``up`` with the real timeouts (on the fake clock), its SSH at ``server``."""
    return up(
        make_spec(**spec),
        state_dir=state_dir,
        session=new_session(),
        my_address=operator,
        timeouts=DEFAULT_TIMEOUTS,
        endpoint_for=lambda instance: ("127.0.0.1", server.port),
        host_key_scanner=lambda address, port: KEY,
    )


def keys_on_console(realism) -> None:
    realism.layer.scenario.console = lambda instance_id: CONSOLE


def test_the_table_has_a_test_per_row():
    names = {n for n in globals() if n.startswith("test_realism_")}
    assert {f"test_realism_{b.key}" for b in layer_module.BEHAVIOURS} == names


def test_realism_pending(realism, state_dir, server):
    keys_on_console(realism)
    result = real_up(state_dir, server)
    assert realism.layer.seen["pending"] > 0  # described as pending at least once
    assert realism.clock.now >= layer_module.REAL.pending  # and waited until running
    (host,) = result.instances
    assert host.host_key == KEY


def test_realism_status_checks(realism, state_dir, server):
    keys_on_console(realism)
    real_up(state_dir, server)
    # SSH answers long before the status checks pass: up does not wait for them, and does
    # not even ask (no DescribeInstanceStatus).
    timings = layer_module.REAL
    assert realism.clock.now < timings.pending + timings.status_checks, realism.clock.now
    assert realism.layer.seen["status_checks"] == 0


def test_the_status_check_wait_is_there_when_asked_for(realism, state_dir, server):
    """``wait_status_checks: true`` (the path before readiness meant SSH, kept for whoever
    needs it): DescribeInstanceStatus until both checks pass, minutes of EC2's clock."""
    keys_on_console(realism)
    real_up(state_dir, server, cluster="waits", wait_status_checks=True)
    timings = layer_module.REAL
    assert realism.clock.now >= timings.pending + timings.status_checks, realism.clock.now
    assert realism.layer.seen["status_checks"] > 0


def test_realism_consistency(realism, state_dir, server):
    keys_on_console(realism)
    result = real_up(state_dir, server)
    # RunInstances right after ImportKeyPair / CreateSecurityGroup answered NotFound, and
    # DescribeInstances right after RunInstances: both were asked again.
    assert realism.layer.seen["consistency"] >= 2
    assert len(result.instances) == 1


def test_realism_console(realism, state_dir, server):
    keys_on_console(realism)
    result = real_up(state_dir, server)
    (host,) = result.instances
    # Without Latest=True the console stays empty for minutes; with it the key is read at once.
    saved = json.loads((state_dir / "alpha" / "state.json").read_text())
    assert saved["instances"][0]["host_key_source"] == "console"
    assert realism.clock.now < layer_module.REAL.console_buffer
    ec2 = new_session().client("ec2", REGION)
    buffered = ec2.get_console_output(InstanceId=host.instance_id)
    assert "Output" not in buffered  # the layer's buffering is there: a plain call sees nothing


def test_realism_throttling(realism, state_dir, server):
    keys_on_console(realism)
    realism.layer.timings = dataclasses.replace(layer_module.REAL, burst=3)
    result = real_up(state_dir, server)
    assert realism.layer.seen["throttling"] > 0
    assert len(result.instances) == 1


def test_realism_unsupported_zone(realism, state_dir, server, calls):
    keys_on_console(realism)
    kind = make_spec().instance_type
    realism.layer.scenario.unsupported = {kind: (f"{REGION}a",)}
    result = real_up(state_dir, server)
    (host,) = result.instances
    ec2 = new_session().client("ec2", REGION)
    (reservation,) = ec2.describe_instances(InstanceIds=[host.instance_id])["Reservations"]
    subnet_id = reservation["Instances"][0]["SubnetId"]
    (subnet,) = ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"]
    assert subnet["AvailabilityZone"] != f"{REGION}a"  # launched where the type is offered
    # A chosen subnet in that zone is refused before anything is made.
    subnets = ec2.describe_subnets(
        Filters=[{"Name": "availability-zone", "Values": [f"{REGION}a"]}]
    )["Subnets"]
    with pytest.raises(ConfigError, match=f"does not offer {kind}") as refused:
        real_up(state_dir, server, cluster="beta", subnet=subnets[0]["SubnetId"])
    assert refused.value.field == "subnet"
    assert realism.layer.seen["unsupported_zone"] == 0  # never sent to RunInstances


def test_realism_no_default_vpc(realism, state_dir, server, calls):
    realism.layer.scenario.no_default_vpc = True
    session = new_session()
    session.events.register("before-parameter-build", calls.hook)
    with pytest.raises(CloudError, match="set `subnet`"):
        up(make_spec(), state_dir=state_dir, session=session, my_address=operator,
           timeouts=DEFAULT_TIMEOUTS, wait_ssh=False)  # fmt: skip
    assert calls.creates() == []  # found out before anything was made


def test_realism_public_ip(realism, state_dir, server):
    keys_on_console(realism)
    ec2 = new_session().client("ec2", REGION)
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    assert not ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["MapPublicIpOnLaunch"]
    result = real_up(state_dir, server, subnet=subnet)
    (host,) = result.instances
    assert host.public_ip
    assert realism.layer.seen["public_ip"] == 1


def test_realism_dies_at_launch(realism, state_dir, server):
    code, message = "Client.InvalidKMSKey.InvalidState", "The KMS key provided is disabled"
    realism.layer.scenario.dies_at_launch = (code, message)
    with pytest.raises(CloudError, match="InvalidKMSKey") as died:
        real_up(state_dir, server)
    assert died.value.code == "InstanceDiedAtLaunch" and message in str(died.value)
    assert realism.clock.now < 60  # at once, not at the end of the 300 s wait


def test_realism_client_token(realism, state_dir):
    request = instances.LaunchRequest(
        cluster="alpha", run_id="r1", ami_id="ami-0debian12aaaaaaaa", root_device="/dev/xvda",
        instance_type="t3.small", root_volume_gb=8, count=1, key_name="k",
        security_group_id="", subnet_id=None, user="admin",
    )  # fmt: skip
    ec2 = new_session().client("ec2", REGION)
    ec2.import_key_pair(KeyName="k", PublicKeyMaterial=KEY.encode())
    group = ec2.create_security_group(GroupName="g", Description="g")["GroupId"]
    request = dataclasses.replace(request, security_group_id=group)
    clients = make_clients(REGION, session=new_session())
    first = instances.launch(clients, request, TAGS, interval=1.0)
    again = instances.launch(clients, request, TAGS, interval=1.0)
    assert again == first  # the same token: the first reservation, not a second one
    with pytest.raises(CloudError, match="ClientToken") as mismatch:
        instances.launch(clients, dataclasses.replace(request, count=2), TAGS, interval=1.0)
    assert "IdempotentParameterMismatch" in (mismatch.value.code or "")
    assert realism.layer.seen["client_token"] == 2


def test_realism_shutdown(realism, state_dir, server):
    """The ttl schedule powers the OS off: EC2 terminates the instance (it was launched with
    InstanceInitiatedShutdownBehavior=terminate) and says why; status finds it ended."""
    keys_on_console(realism)
    (host,) = real_up(state_dir, server).instances
    realism.layer.scenario.powered_off = lambda: {host.instance_id}
    realism.clock.sleep(layer_module.POWER_POLL)
    assert find_hosts("alpha", region=REGION, session=new_session()) == []
    (ended,) = find_ended("alpha", region=REGION, session=new_session())
    assert ended["instance_id"] == host.instance_id and ended["state"] == "terminated"
    assert ended["state_reason"] == "Client.InstanceInitiatedShutdown: Instance initiated shutdown"
    assert ended["expires_at"].endswith("Z")  # its provision:expires-at tag
    assert realism.layer.seen["shutdown"] == 1


def test_realism_teardown(realism, state_dir, server):
    keys_on_console(realism)
    real_up(state_dir, server)
    down("alpha", region=REGION, state_dir=state_dir, session=new_session(),
         timeouts=DEFAULT_TIMEOUTS)  # fmt: skip
    assert realism.layer.seen["teardown"] > 0  # the group's delete was refused a while
    ec2 = new_session().client("ec2", REGION)
    names = [g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]]
    assert not [n for n in names if "alpha" in n], names
