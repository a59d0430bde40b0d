"""``down`` and ``sweep`` against moto: everything of the cluster goes, nothing else does."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import boto3
import pytest

from moto_tests.conftest import (
    DEBIAN_AMI,
    FAST,
    REGION,
    CallLog,
    make_spec,
    new_session,
    operator,
)
from provision.aws import ClusterResult, down, sweep, up
from provision.aws.calls import make_clients
from provision.aws.tags import CLUSTER
from provision.aws.teardown import delete_tagged
from provision.errors import CloudError, ConfigError

pytestmark = pytest.mark.usefixtures("aws")

START = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)


def stand_up(
    session: boto3.Session, state_dir: Path, cluster: str, ttl: str = "1h", now: dt.datetime = START
) -> ClusterResult:
    return up(
        make_spec(cluster, ttl=ttl),
        state_dir=state_dir,
        session=session,
        wait_ssh=False,
        my_address=operator,
        timeouts=FAST,
        now=now,
    )


def live_instances(ec2: Any, cluster: str | None = None) -> set[str]:
    filters = [{"Name": "instance-state-name", "Values": ["pending", "running", "stopped"]}]
    if cluster:
        filters.append({"Name": f"tag:{CLUSTER}", "Values": [cluster]})
    reservations = ec2.describe_instances(Filters=filters)["Reservations"]
    return {i["InstanceId"] for r in reservations for i in r["Instances"]}


def cluster_leftovers(ec2: Any, cluster: str) -> list[str]:
    """Everything of ``cluster`` the API still shows (terminated instances do not count)."""
    tag = [{"Name": f"tag:{CLUSTER}", "Values": [cluster]}]
    groups = ec2.describe_security_groups(Filters=tag)["SecurityGroups"]
    keys = ec2.describe_key_pairs(Filters=tag)["KeyPairs"]
    return [
        *live_instances(ec2, cluster),
        *(g["GroupId"] for g in groups),
        *(k["KeyName"] for k in keys),
    ]


@pytest.fixture
def bystanders(ec2: Any) -> dict[str, str]:
    """An untagged instance, group and key pair that no teardown may touch."""
    instance = ec2.run_instances(ImageId=DEBIAN_AMI, MinCount=1, MaxCount=1)["Instances"][0]
    group = ec2.create_security_group(GroupName="someone-elses", Description="not ours")
    ec2.create_key_pair(KeyName="someone-elses")
    return {"instance": instance["InstanceId"], "group": group["GroupId"]}


def assert_bystanders_alive(ec2: Any, bystanders: dict[str, str]) -> None:
    assert bystanders["instance"] in live_instances(ec2)
    assert ec2.describe_security_groups(GroupIds=[bystanders["group"]])["SecurityGroups"]
    assert ec2.describe_key_pairs(KeyNames=["someone-elses"])["KeyPairs"]


def test_down_removes_everything_of_the_cluster_and_nothing_else(
    session, state_dir, ec2, bystanders
):
    alpha = stand_up(session, state_dir, "alpha")
    stand_up(session, state_dir, "beta")
    result = down("alpha", region=REGION, state_dir=state_dir, session=session, timeouts=FAST)
    assert set(result.removed) >= {alpha.instances[0].instance_id, alpha.security_group_id}
    assert cluster_leftovers(ec2, "alpha") == []
    (instance,) = [
        i
        for r in ec2.describe_instances(InstanceIds=[alpha.instances[0].instance_id])[
            "Reservations"
        ]
        for i in r["Instances"]
    ]
    assert instance["State"]["Name"] == "terminated"
    assert len(cluster_leftovers(ec2, "beta")) == 3
    assert_bystanders_alive(ec2, bystanders)
    assert not (state_dir / "alpha").exists()


def test_down_again_is_ok_with_nothing_to_do(session, state_dir, calls: CallLog):
    stand_up(session, state_dir, "alpha")
    down("alpha", region=REGION, session=session, timeouts=FAST)
    before = len(calls.calls)
    again = down("alpha", region=REGION, session=session, timeouts=FAST)
    assert again.removed == () and not again.changed
    deletes = [
        c.operation for c in calls.calls[before:] if c.operation.startswith(("Terminate", "Delete"))
    ]
    assert deletes == []


def test_down_needs_no_local_state(session, state_dir, tmp_path, ec2):
    stand_up(session, state_dir, "alpha")
    result = down(
        "alpha", region=REGION, state_dir=tmp_path / "elsewhere", session=session, timeouts=FAST
    )
    assert len(result.removed) == 3
    assert cluster_leftovers(ec2, "alpha") == []


def test_sweep_removes_only_expired_clusters(session, state_dir, ec2, bystanders):
    stand_up(session, state_dir, "old", ttl="1h")
    stand_up(session, state_dir, "fresh", ttl="2d")
    results = sweep(REGION, now=START + dt.timedelta(hours=2), session=session, timeouts=FAST)
    assert [r.cluster for r in results] == ["old"]
    assert cluster_leftovers(ec2, "old") == []
    assert len(cluster_leftovers(ec2, "fresh")) == 3
    assert_bystanders_alive(ec2, bystanders)
    assert sweep(REGION, now=START + dt.timedelta(hours=2), session=session) == []


def test_an_empty_or_unscoped_filter_is_refused_before_any_call(session, calls):
    clients = make_clients(REGION, session=session)
    for filters in (
        [],
        [{"Name": "tag-key", "Values": [CLUSTER]}],
        [{"Name": f"tag:{CLUSTER}", "Values": ["other"]}],
    ):
        with pytest.raises(CloudError) as caught:
            delete_tagged(clients, "security-group", filters, "alpha")
        assert caught.value.code == "UnsafeFilter"
    assert calls.calls == []


def test_a_resource_without_the_cluster_tag_is_never_deleted(session, ec2, calls):
    ec2.create_security_group(GroupName="untagged", Description="not ours")
    clients = make_clients(REGION, session=session)
    scoped = [{"Name": f"tag:{CLUSTER}", "Values": ["alpha"]}]
    # A describe that (wrongly) answers with an untagged group must not lead to a delete.
    clients.ec2.meta.events.register(
        "before-parameter-build.ec2.DescribeSecurityGroups",
        lambda params, **_: params.pop("Filters", None),
    )
    with pytest.raises(CloudError, match="not tagged"):
        delete_tagged(clients, "security-group", scoped, "alpha")
    assert calls.count("DeleteSecurityGroup") == 0


@pytest.mark.parametrize("cluster", ["", "*", "alpha beta", "a;rm -rf /"])
def test_down_refuses_a_cluster_name_that_is_not_one(cluster, session, calls):
    with pytest.raises(ConfigError):
        down(cluster, region=REGION, session=session)
    assert calls.calls == []


def test_enabled_regions_are_the_accounts():
    from provision.aws import enabled_regions

    regions = enabled_regions(REGION)
    assert {REGION, "ap-southeast-2", "us-east-1"} <= set(regions) and regions == sorted(regions)


def test_sweep_all_regions_removes_the_expired_clusters_of_every_region(ec2, tmp_path, monkeypatch):
    import provision.aws
    from provision.api import Options
    from provision.api import sweep as api_sweep
    from provision.aws.tags import EXPIRES_AT, tag_specifications

    def group(region: str, cluster: str, expires: str) -> str:
        client = new_session().client("ec2", region)
        tags = {CLUSTER: cluster, EXPIRES_AT: expires}
        return client.create_security_group(
            GroupName=f"provision-{cluster}", Description="x",
            TagSpecifications=tag_specifications(["security-group"], tags),
        )["GroupId"]  # fmt: skip

    # Three of moto's thirty-odd regions enabled (each region swept costs ~1 s of clients).
    three = [REGION, "ap-southeast-2", "us-east-1"]
    monkeypatch.setattr(provision.aws, "enabled_regions", lambda region, **_: three)
    past, future = "2020-01-01T00:00:00Z", "2999-01-01T00:00:00Z"
    here = group(REGION, "here", past)
    there = group("ap-southeast-2", "there", past)
    group("ap-southeast-2", "later", future)
    inventory = tmp_path / "aws.yml"
    inventory.write_text(f"all:\n  vars:\n    cloud: aws\n    region: {REGION}\n")
    options = Options(state_dir=tmp_path / "state")
    assert api_sweep(inventory, options) == {"here": [here]}  # the inventory's region only
    group(REGION, "here", past)
    swept = api_sweep(inventory, options, all_regions=True)
    assert set(swept) == {f"here@{REGION}", "there@ap-southeast-2"}
    assert swept["there@ap-southeast-2"] == [there]
    left = new_session().client("ec2", "ap-southeast-2").describe_security_groups(
        Filters=[{"Name": f"tag:{CLUSTER}", "Values": ["later"]}])["SecurityGroups"]  # fmt: skip
    assert len(left) == 1  # not expired: kept
