"""A bad spec is a clear ``ConfigError`` naming the variable, before any create call."""

from __future__ import annotations

from typing import Any

import pytest

from moto_tests.conftest import FAST, REGION, CallLog, make_spec, operator
from provision.aws import ClusterSpec, up
from provision.errors import ConfigError

GOOD = {"cluster": "alpha", "region": REGION}


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"region": "eu-north-9"}, "region", "unknown EC2 region"),
        ({"region": None}, "region", "required"),
        ({"instance_type": "t3.gigantic"}, "instance_type", "unknown instance type"),
        ({"instance_type": "micro"}, "instance_type", "unknown instance type"),
        ({"image": "debian-11"}, "image", "unknown image"),
        ({"image": "ami-xyz"}, "image", "unknown image"),
        ({"image": "ami-0123456789abcdef0"}, "ssh_user", "ssh_user is required"),
        ({"subnet": "sub-1"}, "subnet", "bad subnet id"),
        ({"http_cidr": "10.0.0.1/33"}, "http_cidr", "bad IPv4 CIDR"),
        ({"http_cidr": "10.0.0.1/8"}, "http_cidr", "bad IPv4 CIDR"),  # host bits set
        ({"ssh_cidrs": ["not-an-address"]}, "ssh_cidrs", "bad IPv4 CIDR"),
        ({"ssh_cidrs": ["0.0.0.0/0"]}, "ssh_cidrs", "whole internet"),
        ({"ssh_cidrs": []}, "ssh_cidrs", "non-empty"),
        ({"cluster": "Alpha"}, "cluster", "a-z, 0-9"),
        ({"cluster": "a;b"}, "cluster", "a-z, 0-9"),
        ({"cluster": "x" * 41}, "cluster", "1-40"),
        ({"cluster": "-a"}, "cluster", "a-z"),
        ({"root_volume_size": 4}, "root_volume_size", "from 8 to"),
        ({"root_volume_size": "ten"}, "root_volume_size", "integer"),
        ({"root_volume_size": "10.5"}, "root_volume_size", "integer"),
        ({"docker_at_boot": "maybe"}, "docker_at_boot", "true or false"),
        ({"ttl": "forever"}, "ttl", "bad time to live"),
        ({"ttl": 0}, "ttl", "bad time to live"),
        ({"instance_count": 0}, "instance_count", "from 1 to"),
    ],
)
def test_bad_values_name_the_variable(changes: dict[str, Any], field: str, words: str):
    with pytest.raises(ConfigError) as caught:
        ClusterSpec.from_vars({**GOOD, **changes}, source="inventory/aws.yml")
    assert caught.value.field == field
    assert words in caught.value.message
    assert str(caught.value).startswith(f"inventory/aws.yml: {field}: ")


def test_good_values_and_defaults():
    spec = ClusterSpec.from_vars(
        {
            **GOOD,
            "ttl": "90m",
            "ssh_cidrs": "192.0.2.1",
            "instance_type": "m7i-flex.large",
            "image": "ubuntu-24.04",
            "subnet": "subnet-0123abcd",
        }
    )
    assert spec.ttl_seconds == 5400
    assert spec.ssh_cidrs == ("192.0.2.1/32",)
    assert spec.login_user == "ubuntu"
    plain = ClusterSpec.from_vars(GOOD)
    assert (plain.instance_type, plain.image, plain.login_user, plain.http_cidr) == (
        "t3.micro",
        "debian-12",
        "admin",
        "0.0.0.0/0",
    )
    custom = ClusterSpec.from_vars({**GOOD, "image": "ami-0123456789abcdef0", "ssh_user": "rocky"})
    assert custom.login_user == "rocky"


@pytest.mark.usefixtures("aws")
def test_an_instance_type_aws_does_not_offer_fails_before_any_create(
    session, state_dir, calls: CallLog
):
    spec = make_spec(instance_type="t3.metal-48xl")  # passes the pattern, unknown to AWS
    with pytest.raises(ConfigError) as caught:
        up(
            spec,
            state_dir=state_dir,
            session=session,
            wait_ssh=False,
            my_address=operator,
            timeouts=FAST,
        )
    assert caught.value.field == "instance_type"
    assert calls.creates() == []


@pytest.mark.usefixtures("aws")
def test_an_unknown_ami_fails_before_any_create(session, state_dir, calls: CallLog):
    spec = make_spec(image="ami-0123456789abcdef0", ssh_user="admin")
    with pytest.raises(ConfigError, match="does not exist") as caught:
        up(
            spec,
            state_dir=state_dir,
            session=session,
            wait_ssh=False,
            my_address=operator,
            timeouts=FAST,
        )
    assert caught.value.field == "image"
    assert calls.creates() == []


@pytest.mark.usefixtures("aws")
def test_missing_credentials_fail_before_any_call(monkeypatch, state_dir):
    import boto3

    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    log = CallLog()
    session = boto3.Session(region_name=REGION)
    session.events.register("before-parameter-build", log.hook)
    with pytest.raises(ConfigError) as caught:
        up(
            make_spec(),
            state_dir=state_dir,
            session=session,
            wait_ssh=False,
            my_address=operator,
            timeouts=FAST,
        )
    assert caught.value.field == "credentials"
    assert "AWS_PROFILE" in str(caught.value)
    assert log.calls == []
    assert not state_dir.exists()


@pytest.mark.usefixtures("aws")
def test_no_caller_address_fails_before_any_create(session, state_dir, calls: CallLog):
    def offline() -> str:
        raise OSError("network is unreachable")

    with pytest.raises(Exception, match="ssh_cidrs"):
        up(
            make_spec(),
            state_dir=state_dir,
            session=session,
            wait_ssh=False,
            my_address=offline,
            timeouts=FAST,
        )
    assert calls.creates() == []


def test_typed_values_given_as_text_as_ansible_extra_vars_give_them():
    """``-e root_volume_size=20 -e docker_at_boot=no`` gives text (Ansible's ``parse_kv``);
    the spec reads it as Ansible's typed module arguments do."""
    given = {"root_volume_size": "20", "instance_count": "2", "docker_at_boot": "no",
             "wait_status_checks": "True"}  # fmt: skip
    spec = ClusterSpec.from_vars({**GOOD, **given})
    assert (spec.root_volume_gb, spec.count) == (20, 2)
    assert (spec.docker_at_boot, spec.wait_status_checks) == (False, True)
