"""A Swarm cluster against moto: N instances in one RunInstances, the Swarm ports open only from
the cluster's own security group, a re-run launches nothing, a lost host is replaced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest

from moto_tests.conftest import FAST, OPERATOR_IP, CallLog, make_spec, operator
from moto_tests.test_policy import check_call
from provision.aws import ClusterResult, ClusterSpec, down, up

pytestmark = pytest.mark.usefixtures("aws")
ROOT = Path(__file__).resolve().parents[1]

SWARM_RULES = {
    ("tcp", 2377, 2377),
    ("tcp", 7946, 7946),
    ("udp", 7946, 7946),
    ("udp", 4789, 4789),
}


def stand_up(session: boto3.Session, state_dir: Path, **extra: Any) -> ClusterResult:
    spec = make_spec("swarm", instance_count=3, swarm=True, http_cidr="203.0.113.0/24", **extra)
    return up(
        spec,
        state_dir=state_dir,
        session=session,
        wait_ssh=False,
        my_address=operator,
        timeouts=FAST,
    )


def rules(ec2: Any, group_id: str) -> tuple[set[tuple[str, int, int, str]], list[str]]:
    """(rules from groups as (proto, from, to, group id), every CIDR of any rule)."""
    (group,) = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    from_groups, cidrs = set(), []
    for p in group["IpPermissions"]:
        key = (p["IpProtocol"], p.get("FromPort", -1), p.get("ToPort", -1))
        from_groups |= {(*key, g["GroupId"]) for g in p.get("UserIdGroupPairs", [])}
        cidrs += [r["CidrIp"] for r in p.get("IpRanges", [])]
    return from_groups, cidrs


def test_three_instances_from_one_run_instances_and_self_referencing_swarm_rules(
    session, state_dir, ec2, calls: CallLog
):
    result = stand_up(session, state_dir)
    assert calls.count("RunInstances") == 1
    (launch,) = [c for c in calls.calls if c.operation == "RunInstances"]
    assert (launch.params["MinCount"], launch.params["MaxCount"]) == (3, 3)
    assert [h.name for h in result.instances] == ["swarm-1", "swarm-2", "swarm-3"]
    group = result.security_group_id
    from_groups, cidrs = rules(ec2, group)
    assert from_groups == {(*r, group) for r in SWARM_RULES}
    assert sorted(cidrs) == [f"{OPERATOR_IP}/32", "203.0.113.0/24"]  # 22 and 80, no /0
    refused = [why for c in calls.calls if (why := check_call(c.service, c.operation, c.params))]
    assert refused == []


def test_a_second_up_makes_no_run_instances_call(session, state_dir, calls: CallLog):
    first = stand_up(session, state_dir)
    before = len(calls.calls)
    second = stand_up(session, state_dir)
    later = {c.operation for c in calls.calls[before:]}
    assert "RunInstances" not in later and "AuthorizeSecurityGroupIngress" not in later
    assert second.created == ()
    assert [h.instance_id for h in second.instances] == [h.instance_id for h in first.instances]


def test_an_encrypted_overlay_adds_esp_from_the_group_only(session, state_dir, ec2):
    result = stand_up(session, state_dir, swarm_encrypted=True)
    from_groups, cidrs = rules(ec2, result.security_group_id)
    assert ("50", -1, -1, result.security_group_id) in from_groups
    assert "0.0.0.0/0" not in cidrs


def test_single_topology_opens_no_swarm_port(session, state_dir, ec2):
    result = up(
        make_spec("single"),
        state_dir=state_dir,
        session=session,
        wait_ssh=False,
        my_address=operator,
        timeouts=FAST,
    )
    from_groups, _ = rules(ec2, result.security_group_id)
    assert from_groups == set()


def test_a_host_gone_for_good_is_replaced_by_one_new_instance(session, state_dir, ec2, calls):
    first = stand_up(session, state_dir)
    lost = first.instances[1]
    ec2.terminate_instances(InstanceIds=[lost.instance_id])
    before = len(calls.calls)
    second = stand_up(session, state_dir)
    launches = [c for c in calls.calls[before:] if c.operation == "RunInstances"]
    assert [(c.params["MinCount"], c.params["MaxCount"]) for c in launches] == [(1, 1)]
    kept = {h.instance_id for h in first.instances} - {lost.instance_id}
    now = {h.instance_id for h in second.instances}
    assert kept < now and lost.instance_id not in now and len(now) == 3
    names = [h.name for h in second.instances]
    assert len(set(names)) == 3 and "swarm-1" in names and "swarm-3" in names


def test_down_removes_the_self_referencing_group(session, state_dir, ec2):
    result = stand_up(session, state_dir, swarm_encrypted=True)
    down("swarm", region=result.region, state_dir=state_dir, session=session, timeouts=FAST)
    groups = ec2.describe_security_groups(
        Filters=[{"Name": "group-id", "Values": [result.security_group_id]}]
    )["SecurityGroups"]
    assert groups == []
    live = [
        i
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] != "terminated"
    ]
    assert live == []


def playbook_cloud_spec(state_dir: Path, *extra: str) -> ClusterSpec:
    """The instance spec that the cloud task of playbooks/up.yml asks for on the AWS inventory
    with these ``-e`` values: the task's own arguments, rendered with the play's variables
    (``layout`` from ``topology`` and ``instance_count``), then read as the task reads them."""
    from provision.api import PLAYBOOKS, load
    from provision.cluster.layout import layout_from_vars
    from provision.load.inventory import parse_extra_vars, resolve_vars
    from provision.load.templating import render
    from provision.run.options import Options
    from provision.tasks.base import build_args
    from provision.tasks.ec2 import CLUSTER_SPEC

    options = Options(extra_vars=parse_extra_vars(list(extra)), state_dir=state_dir)
    book, inv = load(PLAYBOOKS / "up.yml", ROOT / "inventory" / "aws.yml", options)
    play = book.plays[0]
    (task,) = [t for t in play.tasks if t.module == "ec2_cluster"]
    variables = {**resolve_vars(inv, "localhost", play.vars, options.extra_vars),
                 **options.runtime_vars()}  # fmt: skip
    variables["layout"] = layout_from_vars(variables).as_vars()
    args = build_args(CLUSTER_SPEC, {k: render(v, variables) for k, v in task.args.items()})
    return ClusterSpec.from_vars(
        {"cluster": args.cluster, "region": args.region, **args.spec_vars()}
    )


def test_topology_swarm_on_the_aws_inventory_opens_the_swarm_ports_from_the_group_only(
    session, state_dir, ec2, calls: CallLog
):
    """`provision up -i inventory/aws.yml -e topology=swarm -e instance_count=3`, its cloud
    part: one RunInstances for three, the Swarm ports from the group itself (the inventory
    opens 80 to 0.0.0.0/0: no Swarm port is in a CIDR rule), a second up launches nothing."""
    spec = playbook_cloud_spec(state_dir, "topology=swarm", "instance_count=3")
    assert (spec.count, spec.swarm, spec.swarm_encrypted) == (3, True, False)
    first = up(spec, state_dir=state_dir, session=session, wait_ssh=False, my_address=operator,
               timeouts=FAST)  # fmt: skip
    (launch,) = [c for c in calls.calls if c.operation == "RunInstances"]
    assert (launch.params["MinCount"], launch.params["MaxCount"]) == (3, 3)
    assert len(first.instances) == 3
    group = first.security_group_id
    (described,) = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"]
    by_cidr = {(p["IpProtocol"], p.get("FromPort"), r["CidrIp"])
               for p in described["IpPermissions"] for r in p.get("IpRanges", [])}  # fmt: skip
    assert by_cidr == {("tcp", 22, f"{OPERATOR_IP}/32"), ("tcp", 80, "0.0.0.0/0")}
    assert rules(ec2, group)[0] == {(*r, group) for r in SWARM_RULES}
    before = len(calls.calls)
    second = up(spec, state_dir=state_dir, session=session, wait_ssh=False, my_address=operator,
                timeouts=FAST)  # fmt: skip
    assert "RunInstances" not in {c.operation for c in calls.calls[before:]}
    assert [h.instance_id for h in second.instances] == [h.instance_id for h in first.instances]
    encrypted = playbook_cloud_spec(state_dir, "topology=swarm", "overlay_encrypted=true")
    assert encrypted.swarm_encrypted and playbook_cloud_spec(state_dir).swarm is False
