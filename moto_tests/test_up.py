"""``up`` against moto: what it creates, checked with describe calls; a re-run is a no-op."""

from __future__ import annotations

import datetime as dt
import json
import stat
from pathlib import Path

import boto3
import pytest

from moto_tests.conftest import (
    DEBIAN_AMI,
    DEBIAN_PARAMETER,
    FAST,
    OPERATOR_IP,
    REGION,
    UBUNTU_AMI,
    CallLog,
    make_spec,
    operator,
    publish_public_parameter,
)
from provision.aws import ClusterResult, find_hosts, up
from provision.aws.tags import CLUSTER, CREATED_BY, EXPIRES_AT, RUN_ID, USER, tag_dict

DEBIAN_NEWER_AMI = UBUNTU_AMI  # any other image id will do

pytestmark = pytest.mark.usefixtures("aws")

NOW = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)


def stand_up(
    session: boto3.Session, state_dir: Path, cluster: str = "alpha", **extra: object
) -> ClusterResult:
    return up(
        make_spec(cluster, ttl="2h", **extra),
        state_dir=state_dir,
        session=session,
        wait_ssh=False,
        my_address=operator,
        timeouts=FAST,
        now=NOW,
        run_id="run-1",
        created_by="tester@test",
    )


def test_up_creates_instance_with_imdsv2_and_encrypted_root(session, state_dir, ec2):
    result = stand_up(session, state_dir)
    (instance,) = [
        i
        for r in ec2.describe_instances(InstanceIds=[result.instances[0].instance_id])[
            "Reservations"
        ]
        for i in r["Instances"]
    ]
    assert instance["State"]["Name"] == "running"
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    assert instance["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    assert instance["KeyName"] == "provision-alpha" == result.key_name
    assert [g["GroupId"] for g in instance["SecurityGroups"]] == [result.security_group_id]
    assert instance["ImageId"] == result.ami_id
    (volume,) = ec2.describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [instance["InstanceId"]]}]
    )["Volumes"]
    assert volume["Encrypted"] is True
    assert volume["Size"] == 10
    assert tag_dict(volume["Tags"])[CLUSTER] == "alpha"


def test_every_resource_is_tagged_at_creation(session, state_dir, ec2, calls: CallLog):
    result = stand_up(session, state_dir)
    expected = {
        CLUSTER: "alpha",
        RUN_ID: "run-1",
        CREATED_BY: "tester@test",
        EXPIRES_AT: "2030-01-02T05:04:05Z",
    }
    instance = ec2.describe_instances()["Reservations"][0]["Instances"][0]
    group = ec2.describe_security_groups(GroupIds=[result.security_group_id])["SecurityGroups"][0]
    key = ec2.describe_key_pairs(KeyNames=[result.key_name])["KeyPairs"][0]
    for tags in (instance["Tags"], group["Tags"], key["Tags"]):
        assert expected.items() <= tag_dict(tags).items()
    assert tag_dict(instance["Tags"])[USER] == "admin"
    # Tagged by the create call itself, never by a CreateTags afterwards.
    assert calls.count("CreateTags") == 0
    run = next(c for c in calls.calls if c.operation == "RunInstances")
    assert {s["ResourceType"] for s in run.params["TagSpecifications"]} >= {"instance", "volume"}
    assert run.params["ClientToken"].startswith("provision-")


def test_security_group_allows_ssh_from_operator_and_http_only(session, state_dir, ec2):
    result = stand_up(session, state_dir, http_cidr="203.0.113.0/24")
    group = ec2.describe_security_groups(GroupIds=[result.security_group_id])["SecurityGroups"][0]
    rules = {
        (p["FromPort"], p["ToPort"], r["CidrIp"])
        for p in group["IpPermissions"]
        for r in p["IpRanges"]
    }
    assert rules == {(22, 22, f"{OPERATOR_IP}/32"), (80, 80, "203.0.113.0/24")}
    assert not any(p.get("FromPort") == 6379 for p in group["IpPermissions"])


def test_key_pair_is_imported_from_a_local_ed25519_key(session, state_dir, ec2, calls):
    result = stand_up(session, state_dir)
    private = state_dir / "alpha" / "id_ed25519"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert b"OPENSSH PRIVATE KEY" in private.read_bytes()
    key = ec2.describe_key_pairs(KeyNames=[result.key_name], IncludePublicKey=True)["KeyPairs"][0]
    assert key["KeyType"] == "ed25519"
    assert result.instances[0].key_file == private
    assert calls.count("ImportKeyPair") == 1 and calls.count("CreateKeyPair") == 0


