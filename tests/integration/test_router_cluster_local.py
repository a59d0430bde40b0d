"""The router against a real Redis Cluster: six nodes from playbooks/templates/redis-cluster.yml.j2
(rendered as `provision up` renders it), OpenResty and the echo backends from playbooks/files, on
the local engine, on a network of their own, the HTTP port on 127.0.0.1 only.

What it shows: the router finds the route table's slot owner from the seed nodes, follows MOVED
after a failover it did not see, follows ASK while the slot migrates, reads from the replica
while the master is gone and before the failover, and PINGs every node by name.

The tests share one cluster and run in file order.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from provision.cluster.layout import Layout
from provision.cluster.routes import RouteTable
from provision.connection.local import LocalConnection
from provision.load.templating import render
from tests import bounds

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2] / "playbooks"
FILES = ROOT / "files"
TEMPLATE = ROOT / "templates" / "redis-cluster.yml.j2"
ROUTES_KEY = "{provision}:routes"


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: str


@dataclass
class Cluster:
    config: Layout
    root: Path
    prefix: str

    def compose(self, component: str, *args: str) -> None:
        argv = [*self.config.compose_argv(component), "-f",
                str(self.root / component / "test-labels.yml"), *args]  # fmt: skip
        subprocess.run(argv, cwd=self.root / component, check=True, capture_output=True)

    def get(self, path: str) -> Reply:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(self.config.http_url + path, timeout=5) as r:
                return Reply(r.status, {k.lower(): v for k, v in r.headers.items()},
                             r.read().decode())  # fmt: skip
        except urllib.error.HTTPError as e:
            return Reply(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode())
        except OSError as e:
            return Reply(0, {}, str(e))

    def node(self, service: str) -> str:
        return f"{self.config.redis_project}_{service}_1"

    def cli(self, service: str, *args: str, check: bool = True) -> str:
        script = '. /run/secrets/redis_env; REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli "$@"'
        done = subprocess.run(
            ["docker", "exec", self.node(service), "sh", "-c", script, "sh", *args],
            capture_output=True, text=True, check=check,
        )  # fmt: skip
        return done.stdout.replace("\r", "")

    def any_cli(self, *args: str) -> str:
        """A command on the first node still running."""
        for service in self.config.redis_services:
            out = self.cli(service, *args, check=False)
            if out.strip() and "ERR" not in out:
                return out
        raise AssertionError(f"no node answers {args}")

    def nodes(self) -> list[list[str]]:
        out = self.any_cli("cluster", "nodes")
        return [line.split() for line in out.splitlines() if line.strip()]

    def owner(self) -> tuple[str, str]:
        """(service name, node id) of the master serving the routes slot."""
        slot = int(self.any_cli("cluster", "keyslot", ROUTES_KEY))
        for fields in self.nodes():
            if _up(fields, "master"):
                for span in fields[8:]:
                    start, _, end = span.partition("-")
                    if start.isdigit() and int(start) <= slot <= int(end or start):
                        return fields[1].split(",", 1)[1], fields[0]
        raise AssertionError(f"no master serves the routes slot: {self.nodes()}")

    def replica_of(self, master_id: str) -> tuple[str, str]:
        for fields in self.nodes():
            if _up(fields, "slave") and fields[3] == master_id:
                return fields[1].split(",", 1)[1], fields[0]
        raise AssertionError(f"no replica of {master_id}")


def _up(fields: list[str], role: str) -> bool:
    """A CLUSTER NODES line of a node in ``role`` that is not failing ("fail", "fail?")."""
    flags = set(fields[2].split(","))
    return role in flags and not flags & {"fail", "fail?"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _labels(services: list[str], volumes: list[str], labels: dict[str, str]) -> str:
    lines = ["services:"]
    for service in services:
        lines += [f"  {service}:", "    labels:", *[f'      {k}: "{v}"' for k, v in labels.items()]]
    if volumes:
        lines.append("volumes:")
    for volume in volumes:
        lines += [f"  {volume}:", "    labels:", *[f'      {k}: "{v}"' for k, v in labels.items()]]
    return "\n".join(lines) + "\n"


def _until(
    probe: Callable[[], Reply], done: Callable[[Reply], bool], deadline: float = 30
) -> Reply:
    end = time.monotonic() + deadline
    while True:
        reply = probe()
        if done(reply) or time.monotonic() > end:
            return reply
        time.sleep(0.3)


def _remove(prefix: str, network: str) -> None:
    def names(*argv: str) -> list[str]:
        return subprocess.run(["docker", *argv], capture_output=True, text=True).stdout.split()

    for cid in names("ps", "-aq", "--filter", f"name={prefix}-"):
        subprocess.run(["docker", "rm", "-f", "-v", cid], capture_output=True)
    for volume in names("volume", "ls", "-q", "--filter", f"name={prefix}-"):
        subprocess.run(["docker", "volume", "rm", "-f", volume], capture_output=True)
    subprocess.run(["docker", "network", "rm", network], capture_output=True)


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, sandbox_labels: dict[str, str]
) -> Iterator[Cluster]:
    for image in ("redis:latest", "openresty/openresty:latest"):
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode:
            pytest.fail(f"image {image} is missing: build the sandbox images first")
    suffix = secrets.token_hex(3)
    prefix, network, port = f"prvrc-{suffix}", f"prvrc-{suffix}-net", _free_port()
    root = tmp_path_factory.mktemp("rcluster")
    config = Layout(
        network=network, root=str(root), redis_project=f"{prefix}-redis",
        openresty_project=f"{prefix}-openresty", echo_project=f"{prefix}-echo",
        compose=("docker-compose",), http_url=f"http://127.0.0.1:{port}",
        sudo=os.geteuid() != 0, secrets_dir=str(root / "secrets"), redis_mode="cluster",
    )  # fmt: skip
    (root / "secrets").mkdir()
    password = secrets.token_hex(16)
    (root / "secrets" / "redis.env").write_text(f"REDIS_PASSWORD={password}\n")
    nodes = list(config.redis_services)
    for component in ("redis", "openresty", "echo"):
        shutil.copytree(FILES / component, root / component)
    rendered = render(TEMPLATE.read_text(), {"layout": config.as_vars()})
    (root / "redis" / "docker-compose.cluster.yml").write_text(str(rendered))
    variables = config.as_vars()
    env = (f"NETWORK={network}\nSECRETS_DIR={root / 'secrets'}\n"
           f"HTTP_BIND=127.0.0.1\nHTTP_PORT={port}\n")  # fmt: skip
    (root / "redis" / ".env").write_text(env)
    (root / "echo" / ".env").write_text(env)
    (root / "openresty" / ".env").write_text(
        env + f"REDIS_NODES={variables['redis_nodes']}\nREDIS_KEY_PREFIX={config.key_prefix}\n"
    )
    (root / "redis" / "test-labels.yml").write_text(
        _labels(nodes, [f"{n}-data" for n in nodes], sandbox_labels)
    )
    (root / "openresty" / "test-labels.yml").write_text(_labels(["openresty"], [], sandbox_labels))
    (root / "echo" / "test-labels.yml").write_text(
        _labels(["echo-a", "echo-b"], [], sandbox_labels)
    )
    labels = [f for k, v in sandbox_labels.items() for f in ("--label", f"{k}={v}")]
    made = Cluster(config, root, prefix)
    try:
        subprocess.run(["docker", "network", "create", *labels, network], check=True,
                       capture_output=True)  # fmt: skip
        made.compose("redis", "up", "-d")
        for service in nodes:  # each node answers before the cluster is formed
            for _ in range(60):
                if made.cli(service, "ping", check=False).strip() == "PONG":
                    break
                time.sleep(0.5)
        made.cli("redis-1", "--cluster", "create", *[f"{n}:6379" for n in nodes],
                 "--cluster-replicas", "1", "--cluster-yes")  # fmt: skip
        for _ in range(60):
            if "cluster_state:ok" in made.cli("redis-1", "cluster", "info"):
                break
            time.sleep(0.5)
        made.compose("echo", "up", "-d")
        made.compose("openresty", "up", "-d")
        ready = _until(lambda: made.get("/health"), lambda r: r.status == 200, deadline=60)
        assert ready.status == 200, ready
        yield made
    finally:
        _remove(prefix, network)


def test_ping_answers_from_every_node_by_name(cluster: Cluster) -> None:
    reply = _until(lambda: cluster.get("/ping"), lambda r: r.status == 200)
    assert (reply.status, reply.body.strip()) == (200, "PONG"), reply.body


def test_route_written_through_tunnels_is_served(cluster: Cluster) -> None:
    with LocalConnection() as conn, RouteTable(conn, cluster.config) as table:
        table.add_route("/api/users", "users", ["echo-a:80", "echo-b:80"])
    # The table lives under the hash-tagged key, on the slot owner.
    owner, _ = cluster.owner()
    assert cluster.cli(owner, "hget", ROUTES_KEY, "/api/users").strip() == "users"
    reply = _until(lambda: cluster.get("/api/users/7"), lambda r: r.status == 200)
    assert reply.status == 200 and json.loads(reply.body)["instance"] in ("echo-a", "echo-b")
    assert "x-route-source" not in reply.headers
    assert cluster.get("/anything").status == 404


def test_moved_after_a_failover_the_router_did_not_see(cluster: Cluster) -> None:
    """CLUSTER FAILOVER on the replica: the old master answers MOVED, the router follows."""
    old, old_id = cluster.owner()
    new, _ = cluster.replica_of(old_id)
    assert cluster.cli(new, "cluster", "failover").strip() == "OK"
    for _ in range(60):
        if cluster.owner()[0] == new:
            break
        time.sleep(0.5)
    assert cluster.owner()[0] == new
    # The old master learns the new epoch a moment after the replica took over: until then
    # it may answer CLUSTERDOWN (seen under pytest-xdist's load); then it must say MOVED.
    moved = _until(lambda: cluster.cli(old, "hget", ROUTES_KEY, "/api/users"),
                   lambda answer: not answer.startswith("CLUSTERDOWN"),
                   deadline=bounds.CLUSTER_CONVERGES)  # fmt: skip
    assert moved.startswith("MOVED"), moved
    with LocalConnection() as conn, RouteTable(conn, cluster.config) as table:
        table.add_route("/api/after-moved", "moved", ["echo-b:80"])
    reply = _until(lambda: cluster.get("/api/after-moved/x"), lambda r: r.status == 200)
    assert reply.status == 200 and json.loads(reply.body)["instance"] == "echo-b"
    assert "x-route-source" not in reply.headers  # fresh from the new master, not stale
    logs = subprocess.run(["docker", "logs", f"{cluster.config.openresty_project}_openresty_1"],
                          capture_output=True, text=True)  # fmt: skip
    assert "[error]" not in logs.stderr, logs.stderr[-2000:]


def test_ask_while_the_slot_migrates(cluster: Cluster) -> None:
    """The routes slot half-way to another master: its keys already there, the old owner
    answers ASK; the router sends ASKING and reads them from the new node."""
    source, source_id = cluster.owner()
    slot = cluster.any_cli("cluster", "keyslot", ROUTES_KEY).strip()
    masters = [f for f in cluster.nodes() if _up(f, "master")]
    target, target_id = next((f[1].split(",", 1)[1], f[0]) for f in masters if f[0] != source_id)
    password = (cluster.root / "secrets" / "redis.env").read_text().split("=", 1)[1].strip()
    with LocalConnection() as conn, RouteTable(conn, cluster.config) as table:
        table.add_route("/api/ask", "asked", ["echo-a:80"])
    keys = [k for k in cluster.cli(source, "cluster", "getkeysinslot", slot, "100").split() if k]
    assert ROUTES_KEY in keys
    try:
        for node, state, other in ((target, "importing", source_id),
                                   (source, "migrating", target_id)):  # fmt: skip
            assert cluster.cli(node, "cluster", "setslot", slot, state, other).strip() == "OK"
        moved = cluster.cli(source, "migrate", target, "6379", "", "0", "5000",
                            "auth", password, "keys", *keys)  # fmt: skip
        assert moved.strip() == "OK", moved
        assert cluster.cli(source, "hget", ROUTES_KEY, "/api/ask").startswith("ASK")
        # The router's cached table expires within cache_ttl; then it must read through ASK.
        time.sleep(3.5)
        replies = [cluster.get("/api/ask/x") for _ in range(5)]
        assert all(r.status == 200 for r in replies), replies
        assert all("x-route-source" not in r.headers for r in replies), replies
    finally:
        for f in cluster.nodes():
            if _up(f, "master"):
                cluster.cli(f[1].split(",", 1)[1], "cluster", "setslot", slot, "node", target_id,
                            check=False)  # fmt: skip
    for _ in range(30):
        if cluster.owner()[0] == target:
            break
        time.sleep(0.5)
    assert cluster.owner()[0] == target


def test_master_gone_the_router_reads_the_replica(cluster: Cluster) -> None:
    """The slot's master stopped and (cluster-replica-no-failover) not replaced: once the
    router's cached copy expired, it still serves fresh tables, read from the replica
    (READONLY; the nodes allow reads while the cluster is down). Then the replica takes over:
    a route added now is served."""
    old, old_id = cluster.owner()
    replica, _ = cluster.replica_of(old_id)
    cluster.cli(replica, "config", "set", "cluster-replica-no-failover", "yes")
    subprocess.run(["docker", "stop", cluster.node(old)], check=True, capture_output=True)
    try:
        time.sleep(4)  # longer than cache_ttl + worker_ttl: nothing cached is fresh any more
        statuses: Counter[int] = Counter()
        sources: Counter[str] = Counter()
        end = time.monotonic() + 8
        while time.monotonic() < end:
            reply = cluster.get("/api/users/1")
            statuses[reply.status] += 1
            sources[reply.headers.get("x-route-source", "fresh")] += 1
            time.sleep(0.1)
        print(f"master {old} gone: statuses {dict(statuses)}, sources {dict(sources)}")
        assert statuses[200] == sum(statuses.values()), dict(statuses)
        assert sources["fresh"] == sum(sources.values()), dict(sources)
        assert "fail" in next(f for f in cluster.nodes() if f[0] == old_id)[2].split(",")
        # /ping names the node that is gone.
        ping = cluster.get("/ping")
        assert ping.status == 502 and old in ping.body

        assert cluster.cli(replica, "cluster", "failover", "takeover").strip() == "OK"
        for _ in range(60):
            if cluster.owner()[0] == replica:
                break
            time.sleep(0.5)
        assert cluster.owner()[0] == replica
        with LocalConnection() as conn, RouteTable(conn, cluster.config) as table:
            table.add_route("/api/promoted", "promoted", ["echo-a:80"])
        reply = _until(lambda: cluster.get("/api/promoted/x"), lambda r: r.status == 200)
        assert reply.status == 200 and "x-route-source" not in reply.headers
    finally:
        cluster.cli(replica, "config", "set", "cluster-replica-no-failover", "no", check=False)
        subprocess.run(["docker", "start", cluster.node(old)], capture_output=True)
    ping = _until(lambda: cluster.get("/ping"), lambda r: r.status == 200, deadline=60)
    assert ping.status == 200 and ping.body.strip() == "PONG"
