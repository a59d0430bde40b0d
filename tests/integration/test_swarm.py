"""topology: swarm on the sandbox, end to end through the CLI: N EC2-like hosts in one Docker
Swarm; `up` (and `verify`) verify every node with evidence per node; a routed request through
every node's URL reaches the echo backends; a second `up` changes nothing; `down` leaves no
container, network or volume of the cluster."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
import uuid

import pytest

from provision.sandbox import cloud, localdocker
from tests.clirun import failure
from tests.helpers import assert_verified_on_every_node, docker_ls, provision, wait_routed

pytestmark = [pytest.mark.integration, pytest.mark.own_cluster]

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


#: what `up` verifies on every node of a swarm (provision/verify/swarm.py)
def test_swarm_up_routed_through_every_node_again_down(swarm):
    cwd, name = swarm
    args = ["-e", f"cluster_name={name}", "-e", "topology=swarm", "-e", f"instance_count={N}"]
    first = provision(cwd, "up", *args, "--json")
    assert first.returncode == 0, failure(first)
    report = json.loads(first.stdout)
    hosts = [h for h in report["recap"] if h != "localhost"]
    assert report["ok"] and len(hosts) == N
    assert all(report["recap"][h]["failed"] == 0 for h in hosts)
    urls = re.search(r"OpenResty: (.+)", first.stderr)
    assert urls, first.stderr
    node_urls = urls.group(1).split(", ")
    assert len(node_urls) == N and all(u.startswith("http://127.0.0.1:") for u in node_urls)
    assert_verified_on_every_node(report, hosts)
    # The images crossed the controller's link once: to the manager, which relayed them.
    # One task sent them, on the manager; the others skip it (their results say so).
    ran = [
        t for t in report["tasks"] if t["module"] == "docker_images" and t["status"] != "skipped"
    ]
    (images,) = ran
    assert images["host"] == hosts[0], ran
    assert images["status"] == "changed" and "relayed to " in images["msg"], images
    assert "from the controller" not in images["msg"], images

    added = provision(cwd, "routes", "add", "/api/echo", "echo", "echo-a:80", "echo-b:80", *args)
    assert added.returncode == 0, added.stderr
    for url in node_urls:  # every node routes, to both backends wherever they run
        wait_routed(f"{url}/api/echo/x")
        seen = set()
        for _ in range(4):
            with urllib.request.urlopen(f"{url}/api/echo/x", timeout=10) as reply:
                seen.add(json.loads(reply.read())["instance"])
        assert seen == {"echo-a", "echo-b"}, url

    verified = provision(cwd, "verify", *args, "--json")  # from the tags, as a new shell would
    assert verified.returncode == 0, verified.stderr
    assert_verified_on_every_node(json.loads(verified.stdout), hosts)

    again = provision(cwd, "up", *args, "--json")
    assert again.returncode == 0, failure(again)
    recap = json.loads(again.stdout)["recap"]
    assert {h: r["changed"] for h, r in recap.items()} == {h: 0 for h in recap}

    down = provision(cwd, "down", *args)
    assert down.returncode == 0, down.stderr
    assert not localdocker.container_ids(f"{cloud.CLUSTER_LABEL}={name}")
    label = f"label={cloud.CLUSTER_LABEL}={name}"
    assert docker_ls("network", label) == [] and docker_ls("volume", label) == []
    assert docker_ls("network", f"name=provision-sandbox-{name}") == []
