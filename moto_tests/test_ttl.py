"""``ttl``: the instances end themselves at the cluster's expiry, whether or not anyone runs
``provision sweep``: launched with ``InstanceInitiatedShutdownBehavior=terminate`` and a
user-data that schedules the power-off at every boot (a cloud-init per-boot script)."""

from __future__ import annotations

import base64
import datetime as dt
import os
import re
import subprocess
from pathlib import Path

import pytest

from moto_tests.conftest import quick_up
from provision.aws import userdata
from provision.aws.tags import EXPIRES_AT


def test_instances_terminate_on_shutdown_and_schedule_it_at_the_expiry(ec2, session, state_dir):
    result = quick_up(session, state_dir, ttl="2h")
    (host,) = result.instances
    behaviour = ec2.describe_instance_attribute(
        InstanceId=host.instance_id, Attribute="instanceInitiatedShutdownBehavior"
    )["InstanceInitiatedShutdownBehavior"]["Value"]
    assert behaviour == "terminate"
    raw = ec2.describe_instance_attribute(InstanceId=host.instance_id, Attribute="userData")
    script = base64.b64decode(raw["UserData"]["Value"]).decode()
    (reservation,) = ec2.describe_instances(InstanceIds=[host.instance_id])["Reservations"]
    tags = {t["Key"]: t["Value"] for t in reservation["Instances"][0]["Tags"]}
    expires = dt.datetime.strptime(tags[EXPIRES_AT], "%Y-%m-%dT%H:%M:%SZ")
    assert expires.strftime("%Y-%m-%d %H:%M:%S UTC") in script  # the tag's time, not another
    assert userdata.PER_BOOT in script and len(script.encode()) < userdata.MAX_BYTES


def _schedule(expires_at: str) -> str:
    script = userdata.ttl_script(expires_at)
    found = re.search(r"<<'PROVISION_TTL'\n(.*)PROVISION_TTL\n", script, re.S)
    assert found, script
    return found.group(1)


