"""Injected AWS errors: throttling and eventual consistency are retried, the rest is explained."""

from __future__ import annotations

import time

import pytest

from moto_tests.conftest import (
    AL2023_AMI,
    AL2023_PARAMETER,
    FAST,
    REGION,
    CallLog,
    ec2_error,
    inject,
    make_spec,
    operator,
    quick_up,
    unpublish_public_parameter,
)
from provision.aws import down, up
from provision.aws.results import Timeouts
from provision.errors import CloudError

pytestmark = pytest.mark.usefixtures("aws")


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """botocore's standard-mode backoff, with its delays recorded instead of slept."""
    from botocore.retries import standard

    delays: list[float] = []
    original = standard.ExponentialBackoff.delay_amount

    def record(self: standard.ExponentialBackoff, context: object) -> float:
        delays.append(original(self, context))
        return 0.0

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", record)
    return delays


def test_throttling_is_retried_by_botocore_standard_mode(session, state_dir, no_backoff, ec2):
    seen = inject(
        session,
        "RunInstances",
        [
            ec2_error(503, "RequestLimitExceeded", "Request limit exceeded."),
            ec2_error(503, "RequestLimitExceeded", "Request limit exceeded."),
        ],
    )
    result = up(
        make_spec(),
        state_dir=state_dir,
        session=session,
        wait_ssh=False,
        my_address=operator,
        timeouts=FAST,
    )
    assert seen[0] == 3  # two throttled attempts, then moto's answer
    assert len(no_backoff) == 2
    assert len(result.instances) == 1
    assert len(ec2.describe_instances()["Reservations"]) == 1  # one launch, not three


def test_throttling_beyond_the_retry_budget_is_a_clear_error(session, state_dir, no_backoff):
    inject(session, "DescribeVpcs", [ec2_error(503, "RequestLimitExceeded")] * 20)
    with pytest.raises(CloudError) as caught:
        up(
            make_spec(),
            state_dir=state_dir,
            session=session,
            wait_ssh=False,
            my_address=operator,
            timeouts=FAST,
        )
    assert caught.value.code == "RequestLimitExceeded"
    assert caught.value.operation == "DescribeVpcs"
    assert "try again later" in str(caught.value)


def test_instance_not_found_right_after_launch_is_waited_out(session, state_dir, calls: CallLog):
    # The first describe after RunInstances does not see the new instance yet.
    seen = inject(
        session,
        "DescribeInstances",
        [
            None,  # the "is it already running?" lookup before the launch
            ec2_error(400, "InvalidInstanceID.NotFound", "The instance ID does not exist"),
            ec2_error(400, "InvalidInstanceID.NotFound", "The instance ID does not exist"),
        ],
    )
    result = up(
        make_spec(),
        state_dir=state_dir,
        session=session,
        wait_ssh=False,
        my_address=operator,
        timeouts=FAST,
    )
    assert result.instances and seen[0] >= 4


def test_a_group_not_yet_visible_is_waited_out(session, state_dir):
    inject(
        session,
        "AuthorizeSecurityGroupIngress",
        [ec2_error(400, "InvalidGroup.NotFound", "The security group does not exist")],
    )
    result = up(
        make_spec(),
        state_dir=state_dir,
        session=session,
        wait_ssh=False,
        my_address=operator,
        timeouts=FAST,
    )
    assert result.security_group_id


def test_eventual_consistency_that_never_settles_hits_the_deadline(session, state_dir):
    inject(
        session, "DescribeInstances", [None] + [ec2_error(400, "InvalidInstanceID.NotFound")] * 1000
    )
    short = Timeouts(running=0.2, ssh=1, console=0, terminated=1, delete=1, poll=0.01)
    with pytest.raises(CloudError) as caught:
        up(
            make_spec(),
            state_dir=state_dir,
            session=session,
            wait_ssh=False,
            my_address=operator,
            timeouts=short,
        )
    assert caught.value.code == "Timeout"
    assert "to be running" in str(caught.value)
    assert "InvalidInstanceID.NotFound" in str(caught.value)


def test_a_permanent_error_names_the_operation_and_aws_code(session, state_dir, calls):
    inject(
        session,
        "RunInstances",
        [
            ec2_error(
                403, "UnauthorizedOperation", "You are not authorized to perform this operation."
            )
        ],
    )
    with pytest.raises(CloudError) as caught:
        up(
            make_spec(),
            state_dir=state_dir,
            session=session,
            wait_ssh=False,
            my_address=operator,
            timeouts=FAST,
        )
    error = caught.value
    assert (error.code, error.operation) == ("UnauthorizedOperation", "RunInstances")
    assert "not authorized" in str(error) and "iam-policy.json" in str(error)
    assert str(error).startswith("RunInstances: ")
    assert calls.count("RunInstances") == 1  # not retried


