"""Against a moto server in its own process: an interrupted run torn down from a fresh process.

These are the "shell that never saw the run" cases: no shared memory, no state file, only the
tags that the cloud (here a separate moto server process) holds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from moto_tests.conftest import FAST, REGION, make_spec, new_session, operator
from provision.aws import up
from provision.aws.tags import CLUSTER
from provision.errors import Interrupted
from provision.sandbox.moto_server import ensure_server, stop_server

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def server_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("sandbox")
    yield folder
    stop_server(folder, forget=True)


@pytest.fixture
def endpoint(server_dir: Path) -> str:
    return ensure_server(server_dir)


def server_session(endpoint: str) -> boto3.Session:
    return new_session()


def leftovers(endpoint: str, cluster: str) -> list[str]:
    ec2 = new_session().client("ec2", REGION, endpoint_url=endpoint)
    tag = [{"Name": f"tag:{CLUSTER}", "Values": [cluster]}]
    live = [{"Name": "instance-state-name", "Values": ["pending", "running", "stopped"]}]
    reservations = ec2.describe_instances(Filters=tag + live)["Reservations"]
    return [
        *(i["InstanceId"] for r in reservations for i in r["Instances"]),
        *(g["GroupId"] for g in ec2.describe_security_groups(Filters=tag)["SecurityGroups"]),
        *(k["KeyName"] for k in ec2.describe_key_pairs(Filters=tag)["KeyPairs"]),
    ]


def down_in_a_fresh_process(cluster: str, endpoint: str, state_dir: Path) -> list[str]:
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from provision.aws import down, Timeouts\n"
        "t = Timeouts(terminated=10, delete=10, poll=0.05)\n"
        f"r = down({cluster!r}, region={REGION!r}, endpoint_url={endpoint!r},\n"
        f"         state_dir=Path({str(state_dir)!r}), timeouts=t)\n"
        "print(json.dumps(list(r.removed)))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        PYTHONPATH=str(ROOT),
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    removed: list[str] = json.loads(done.stdout)
    return removed


def test_a_run_stopped_after_run_instances_is_removed_by_a_fresh_process(
    endpoint: str, tmp_path: Path
):
    state_dir = tmp_path / "state"
    session = new_session()

    def crash(**_: Any) -> None:
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C as RunInstances returned

    session.events.register("after-call.ec2.RunInstances", crash)
    with pytest.raises(Interrupted, match="provision down"):
        up(
            make_spec("crash"),
            state_dir=state_dir,
            session=session,
            endpoint_url=endpoint,
            wait_ssh=False,
            my_address=operator,
            timeouts=FAST,
        )
    assert len(leftovers(endpoint, "crash")) == 3  # instance, group and key pair exist
    shutil.rmtree(state_dir)  # and this machine forgot all about them

    removed = down_in_a_fresh_process("crash", endpoint, tmp_path / "other-state")
    assert len(removed) == 3
    assert leftovers(endpoint, "crash") == []
    assert down_in_a_fresh_process("crash", endpoint, tmp_path / "other-state") == []


def test_an_interrupted_up_is_finished_by_running_it_again(endpoint: str, tmp_path: Path):
    state_dir = tmp_path / "state"
    session = new_session()
    session.events.register(
        "after-call.ec2.RunInstances", lambda **_: (_ for _ in ()).throw(KeyboardInterrupt)
    )
    with pytest.raises(Interrupted):
        up(
            make_spec("resume"),
            state_dir=state_dir,
            session=session,
            endpoint_url=endpoint,
            wait_ssh=False,
            my_address=operator,
            timeouts=FAST,
        )
    launched = set(leftovers(endpoint, "resume"))
    result = up(
        make_spec("resume"),
        state_dir=state_dir,
        session=new_session(),
        endpoint_url=endpoint,
        wait_ssh=False,
        my_address=operator,
        timeouts=FAST,
    )
    assert result.created == ()
    assert set(leftovers(endpoint, "resume")) == launched
    assert down_in_a_fresh_process("resume", endpoint, state_dir)
    assert not (state_dir / "resume").exists()


def test_the_sandbox_cloud_survives_a_server_restart(
    server_dir: Path, endpoint: str, tmp_path: Path
):
    result = up(
        make_spec("keep"),
        state_dir=tmp_path,
        session=new_session(),
        endpoint_url=endpoint,
        wait_ssh=False,
        my_address=operator,
        timeouts=FAST,
    )
    assert ensure_server(server_dir) == endpoint  # still running: same server
    assert stop_server(server_dir)
    restarted = ensure_server(server_dir)
    assert restarted != endpoint
    assert sorted(leftovers(restarted, "keep")) == sorted(
        [result.instances[0].instance_id, result.security_group_id, result.key_name]
    )
    assert down_in_a_fresh_process("keep", restarted, tmp_path)


def _launch_and_describe(endpoint: str) -> str:
    ec2 = new_session().client("ec2", REGION, endpoint_url=endpoint)
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    (instance,) = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"]
    try:
        (reservation,) = ec2.describe_instances(
            Filters=[{"Name": "instance-id", "Values": [instance["InstanceId"]]}]
        )["Reservations"]
        return str(reservation["Instances"][0]["State"]["Name"])
    finally:
        from provision.aws import waits
        from provision.aws.calls import call

        waits.poll(  # a new instance answers NotFound a moment under the realism layer
            lambda: call(ec2, "terminate_instances", {"InstanceIds": [instance["InstanceId"]]}),
            what="terminate", timeout=30, interval=0.2,
        )  # fmt: skip


def test_the_sandbox_server_runs_the_realism_layer_unless_turned_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from provision.sandbox.realism import REALISM_ENV

    monkeypatch.delenv(REALISM_ENV, raising=False)
    on = tmp_path / "on"
    try:
        assert _launch_and_describe(ensure_server(on)) == "pending"  # as EC2 has it at first
    finally:
        stop_server(on, forget=True)
    monkeypatch.setenv(REALISM_ENV, "0")
    off = tmp_path / "off"
    try:
        assert _launch_and_describe(ensure_server(off)) == "running"  # moto's own: at once
    finally:
        stop_server(off, forget=True)


@pytest.mark.parametrize("realism", ["1", "0"], ids=["realism-on", "realism-off"])
def test_the_sandbox_server_answers_the_console_from_the_host_s_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, realism: str
):
    """GetConsoleOutput of a sandbox instance is its host container's log (where the host
    prints cloud-init's host-key block at boot), found by the instance's label; with the
    realism layer on, the buffered output (no ``Latest``) is still empty, as on EC2. The
    engine is a stand-in ``docker`` on PATH that records what it is asked."""
    from provision.aws.hostkeys import parse_console_host_keys
    from provision.sandbox.cloud import CLOUD_LABEL, INSTANCE_LABEL
    from provision.sandbox.realism import REALISM_ENV

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "hk")],
                   check=True)  # fmt: skip
    key = " ".join((tmp_path / "hk.pub").read_text().split()[:2])
    (bin_dir / "console.txt").write_text(
        "[  OK  ] Started ssh-hostkeys.service.\n-----BEGIN SSH HOST KEY KEYS-----\n"
        f"{key} root@host\n-----END SSH HOST KEY KEYS-----\n"
    )
    asked = tmp_path / "asked"
    (bin_dir / "docker").write_text(
        f'#!/bin/sh\necho "$*" >> {asked}\n'
        f'case "$1" in ps) echo c0ffee ;; logs) cat {bin_dir}/console.txt ;; esac\n'
    )
    (bin_dir / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv(REALISM_ENV, realism)
    folder = tmp_path / "cloud"
    try:
        ec2 = new_session().client("ec2", REGION, endpoint_url=ensure_server(folder))
        image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        (instance,) = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"]
        instance_id = instance["InstanceId"]
        from provision.aws import waits
        from provision.aws.calls import call

        latest = waits.poll(  # a new ID answers NotFound a moment under the realism layer
            lambda: call(ec2, "get_console_output", {"InstanceId": instance_id, "Latest": True}),
            what="console", timeout=30, interval=0.2,
        )  # fmt: skip
        assert parse_console_host_keys(str(latest.get("Output") or "")) == (key,)
        # by instance and by cloud: every sandbox cloud's moto hands out the same IDs
        lookups = [line for line in asked.read_text().splitlines()
                   if f"label={INSTANCE_LABEL}={instance_id}" in line]  # fmt: skip
        assert lookups and all(f"label={CLOUD_LABEL}={folder}" in ps for ps in lookups), lookups
        buffered = ec2.get_console_output(InstanceId=instance_id)
        assert bool(buffered.get("Output")) == (realism == "0"), buffered
    finally:
        stop_server(folder, forget=True)