def _run_schedule(tmp_path: Path, expires: dt.datetime) -> str:
    """The per-boot schedule run by a real sh and GNU date, with ``systemd-run`` and
    ``systemctl`` recording their arguments instead of powering anything off."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    for name in ("systemd-run", "systemctl"):
        fake = bindir / name
        fake.write_text(f'#!/bin/sh\necho "{name} $*" >> {tmp_path}/called\n')
        fake.chmod(0o755)
    (tmp_path / "called").unlink(missing_ok=True)
    schedule = tmp_path / "provision-ttl"
    schedule.write_text(_schedule(expires.strftime("%Y-%m-%dT%H:%M:%SZ")))
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}
    subprocess.run(["sh", str(schedule)], check=True, env=env, timeout=10)
    return (tmp_path / "called").read_text().strip().splitlines()[-1]


def test_the_schedule_counts_the_seconds_left_and_powers_off_at_once_when_past(tmp_path: Path):
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    later = _run_schedule(tmp_path, now + dt.timedelta(minutes=90, seconds=30))
    assert later.startswith("systemd-run --unit=provision-ttl "), later
    (active,) = [w for w in later.split() if w.startswith("--on-active=")]
    assert 5425 <= int(active.removeprefix("--on-active=").removesuffix("s")) <= 5430, later
    assert later.endswith(" systemctl poweroff"), later
    past = _run_schedule(tmp_path, now - dt.timedelta(minutes=5))
    assert past == "systemctl poweroff", past


def test_the_schedule_never_uses_shutdown_s_minutes(tmp_path: Path):
    """`shutdown +N` counts whole minutes (a power-off up to a minute early or late) and
    writes /run/nologin for its last five: every login but root's refused, so a cluster
    with a short ttl could not even be converged. A timer to the second does neither."""
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    soon = _run_schedule(tmp_path, now + dt.timedelta(seconds=40))
    assert "--on-active=" in soon and "shutdown" not in soon, soon
    assert "shutdown" not in _schedule("2026-12-07T05:00:00Z")


def test_a_malformed_expiry_is_refused():
    with pytest.raises(ValueError):
        userdata.ttl_script("tomorrow; rm -rf /")


def test_status_says_expired_and_a_rerun_of_up_is_refused_before_anything_is_made(
    ec2, session, state_dir, calls
):
    from moto_tests.conftest import FAST, REGION, make_spec, operator
    from provision import cloud
    from provision.aws import up
    from provision.errors import CloudError

    started = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    up(make_spec("old", ttl="1h"), state_dir=state_dir, session=session, wait_ssh=False,
       my_address=operator, timeouts=FAST, now=started)  # fmt: skip
    target = cloud.Target("aws", "old", REGION, state_dir)
    (host,) = cloud.status(target)
    assert host["expires_at"] == "2020-01-01T01:00:00Z" and host["expired"] is True
    (fresh,) = cloud.status(target, now=started)
    assert fresh["expired"] is False
    before = len(calls.creates())
    with pytest.raises(CloudError, match="expired at 2020-01-01T01:00:00Z") as refused:
        up(make_spec("old", ttl="1h"), state_dir=state_dir, session=session, wait_ssh=False,
           my_address=operator, timeouts=FAST)  # fmt: skip
    assert refused.value.code == "ClusterExpired"
    assert len(calls.creates()) == before


def _user_data(ec2, instance_id: str) -> str:
    raw = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    return base64.b64decode(raw["UserData"]["Value"]).decode()


def test_the_user_data_installs_docker_during_boot_unless_switched_off(ec2, session, state_dir):
    """The cold path (#25): RunInstances gets a user-data that installs Docker and Compose
    while the instance boots (the docker_engine task's recipe) and puts the login user in the
    docker group; under 16 KB; no secret in it (any process on the instance can read it: the
    Redis password travels over SSH only). ``docker_at_boot: false`` leaves the install to
    the task over SSH, as before."""
    (host,) = quick_up(session, state_dir, ttl="2h").instances
    script = _user_data(ec2, host.instance_id)
    assert script.startswith("#!/bin/sh\n") and len(script.encode()) < userdata.MAX_BYTES
    assert "apt-get -q -y -o DPkg::Lock::Timeout=300 install --no-install-recommends docker.io" in (
        script
    )
    assert "dnf install -y docker" in script and "sha256sum --check --strict" in script
    assert f"usermod -aG docker {host.user}" in script
    assert userdata.PER_BOOT in script  # the ttl schedule rides along
    assert not re.search(r"(?i)password|secret|token|BEGIN .*PRIVATE KEY", script), script
    off = quick_up(session, state_dir, cluster="nodocker", ttl="2h", docker_at_boot=False)
    bare = _user_data(ec2, off.instances[0].instance_id)
    assert "docker.io" not in bare and "usermod" not in bare and userdata.PER_BOOT in bare


def test_the_docker_part_runs_in_sh_and_installs_nothing_on_a_host_that_has_docker(tmp_path):
    """Run by a real sh where Docker and Compose are there already (an image that ships
    them): nothing installed, the user put in the group, exit 0."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name, body in (("docker", "exit 0"), ("usermod", f'echo "usermod $*" >> {tmp_path}/did'),
                       ("apt-get", f'echo "apt-get $*" >> {tmp_path}/did')):  # fmt: skip
        (bindir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bindir / name).chmod(0o755)
    script = tmp_path / "user-data"
    script.write_text(userdata.user_data(docker_user="admin"))
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}
    done = subprocess.run(["sh", str(script)], capture_output=True, text=True, env=env, timeout=10)
    assert done.returncode == 0, done.stderr
    assert "installed already" in done.stdout
    assert (tmp_path / "did").read_text().splitlines() == ["usermod -aG docker admin"]
    with pytest.raises(ValueError, match="not a user name"):
        userdata.user_data(docker_user="admin; rm -rf /")


