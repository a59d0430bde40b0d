"""topology: swarm on the sandbox, end to end through the CLI: N EC2-like hosts in one Docker
Swarm; a routed request through every node's URL reaches the echo backends; a second `up`
changes nothing; `down` leaves no container, network or volume of the cluster."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
import uuid

import pytest

from provision.sandbox import cloud, localdocker
from tests.integration.test_sandbox_e2e import provision

pytestmark = pytest.mark.integration

N = 3


@pytest.fixture
def swarm(tmp_path, sandbox_images):
    name = f"sw-{uuid.uuid4().hex[:6]}"
    yield tmp_path, name
    provision(tmp_path, "down", "-e", f"cluster_name={name}", "-e", "topology=swarm",
              "-e", f"instance_count={N}")  # fmt: skip
    cloud.remove_cluster(name)
    from provision.sandbox.moto_server import stop_server

    stop_server(cloud.sandbox_dir(tmp_path / ".provision"), forget=True)


def _docker_ls(kind: str, flt: str) -> list[str]:
    argv = ["docker", kind, "ls", "-q", "--filter", flt]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()


def test_swarm_up_routed_through_every_node_again_down(swarm):
    cwd, name = swarm
    args = ["-e", f"cluster_name={name}", "-e", "topology=swarm", "-e", f"instance_count={N}"]
    first = provision(cwd, "up", *args, "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    hosts = [h for h in report["recap"] if h != "localhost"]
    assert report["ok"] and len(hosts) == N
    assert all(report["recap"][h]["failed"] == 0 for h in hosts)
    urls = re.search(r"OpenResty: (.+)", first.stderr)
    assert urls, first.stderr
    node_urls = urls.group(1).split(", ")
    assert len(node_urls) == N and all(u.startswith("http://127.0.0.1:") for u in node_urls)

    added = provision(cwd, "routes", "add", "/api/echo", "echo", "echo-a:80", "echo-b:80", *args)
    assert added.returncode == 0, added.stderr
    for url in node_urls:  # every node routes, to both backends wherever they run
        seen = set()
        for _ in range(4):
            with urllib.request.urlopen(f"{url}/api/echo/x", timeout=10) as reply:
                seen.add(json.loads(reply.read())["instance"])
        assert seen == {"echo-a", "echo-b"}, url

    again = provision(cwd, "up", *args, "--json")
    assert again.returncode == 0, again.stderr
    recap = json.loads(again.stdout)["recap"]
    assert {h: r["changed"] for h, r in recap.items()} == {h: 0 for h in recap}

    down = provision(cwd, "down", *args)
    assert down.returncode == 0, down.stderr
    assert not localdocker.container_ids(f"{cloud.CLUSTER_LABEL}={name}")
    label = f"label={cloud.CLUSTER_LABEL}={name}"
    assert _docker_ls("network", label) == [] and _docker_ls("volume", label) == []
    assert _docker_ls("network", f"name=provision-sandbox-{name}") == []