def test_a_dependency_violation_on_delete_is_retried(session, state_dir):
    up(
        make_spec(),
        state_dir=state_dir,
        session=session,
        wait_ssh=False,
        my_address=operator,
        timeouts=FAST,
    )
    seen = inject(
        session,
        "DeleteSecurityGroup",
        [ec2_error(400, "DependencyViolation", "resource sg-1 has a dependent object")],
    )
    result = down("alpha", region=REGION, session=session, timeouts=FAST)
    assert seen[0] == 2 and len(result.removed) == 3


def test_missing_ssm_parameter_falls_back_to_describe_images(session, state_dir):
    unpublish_public_parameter(AL2023_PARAMETER)
    result = up(
        make_spec(image="al2023"),
        state_dir=state_dir,
        session=session,
        wait_ssh=False,
        my_address=operator,
        timeouts=FAST,
    )
    assert result.ami_id == AL2023_AMI
    assert result.instances[0].user == "ec2-user"


def test_describe_images_fallback_picks_the_newest(session, state_dir):
    from moto_tests.conftest import DEBIAN_AMI, DEBIAN_PARAMETER

    unpublish_public_parameter(DEBIAN_PARAMETER)
    result = up(
        make_spec(),
        state_dir=state_dir,
        session=session,
        wait_ssh=False,
        my_address=operator,
        timeouts=FAST,
    )
    assert result.ami_id == DEBIAN_AMI  # the 2025 image, not the 2024 one


def test_realism_run_instances_right_after_the_creates_waits_out_not_found(session, state_dir, ec2):
    """EC2's eventual consistency at launch: RunInstances right after CreateSecurityGroup and
    ImportKeyPair may answer that they do not exist yet. RunInstances is asked again (its
    ClientToken makes that safe) and one set of instances is launched (on the old code it was
    called once: the first NotFound failed the `up`, after the group and key pair existed)."""
    seen = inject(
        session,
        "RunInstances",
        [
            ec2_error(400, "InvalidGroup.NotFound", "The security group does not exist"),
            ec2_error(400, "InvalidKeyPair.NotFound", "The key pair does not exist"),
        ],
    )
    result = quick_up(session, state_dir)
    assert seen[0] == 3  # two "not yet" answers, then moto's launch
    assert len(result.instances) == 1
    running = [
        i
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] != "terminated"
    ]
    assert len(running) == 1


def test_realism_an_instance_that_dies_at_launch_fails_at_once_with_aws_reason(
    session, state_dir, ec2
):
    """An instance that goes from pending to terminated (a KMS key it may not use, no
    capacity) fails `up` at once with AWS's StateReason and says how to undo; on the old code
    the wait polled on to its deadline and dropped the reason."""

    def die(parsed, **_):
        ids = [i["InstanceId"] for i in parsed.get("Instances", [])]
        if ids:
            ec2.terminate_instances(InstanceIds=ids)

    session.events.register("after-call.ec2.RunInstances", die)
    slow = Timeouts(running=30, ssh=3, console=0, terminated=5, delete=5, poll=0.01)
    started = time.monotonic()
    with pytest.raises(CloudError) as caught:
        quick_up(session, state_dir, slow)
    assert time.monotonic() - started < 10  # at once, not at the 30 s deadline
    assert caught.value.code == "InstanceDiedAtLaunch"
    message = str(caught.value)
    assert "died at launch" in message and "is terminated (Client." in message, message
    assert "provision down" in message


def test_idempotent_parameter_mismatch_is_explained(session, state_dir):
    """RunInstances refusing the run's ClientToken because an earlier, unfinished launch used
    it with other parameters: the error says what this launch asks and how to start over (on
    the old code: AWS's bare message)."""
    inject(session, "RunInstances", [ec2_error(400, "IdempotentParameterMismatch",
                                               "Arguments on this idempotent request are "
                                               "inconsistent with arguments used in previous "
                                               "request(s).")])  # fmt: skip
    with pytest.raises(CloudError) as caught:
        quick_up(session, state_dir, instance_type="t3.small")
    message = str(caught.value)
    assert caught.value.code == "IdempotentParameterMismatch"
    assert "an earlier, unfinished `up` of cluster alpha launched with this run's ClientToken" in (
        message
    )
    assert "this one asks for 1 x t3.small from ami-" in message
    assert "`provision down` to remove it and then `up`" in message


def test_a_dead_local_endpoint_fails_after_a_few_quick_attempts_a_remote_one_keeps_eight():
    import time

    from provision.aws.calls import LOCAL_RETRIES, call, make_clients

    dead = make_clients(REGION, endpoint_url="http://127.0.0.1:1")  # nothing listens there
    assert dead.ec2.meta.config.retries["total_max_attempts"] == LOCAL_RETRIES + 1
    started = time.monotonic()
    with pytest.raises(CloudError, match="Could not connect"):
        call(dead.ec2, "describe_vpcs", {})
    assert time.monotonic() - started < 15  # eight retries with backoff take ~35 s
    remote = make_clients(REGION, endpoint_url="https://ec2.eu-west-1.amazonaws.com")
    assert remote.ec2.meta.config.retries["total_max_attempts"] == 9  # built, never called
