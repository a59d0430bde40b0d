"""topology: swarm on the sandbox, end to end through the CLI: N EC2-like hosts in one Docker
Swarm; `up` (and `verify`) verify every node with evidence per node; a routed request through
every node's URL reaches the echo backends; a second `up` changes nothing; `down` leaves no
container, network or volume of the cluster."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest

from provision.sandbox import cloud, localdocker
from tests.clirun import failure
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


#: what `up` verifies on every node of a swarm (provision/verify/swarm.py)
NODE_CHECKS = {"swarm-nodes", "containers", "dns", "ping", "negative-control", "swarm-routing"}


def assert_verified_on_every_node(report: dict, hosts: list[str]) -> None:
    """Each node passed each check, with its own evidence: `redis` resolved inside ITS
    OpenResty task to Redis's task, PONG by name, 127.0.0.1:6379 refused there, every node
    Ready, a route through ITS port 80 answered by both echo replicas."""
    by_host: dict[str, dict[str, dict]] = {}
    for check in report["checks"]:
        by_host.setdefault(check["host"], {})[check["name"]] = check
    assert sorted(by_host) == sorted(hosts)
    nodes, remote = set(), 0
    for host, checks in by_host.items():
        assert set(checks) >= NODE_CHECKS, (host, sorted(checks))
        failed = {n: c["summary"] for n, c in checks.items() if not c["passed"]}
        assert not failed, (host, failed)
        dns = checks["dns"]["evidence"]
        assert dns["resolved"] and set(dns["resolved"]) <= set(dns["expected"]), dns
        assert checks["ping"]["evidence"]["body"] == "PONG"
        assert checks["negative-control"]["evidence"]["exit_code"] == 7  # refused
        listed = checks["swarm-nodes"]["evidence"]["nodes"]
        assert len(listed) == N and all(" Ready Active " in row for row in listed), listed
        routing = checks["swarm-routing"]["evidence"]
        assert routing["answered"] == ["echo-a", "echo-b"], routing
        assert routing["after_removal"][0] == 404
        nodes.add(routing["node"])
        remote += bool(routing["from_other_nodes"])
    assert len(nodes) == N  # each host's checks ran on its own node
    # Two echo replicas on N=3 nodes: at least N-1 nodes reached one running elsewhere.
    assert remote >= N - 1, by_host


def wait_routed(url: str, deadline: float = 30.0) -> None:
    """A new route reaches each node's router within its refresh (bounded: ``deadline`` s);
    until then the path is unknown there (404)."""
    end = time.monotonic() + deadline
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as reply:
                if reply.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code != 404 or time.monotonic() > end:
                raise
        time.sleep(0.5)


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
    assert _docker_ls("network", label) == [] and _docker_ls("volume", label) == []
    assert _docker_ls("network", f"name=provision-sandbox-{name}") == []
