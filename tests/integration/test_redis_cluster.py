"""Redis Cluster as the discovery store, in the sandbox, through the CLI: `provision up -e
redis_mode=cluster` brings six nodes up as one cluster and verifies it; a route added with
`provision routes add` (redis-py's RedisCluster through one tunnel per node) is served; the
second `up` changes nothing; the master holding the route table's slot is stopped and its
replica takes over while requests keep being served; the old master comes back as a replica;
`down` leaves nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from provision.sandbox import cloud, localdocker

pytestmark = [pytest.mark.integration, pytest.mark.own_cluster]

CLUSTER = ["-e", "redis_mode=cluster"]


def provision(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "provision.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=900)  # fmt: skip


class Sandbox:
    def __init__(self, cwd: Path, name: str) -> None:
        self.cwd, self.name = cwd, name
        self.url = ""

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return provision(self.cwd, *args, "-e", f"cluster_name={self.name}", *CLUSTER)

    def host_docker(self, *argv: str) -> str:
        """A docker command on the sandbox host's own engine."""
        (container,) = localdocker.container_ids(f"{cloud.CLUSTER_LABEL}={self.name}")
        out = localdocker.docker("exec", container, "docker", *argv, check=False)
        return out.stdout

    def node(self, service: str) -> str:
        return self.host_docker(
            "ps",
            "-aq",
            "--filter",
            "label=com.docker.compose.project=redis",
            "--filter",
            f"label=com.docker.compose.service={service}",
        ).strip()

    def redis_cli(self, service: str, *args: str) -> str:
        script = ('. /run/secrets/redis_env; REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli "$@" '
                  "| tr -d '\\r'")  # fmt: skip
        return self.host_docker("exec", self.node(service), "sh", "-c", script, "sh", *args)

    def get(self, path: str) -> tuple[int, dict[str, str], str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as reply:
                return reply.status, dict(reply.headers), reply.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read().decode()
        except OSError as exc:
            return 0, {}, repr(exc)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory, sandbox_images: object) -> Iterator[Sandbox]:
    cwd = tmp_path_factory.mktemp("rcluster")
    made = Sandbox(cwd, f"rc-{uuid.uuid4().hex[:6]}")
    yield made
    made.cli("down")
    cloud.remove_cluster(made.name)
    from provision.sandbox.moto_server import stop_server

    stop_server(cloud.sandbox_dir(cwd / ".provision"), forget=True)


def owner_of_routes(box: Sandbox) -> str:
    """The node serving the slot of the route table's keys (their hash tag: {provision})."""
    slot = int(box.redis_cli("redis-1", "cluster", "keyslot", "{provision}:routes"))
    for line in box.redis_cli("redis-1", "cluster", "nodes").splitlines():
        fields = line.split()
        flags = set(fields[2].split(","))
        if "master" in flags and not flags & {"fail", "fail?"} and fields[7] == "connected":
            for span in fields[8:]:
                start, _, end = span.partition("-")
                if start.isdigit() and int(start) <= slot <= int(end or start):
                    return fields[1].split(",", 1)[1]
    raise AssertionError("no master serves the routes slot")


def test_cluster_up_is_verified_routes_are_served_and_a_rerun_changes_nothing(sandbox):
    first = sandbox.cli("up", "--json")
    assert first.returncode == 0, first.stderr[-3000:]
    report = json.loads(first.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert set(checks) == {"containers", "cluster-state", "dns", "ping", "negative-control"}
    assert all(c["passed"] for c in checks.values()), {n: c["summary"] for n, c in checks.items()}
    state = checks["cluster-state"]["evidence"]
    assert (state["cluster_state"], state["slots_ok"], state["known_nodes"]) == ("ok", "16384", "6")
    assert state["routes_slot"] == 7792 and state["routes_slot_owner"].startswith("redis-")
    sandbox.url = report["resources"]["url"]

    added = sandbox.cli("routes", "add", "/api/users", "users", "echo-a:80", "echo-b:80")
    assert added.returncode == 0, added.stderr
    assert sandbox.redis_cli("redis-1", "-c", "hget", "{provision}:routes", "/api/users") == (
        "users\n"
    )
    status, _, body = sandbox.get("/api/users/7")
    assert status == 200 and json.loads(body)["instance"] in ("echo-a", "echo-b")
    assert sandbox.get("/anything")[0] == 404

    again = sandbox.cli("up", "--json")
    assert again.returncode == 0, again.stderr[-3000:]
    recap = json.loads(again.stdout)["recap"]
    assert sum(r["changed"] for r in recap.values()) == 0, recap


def test_failover_of_the_routes_master_keeps_requests_served(sandbox):
    assert sandbox.url, "runs after the cluster came up"
    old = owner_of_routes(sandbox)
    sandbox.host_docker("stop", sandbox.node(old))
    # A bounded loop through the failover: the router serves from the cluster, or from its
    # stale copy while no node answers for the slot; the router itself never answers 5xx.
    seen: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    new = ""
    deadline = time.monotonic() + 60
    for _ in range(400):
        status, headers, _ = sandbox.get("/api/users/1")
        statuses[status] += 1
        seen[headers.get("X-Route-Source", "fresh")] += 1
        if not new:
            try:
                owner = owner_of_routes(sandbox)
                new = owner if owner != old else ""
            except AssertionError:
                pass
        if (new and sum(statuses.values()) >= 100) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    print(f"failover {old} -> {new}: statuses {dict(statuses)}, sources {dict(seen)}")
    assert new and new != old, "the replica was not promoted"
    assert statuses[200] == sum(statuses.values()), dict(statuses)

    # Writes reach the new master; the router picks the change up within its cache time.
    moved = sandbox.cli("routes", "add", "/api/moved", "moved", "echo-b:80")
    assert moved.returncode == 0, moved.stderr
    for _ in range(50):
        status, _, body = sandbox.get("/api/moved/x")
        if status == 200:
            break
        time.sleep(0.2)
    assert status == 200 and json.loads(body)["instance"] == "echo-b"

    # The old master comes back as a replica of the new one; everything verifies.
    sandbox.host_docker("start", sandbox.node(old))
    for _ in range(60):
        role = sandbox.redis_cli(old, "role").split("\n")[0]
        if role == "slave":
            break
        time.sleep(1)
    assert role == "slave"
    verified = sandbox.cli("verify")
    assert verified.returncode == 0, verified.stderr[-3000:]


def test_down_leaves_nothing(sandbox):
    down = sandbox.cli("down")
    assert down.returncode == 0, down.stderr
    label = f"{cloud.CLUSTER_LABEL}={sandbox.name}"
    assert localdocker.container_ids(label) == []
    assert localdocker.volume_names(label) == []