def test_the_ecs_optimized_alias_boots_the_ami_that_ships_docker_and_adds_only_compose(
    ec2, session, state_dir
):
    """``image: al2023-ecs`` (#25): the ECS-optimized Amazon Linux 2023 AMI, found by AWS's
    public SSM parameter, which boots with Docker installed: its user-data switches the ECS
    agent off and adds only what the AMI lacks (the Compose plugin; ``dnf install docker``
    has nothing to do there)."""
    from moto_tests.conftest import add_public_image, publish_public_parameter

    ami = "ami-0ec5a12023000000e"
    add_public_image(
        ami, "591542846629", "al2023-ami-ecs-hvm-2023.0.20250101-kernel-6.1-x86_64",
        "/dev/xvda", 2025,
    )  # fmt: skip
    publish_public_parameter(
        "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id", ami
    )
    result = quick_up(session, state_dir, image="al2023-ecs", ttl="2h")
    (host,) = result.instances
    assert result.ami_id == ami and host.user == "ec2-user"
    script = _user_data(ec2, host.instance_id)
    assert "systemctl disable --now ecs.service" in script
    assert "docker-compose-linux-x86_64" in script and "usermod -aG docker ec2-user" in script


def test_the_user_data_switches_the_ecs_agent_off_where_there_is_one(tmp_path):
    """Run by a real sh: where an ``ecs.service`` unit exists it is disabled and stopped;
    where there is none, nothing is asked of systemd beyond the look."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for has_ecs in (True, False):
        did = tmp_path / f"did-{has_ecs}"
        look = "exit 0" if has_ecs else "exit 1"
        for name, body in (("docker", "exit 0"), ("usermod", "exit 0"),
                           ("systemctl", f'echo "systemctl $*" >> {did}\n'
                                         f'[ "$1" = cat ] && {look}\nexit 0')):  # fmt: skip
            (bindir / name).write_text(f"#!/bin/sh\n{body}\n")
            (bindir / name).chmod(0o755)
        script = tmp_path / "user-data"
        script.write_text(userdata.user_data(docker_user="ec2-user"))
        env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}
        done = subprocess.run(["sh", str(script)], capture_output=True, text=True, env=env,
                              timeout=10)  # fmt: skip
        assert done.returncode == 0, done.stderr
        calls = did.read_text().splitlines()
        assert calls[0] == "systemctl cat ecs.service"
        assert ("systemctl disable --now ecs.service" in calls) is has_ecs


def test_where_hosts_can_pull_the_user_data_pulls_the_images_once_docker_is_in(
    ec2, session, state_dir
):
    """``pull_at_boot`` (up.yml gives the cluster's images when ``transfer_images`` is false,
    as on EC2): pulled in the background after the install, best effort, cloud-init not kept
    waiting; the install's status stays the script's. None by default, nor without the
    install; a reference that is no image is refused before any cloud call."""
    images = ["redis:latest", "openresty/openresty:latest"]
    (host,) = quick_up(session, state_dir, ttl="2h", pull_at_boot=images).instances
    script = _user_data(ec2, host.instance_id)
    pull = script[script.index("status=$?") :]
    assert "for image in redis:latest openresty/openresty:latest; do docker pull" in pull
    assert "</dev/null >/var/log/provision-pull.log 2>&1 &" in pull
    assert pull.rstrip().endswith('exit "$status"')
    (plain,) = quick_up(session, state_dir, cluster="plain", ttl="2h").instances
    assert "docker pull" not in _user_data(ec2, plain.instance_id)
    assert "docker pull" not in userdata.user_data("", "", pull=["redis:latest"])
    from provision.errors import ConfigError

    with pytest.raises(ConfigError, match="pull_at_boot"):
        quick_up(session, state_dir, cluster="bad", pull_at_boot=["redis;reboot"])