def test_state_records_resources_and_ami(session, state_dir):
    result = stand_up(session, state_dir)
    saved = json.loads((state_dir / "alpha" / "state.json").read_text())
    assert saved["ami_id"] == result.ami_id
    assert saved["security_group_id"] == result.security_group_id
    assert [i["instance_id"] for i in saved["instances"]] == [result.instances[0].instance_id]
    assert saved["finished"] is True
    assert set(result.created) == {*saved["created"]}
    assert result.instances[0].user == "admin"


def test_second_up_creates_nothing_and_never_calls_run_instances(session, state_dir, ec2, calls):
    first = stand_up(session, state_dir)
    before = len(calls.calls)
    second = stand_up(session, state_dir)
    later = calls.calls[before:]
    assert second.created == ()
    assert not [
        c.operation
        for c in later
        if c.operation
        in {"RunInstances", "CreateSecurityGroup", "ImportKeyPair", "AuthorizeSecurityGroupIngress"}
    ]
    assert second.instances == first.instances
    assert second.ami_id == first.ami_id
    assert len(ec2.describe_instances()["Reservations"]) == 1


def test_second_up_without_local_state_finds_everything_by_tags(session, state_dir, calls):
    import shutil

    first = stand_up(session, state_dir)
    private_key = (state_dir / "alpha" / "id_ed25519").read_bytes()
    shutil.rmtree(state_dir)
    # The key file is the one thing tags cannot bring back: keep it, as a user would.
    (state_dir / "alpha").mkdir(parents=True)
    (state_dir / "alpha" / "id_ed25519").write_bytes(private_key)
    (state_dir / "alpha" / "id_ed25519").chmod(0o600)  # OpenSSH (and provision) refuse 0644
    second = stand_up(session, state_dir)
    assert second.created == ()
    assert calls.count("RunInstances") == 1
    assert second.instances[0].instance_id == first.instances[0].instance_id


def test_a_rerun_keeps_the_recorded_image(session, state_dir):
    first = stand_up(session, state_dir)
    assert first.ami_id == DEBIAN_AMI
    publish_public_parameter(DEBIAN_PARAMETER, DEBIAN_NEWER_AMI)  # AWS published a newer one
    assert stand_up(session, state_dir).ami_id == first.ami_id


def test_operator_address_changes_are_synced(session, state_dir, ec2):
    stand_up(session, state_dir)
    result = up(
        make_spec("alpha", ttl="2h"),
        state_dir=state_dir,
        session=session,
        wait_ssh=False,
        my_address=lambda: "192.0.2.9",
        timeouts=FAST,
    )
    group = ec2.describe_security_groups(GroupIds=[result.security_group_id])["SecurityGroups"][0]
    ssh = {
        r["CidrIp"] for p in group["IpPermissions"] if p["FromPort"] == 22 for r in p["IpRanges"]
    }
    assert ssh == {"192.0.2.9/32"}
    assert result.created == ()


def test_find_hosts_is_a_dynamic_inventory(session, state_dir):
    result = stand_up(session, state_dir, image="ubuntu-24.04", instance_count=2)
    stand_up(session, state_dir, cluster="beta")
    hosts = find_hosts("alpha", region=REGION, state_dir=state_dir, session=session)
    assert [h.name for h in hosts] == ["alpha-1", "alpha-2"]
    assert {h.instance_id for h in hosts} == {i.instance_id for i in result.instances}
    assert all(h.user == "ubuntu" and h.public_ip and h.address == h.public_ip for h in hosts)
    assert all(h.key_file == state_dir / "alpha" / "id_ed25519" for h in hosts)
    spec = hosts[0].to_host_spec()
    assert (spec.user, spec.port) == ("ubuntu", 22)
    # Without local state: same hosts, no key file.
    bare = find_hosts("alpha", region=REGION, session=session)
    assert [h.instance_id for h in bare] == [h.instance_id for h in hosts]
    assert all(h.key_file is None for h in bare)


def test_endpoint_for_maps_instances_to_local_hosts(session, state_dir):
    result = up(
        make_spec(),
        state_dir=state_dir,
        session=session,
        wait_ssh=False,
        my_address=operator,
        timeouts=FAST,
        endpoint_for=lambda inst: ("127.0.0.1", 2201),
    )
    (host,) = result.instances
    assert (host.address, host.port) == ("127.0.0.1", 2201)
    assert host.public_ip and host.public_ip != "127.0.0.1"


def test_events_report_progress(session, state_dir):
    seen: list[str] = []
    up(
        make_spec(),
        state_dir=state_dir,
        session=session,
        wait_ssh=False,
        my_address=operator,
        timeouts=FAST,
        on_event=lambda message, data: seen.append(message),
    )
    assert "waiting for instance running" in seen
    assert seen.index("launching instances") < seen.index("waiting for instance running")
