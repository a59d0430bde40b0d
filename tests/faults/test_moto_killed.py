"""Fault case 4: the cloud (the sandbox's moto server) dies in the middle of ``provision up``.

The server is killed (SIGKILL) right after it answered RunInstances (seen in its request
recording), while ``up`` waits for the instance and reads its console. The run fails with a
clear cloud error naming the call and the endpoint, exit 1. ``provision down`` afterwards
(which starts a new server, replaying the recording) removes everything: no container,
volume or network of the cluster is left in the local engine, and its state is gone."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import time
import urllib.parse
from pathlib import Path

import pytest

from provision.sandbox import cloud, localdocker
from tests.clirun import provision_cli, provision_popen

pytestmark = [pytest.mark.integration, pytest.mark.own_cluster]


def _left(kind: str, selector: str) -> list[str]:
    return localdocker.docker(kind, "ls", "-q", "--filter", f"label={selector}").stdout.split()


def test_the_cloud_killed_mid_up_fails_clearly_and_down_removes_everything(cluster):
    cwd, name = cluster
    var = f"cluster_name={name}"
    moto = cloud.sandbox_dir(cwd / ".provision") / "moto"
    run = provision_popen("up", "-e", var, cwd=cwd)
    try:
        deadline = time.monotonic() + 300
        while "RunInstances" not in _actions(moto / "recording.jsonl"):
            assert run.poll() is None, run.communicate()[1]
            assert time.monotonic() < deadline, "RunInstances never reached the moto server"
            time.sleep(0.01)
        pid = int(json.loads((moto / "server.json").read_text())["pid"])
        os.kill(pid, signal.SIGKILL)
        _, err = run.communicate(timeout=600)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 1, err
    failed = [line for line in err.splitlines() if line.lstrip().startswith("failed localhost")]
    assert failed, err
    assert "Instance, key pair and security group" in failed[0], err
    assert "Could not connect to the endpoint URL" in err, err
    assert "(EndpointConnectionError)" in err, err
    assert "the cloud's endpoint does not answer" in err, err
    assert "Traceback" not in err

    selector = f"{cloud.CLUSTER_LABEL}={name}"
    # The cloud the next command sees (a new server, the recording replayed) holds the
    # instance, whose host was never started: status says so and what to do.
    before = provision_cli("status", "-e", var, "--json", cwd=cwd)
    assert before.returncode == 1, before.stderr
    assert re.fullmatch(
        r"error: the sandbox host of i-[0-9a-f]+ is gone; run `provision down` then "
        r"`provision up`\n",
        before.stderr,
    ), before.stderr
    down = provision_cli("down", "-e", var, cwd=cwd, timeout=600)
    assert down.returncode == 0, down.stderr
    assert localdocker.container_ids(selector) == []
    assert _left("volume", selector) == []
    assert _left("network", selector) == []
    assert not (cwd / ".provision" / name / "state.json").exists()
    after = provision_cli("status", "-e", var, "--json", cwd=cwd)
    assert after.returncode == 0 and json.loads(after.stdout) == [], after.stdout


def _actions(path: Path) -> list[str]:
    """The EC2/SSM actions the server recorded so far (bodies may be base64-encoded)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    actions = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # the line being written
        body = str(entry.get("body") or "")
        if entry.get("body_encoded"):
            body = base64.b64decode(body).decode(errors="replace")
        actions += urllib.parse.parse_qs(body).get("Action", [])
    return actions
