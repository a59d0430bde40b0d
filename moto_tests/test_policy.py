"""policy/iam-policy.json allows every EC2/SSM call the code makes, and the creates carry the tags
its conditions require.

Two views: every call recorded (botocore ``before-parameter-build`` hook) during a whole
lifecycle against moto, and every API method named in the package's source, so a path the
scenario does not take is still covered.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import re
from pathlib import Path
from typing import Any

import pytest

from moto_tests.conftest import (
    DEBIAN_PARAMETER,
    FAST,
    REGION,
    CallLog,
    make_spec,
    new_session,
    operator,
    unpublish_public_parameter,
)
from provision.aws import down, find_hosts, sweep, up

ROOT = Path(__file__).resolve().parent.parent
POLICY = json.loads((ROOT / "policy" / "iam-policy.json").read_text())
ALLOWS = [s for s in POLICY["Statement"] if s["Effect"] == "Allow"]
REQUEST_TAG = "aws:RequestTag/provision:cluster"


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def statements_for(action: str) -> list[dict[str, Any]]:
    return [s for s in ALLOWS if any(fnmatch.fnmatchcase(action, a) for a in as_list(s["Action"]))]


def needs_request_tag(statement: dict[str, Any]) -> bool:
    return REQUEST_TAG in statement.get("Condition", {}).get("Null", {})


def tagged_types(params: dict[str, Any]) -> set[str]:
    return {
        spec["ResourceType"]
        for spec in params.get("TagSpecifications", [])
        if any(t["Key"] == "provision:cluster" for t in spec["Tags"])
    }


def resource_type(arn: str) -> str:
    return arn.split(":")[5].split("/")[0]


def check_call(service: str, operation: str, params: dict[str, Any]) -> str | None:
    """Why the policy would refuse this call, or None when it allows it."""
    action = f"{service}:{operation}"
    statements = statements_for(action)
    if not statements:
        return f"{action}: no Allow statement"
    for statement in filter(needs_request_tag, statements):
        missing = {resource_type(r) for r in as_list(statement["Resource"])} - tagged_types(params)
        # A statement covers the resource types the call creates; those must carry the tag.
        created = {
            "RunInstances": {"instance", "volume"},
            "CreateSecurityGroup": {"security-group"},
            "ImportKeyPair": {"key-pair"},
        }.get(operation, set())
        if missing & created:
            return f"{action}: created {sorted(missing & created)} without {REQUEST_TAG}"
    return None


@pytest.mark.usefixtures("aws")
def test_every_call_of_a_whole_lifecycle_is_allowed(state_dir: Path):
    log = CallLog()
    session = new_session()
    session.events.register("before-parameter-build", log.hook)
    unpublish_public_parameter(DEBIAN_PARAMETER)  # take the describe_images path as well
    start = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    for cluster in ("alpha", "beta"):
        up(
            make_spec(cluster, ttl="1h"),
            state_dir=state_dir,
            session=session,
            wait_ssh=False,
            my_address=operator,
            timeouts=FAST,
            now=start,
        )
    up(
        make_spec("alpha", ttl="1h"),
        state_dir=state_dir,
        session=session,
        wait_ssh=False,
        my_address=lambda: "192.0.2.1",
        timeouts=FAST,
    )  # re-run: revokes the old address
    find_hosts("alpha", region=REGION, session=session)
    down("alpha", region=REGION, state_dir=state_dir, session=session, timeouts=FAST)
    sweep(REGION, now=start + dt.timedelta(days=1), session=session, timeouts=FAST)

    operations = {c.operation for c in log.calls}
    assert {
        "RunInstances",
        "TerminateInstances",
        "RevokeSecurityGroupIngress",
        "DescribeImages",
        "GetConsoleOutput",
        "DeleteKeyPair",
    } <= operations
    refused = [why for c in log.calls if (why := check_call(c.service, c.operation, c.params))]
    assert refused == []


def test_every_api_method_named_in_the_code_is_allowed():
    session = new_session()
    clients = {"ec2": session.client("ec2", REGION), "ssm": session.client("ssm", REGION)}
    source = "\n".join(p.read_text() for p in (ROOT / "provision" / "aws").glob("*.py"))
    named = set(
        re.findall(
            r'"((?:describe|get|run|create|import|delete|terminate|authorize|'
            r'revoke)_[a-z_]+)"',
            source,
        )
    )
    assert {"run_instances", "terminate_instances", "get_parameter"} <= named
    missing = []
    for method in sorted(named):
        owners = [s for s, c in clients.items() if method in c.meta.method_to_api_mapping]
        assert owners, f"{method} is not an EC2 or SSM method"
        for service in owners:
            if service == "ssm" and method != "get_parameter":
                continue  # names shared with EC2 (describe_*) are EC2 calls here
            action = f"{service}:{clients[service].meta.method_to_api_mapping[method]}"
            if not statements_for(action):
                missing.append(action)
    assert missing == []


def test_the_policy_never_allows_destruction_without_the_cluster_tag():
    destructive = {
        "ec2:TerminateInstances",
        "ec2:DeleteSecurityGroup",
        "ec2:DeleteKeyPair",
        "ec2:RevokeSecurityGroupIngress",
        "ec2:AuthorizeSecurityGroupIngress",
    }
    for action in destructive:
        for statement in statements_for(action):
            condition = statement.get("Condition", {}).get("Null", {})
            assert condition.get("aws:ResourceTag/provision:cluster") == "false", statement["Sid"]
    for statement in statements_for("ec2:CreateTags"):
        assert "ec2:CreateAction" in statement["Condition"]["StringEquals"]
    assert not statements_for("ec2:CreateKeyPair")
    assert not any(a == "*" or a == "ec2:*" for s in ALLOWS for a in as_list(s["Action"]))


#: What EC2 itself does with the account's EBS key when it encrypts a root volume with a
#: customer-managed key (the EBS encryption docs): never called by this code, only allowed
#: through EC2 (``kms:ViaService``).
KMS_THROUGH_EC2 = {"kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey",
                   "kms:GenerateDataKeyWithoutPlainText", "kms:ReEncrypt*"}  # fmt: skip


def test_the_policy_allows_nothing_the_code_does_not_call():
    session = new_session()
    clients = {"ec2": session.client("ec2", REGION), "ssm": session.client("ssm", REGION)}
    source = "\n".join(p.read_text() for p in (ROOT / "provision").rglob("*.py"))
    called = {
        f"{service}:{client.meta.method_to_api_mapping[method]}"
        for service, client in clients.items()
        for method in client.meta.method_to_api_mapping
        if f'"{method}"' in source
    }
    allowed = {a for s in ALLOWS for a in as_list(s["Action"])}
    assert allowed - called == KMS_THROUGH_EC2, sorted(allowed - called)
    for action in KMS_THROUGH_EC2:
        for statement in statements_for(action):
            assert statement["Condition"]["StringLike"]["kms:ViaService"] == "ec2.*.amazonaws.com"
