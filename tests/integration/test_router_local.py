"""The router of playbooks/files, for real: the three compose projects on the local engine
(docker-compose v1), on a network of their own, the HTTP port on 127.0.0.1 only.

The tests of this module share one cluster and run in file order; each one leaves the route
table as it found it.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from provision.cluster.layout import Layout
from provision.cluster.routes import RouteTable
from provision.connection.local import LocalConnection
from provision.verify import SLOW_CHECKS, run_suite
from tests.helpers import ENDPOINTS_REFUSED

pytestmark = pytest.mark.integration

FILES = Path(__file__).resolve().parents[2] / "playbooks" / "files"
SERVICES = {"redis": ["redis"], "openresty": ["openresty"], "echo": ["echo-a", "echo-b"]}
IMAGES = ("redis:latest", "openresty/openresty:latest")


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: str


@dataclass
class Cluster:
    config: Layout
    root: Path
    labels: dict[str, str]

    def compose(self, component: str, *args: str, project: str | None = None) -> None:
        argv = [
            *self.config.compose_argv(component),
            "-f",
            str(self.root / component / "test-labels.yml"),
            *args,
        ]
        if project:
            argv[argv.index("-p") + 1] = project
        subprocess.run(argv, cwd=self.root / component, check=True, capture_output=True)

    def get(self, path: str, url: str | None = None) -> Reply:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open((url or self.config.http_url) + path, timeout=5) as r:
                return Reply(
                    r.status, {k.lower(): v for k, v in r.headers.items()}, r.read().decode()
                )
        except urllib.error.HTTPError as e:
            return Reply(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode())
        except OSError as e:  # not listening yet
            return Reply(0, {}, str(e))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _labels_override(component: str, labels: dict[str, str]) -> str:
    lines = ["services:"]
    for service in SERVICES[component]:
        lines += [f"  {service}:", "    labels:"]
        lines += [f'      {k}: "{v}"' for k, v in labels.items()]
    if component == "redis":
        lines += ["volumes:", "  redis-data:", "    labels:"]
        lines += [f'      {k}: "{v}"' for k, v in labels.items()]
    return "\n".join(lines) + "\n"


def _stage(root: Path, network: str, port: int, labels: dict[str, str]) -> None:
    secrets_dir = root / "secrets"
    secrets_dir.mkdir()
    secret = secrets_dir / "redis.env"
    secret.write_text(f"REDIS_PASSWORD={secrets.token_hex(16)}\n")
    secret.chmod(0o600)
    for component in SERVICES:
        shutil.copytree(FILES / component, root / component)
        (root / component / ".env").write_text(
            f"NETWORK={network}\nSECRETS_DIR={secrets_dir}\nHTTP_BIND=127.0.0.1\nHTTP_PORT={port}\n"
        )
        (root / component / "test-labels.yml").write_text(_labels_override(component, labels))


def _remove(prefix: str, network: str) -> None:
    """Remove every container, volume and network of this module, whatever state it is in.

    Compose names them after the project (``prefix-redis_redis_1``, ``prefix-redis_redis-data``).
    """

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
    missing = [
        i
        for i in IMAGES
        if subprocess.run(["docker", "image", "inspect", i], capture_output=True).returncode
    ]
    if missing:
        pytest.fail(f"images {missing} are missing: build the sandbox images first")
    suffix = secrets.token_hex(3)
    prefix, network, port = f"prvrt-{suffix}", f"prvrt-{suffix}-net", _free_port()
    root = tmp_path_factory.mktemp("router")
    _stage(root, network, port, sandbox_labels)
    config = Layout(
        network=network,
        root=str(root),
        redis_project=f"{prefix}-redis",
        openresty_project=f"{prefix}-openresty",
        echo_project=f"{prefix}-echo",
        compose=("docker-compose",),
        http_url=f"http://127.0.0.1:{port}",
        sudo=os.geteuid() != 0,
        secrets_dir=str(root / "secrets"),
        deadline=30.0,
    )
    labels = [f for k, v in sandbox_labels.items() for f in ("--label", f"{k}={v}")]
    try:
        subprocess.run(
            ["docker", "network", "create", *labels, network], check=True, capture_output=True
        )
        made = Cluster(config, root, sandbox_labels)
        for component in ("redis", "echo", "openresty"):
            made.compose(component, "up", "-d")
        with LocalConnection() as conn:
            assert run_suite(conn, config, checks=["containers"])[0].passed
        yield made
    finally:
        _remove(prefix, network)


def _until(
    probe: Callable[[], Reply], done: Callable[[Reply], bool], deadline: float = 20
) -> Reply:
    end = time.monotonic() + deadline
    while True:
        reply = probe()
        if done(reply) or time.monotonic() > end:
            return reply
        time.sleep(0.3)


def _instance(reply: Reply) -> Any:
    return json.loads(reply.body).get("instance") if reply.status == 200 else None


def test_ping_by_name(cluster: Cluster) -> None:
    reply = cluster.get("/ping")
    assert (reply.status, reply.body.strip()) == (200, "PONG")


def test_route_round_robin_then_removed(cluster: Cluster) -> None:
    with LocalConnection() as conn, RouteTable(conn, cluster.config) as table:
        table.add_route("/api/echo", "echo", ["echo-a:80", "echo-b:80"])
        assert table.list_routes()["/api/echo"].endpoints == ("echo-a:80", "echo-b:80")
        first = _until(lambda: cluster.get("/api/echo/hello"), lambda r: r.status == 200)
        assert '"path":"/api/echo/hello"' in first.body
        replies = [cluster.get("/api/echo/hello") for _ in range(4)]
        seen = [_instance(r) for r in replies]
        assert all(a != b for a, b in itertools.pairwise(seen)), seen  # strict alternation
        assert set(seen) == {"echo-a", "echo-b"}
        # The header names the endpoint that answered.
        assert [r.headers.get("x-upstream-endpoint") for r in replies] == [f"{i}:80" for i in seen]
        assert table.remove_route("/api/echo") is True
    gone = _until(lambda: cluster.get("/api/echo/hello"), lambda r: r.status == 404)
    assert gone.status == 404 and '"error":"no route"' in gone.body


def test_unknown_route_is_404_json(cluster: Cluster) -> None:
    reply = cluster.get("/no/such/route")
    assert reply.status == 404
    assert reply.headers["content-type"] == "application/json"
    assert json.loads(reply.body) == {"error": "no route", "path": "/no/such/route"}


def test_service_without_endpoints_is_503_json(cluster: Cluster) -> None:
    with LocalConnection() as conn, RouteTable(conn, cluster.config) as table:
        table.add_route("/empty", "empty", [])
        try:
            reply = _until(lambda: cluster.get("/empty/x"), lambda r: r.status != 404)
        finally:
            table.remove_route("/empty")
    assert reply.status == 503
    assert json.loads(reply.body) == {"error": "no endpoint", "service": "empty"}


def test_stale_routes_while_redis_is_down(cluster: Cluster) -> None:
    with LocalConnection() as conn, RouteTable(conn, cluster.config) as table:
        table.add_route("/stale", "echo", ["echo-a:80"])
    _until(lambda: cluster.get("/stale/x"), lambda r: r.status == 200)
    cluster.compose("redis", "stop")
    try:
        down = _until(lambda: cluster.get("/stale/x"), lambda r: "x-route-source" in r.headers)
        assert down.status == 200 and _instance(down) == "echo-a"
        assert down.headers["x-route-source"] == "stale-cache"
    finally:
        cluster.compose("redis", "start")
    back = _until(
        lambda: cluster.get("/stale/x"),
        lambda r: r.status == 200 and "x-route-source" not in r.headers,
        deadline=30,
    )
    assert back.status == 200 and "x-route-source" not in back.headers
    with LocalConnection() as conn, RouteTable(conn, cluster.config) as table:
        table.remove_route("/stale")


def test_routes_survive_redis_restart_and_recreate(cluster: Cluster) -> None:
    with LocalConnection() as conn:
        with RouteTable(conn, cluster.config) as table:
            table.add_route("/kept", "kept", ["echo-b:80"])
        cluster.compose("redis", "restart")
        with RouteTable(conn, cluster.config) as table:
            assert table.list_routes()["/kept"].endpoints == ("echo-b:80",)
        # A new container on the same named volume: only the append-only file carries it over.
        cluster.compose("redis", "up", "-d", "--force-recreate")
        with RouteTable(conn, cluster.config) as table:
            assert table.list_routes()["/kept"].endpoints == ("echo-b:80",)
            table.remove_route("/kept")


def test_run_suite_passes_every_check(cluster: Cluster) -> None:
    with LocalConnection() as conn:
        results = run_suite(conn, cluster.config, include=SLOW_CHECKS)
    failed = {r.name: (r.summary, r.evidence) for r in results if not r.passed}
    assert not failed
    assert [r.name for r in results] == [
        "containers",
        "dns",
        "ping",
        "negative-control",
        "redis-port-closed",
        *SLOW_CHECKS,
    ]


def test_openresty_pointed_at_loopback_fails_with_evidence(cluster: Cluster) -> None:
    """The seed's trap: a second OpenResty project whose .env says REDIS_HOST=127.0.0.1."""
    root = cluster.root / "broken"
    shutil.copytree(cluster.root / "openresty", root / "openresty")
    port = _free_port()
    env = root / "openresty" / ".env"
    old_port = "HTTP_PORT=" + cluster.config.http_url.rsplit(":", 1)[1]
    env.write_text(
        env.read_text().replace(old_port, "") + f"HTTP_PORT={port}\nREDIS_HOST=127.0.0.1\n"
    )
    config = replace(
        cluster.config,
        root=str(root),
        openresty_project=cluster.config.redis_project.replace("-redis", "-broken"),
        http_url=f"http://127.0.0.1:{port}",
    )
    broken = Cluster(config, root, cluster.labels)
    broken.compose("openresty", "up", "-d")
    assert _until(lambda: broken.get("/health"), lambda r: r.status == 200).status == 200
    with LocalConnection() as conn:
        results = {r.name: r for r in run_suite(conn, config, checks=["negative-control", "ping"])}
    negative, ping = results["negative-control"], results["ping"]
    assert not negative.passed and negative.evidence["REDIS_HOST"] == "127.0.0.1"
    assert any("refused" in line for line in negative.evidence["error"])
    assert not ping.passed and ping.evidence["status"] == 502
    assert "127.0.0.1" in ping.evidence["body"]  # ERR connect 127.0.0.1:6379: connection refused
    assert ping.evidence["logs"]["openresty/openresty"] != ["no container"]


# --- bad input, faults and load ------------------------------------------------------------


def _raw(cluster: Cluster, target: str, method: str = "GET") -> Reply:
    """One request with ``target`` sent exactly as written (HTTP clients normalise paths)."""
    host, port = cluster.config.http_url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(f"{method} {target} HTTP/1.0\r\nHost: test\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.decode(errors="replace").partition("\r\n\r\n")
    lines = head.split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    return Reply(int(lines[0].split()[1]), headers, body)


def _write(cluster: Cluster, op: Callable[[Any], Any]) -> None:
    """Write straight into Redis, past RouteTable's validation (as a hand-run client could)."""
    with LocalConnection() as conn, RouteTable(conn, cluster.config) as table:
        table._call("raw write", op)


def _container(cluster: Cluster, service: str) -> str:
    project = cluster.config.project("echo")
    return subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}",
         "--filter", f"label=com.docker.compose.service={service}"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def _served_by(reply: Reply) -> str | None:
    return reply.headers.get("x-upstream-endpoint") if reply.status == 200 else None


def test_public_health_is_minimal_details_only_inside(cluster: Cluster) -> None:
    reply = cluster.get("/health")
    assert reply.status == 200 and json.loads(reply.body) == {"status": "ok"}
    rcid = subprocess.run(
        ["docker", "ps", "-q", "--filter",
         f"label=com.docker.compose.project={cluster.config.redis_project}"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    redis_ip = subprocess.run(
        ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
         rcid], capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert redis_ip and redis_ip not in reply.body and "127.0.0.11" not in reply.body
    ocid = subprocess.run(
        ["docker", "ps", "-q", "--filter",
         f"label=com.docker.compose.project={cluster.config.openresty_project}"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    inside = subprocess.run(
        ["docker", "exec", ocid, "curl", "-sS", "-m", "3", "http://127.0.0.1:8081/health"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    details = json.loads(inside)
    assert details["redis"]["address"] == redis_ip and details["redis"]["reachable"] is True
    assert details["resolver"] == "127.0.0.11"
    ports = subprocess.run(
        ["docker", "port", ocid], capture_output=True, text=True, check=True
    ).stdout
    assert "8081" not in ports and ports.startswith("80/tcp -> 127.0.0.1:")


def test_raw_dot_segments_are_not_forwarded(cluster: Cluster) -> None:
    with LocalConnection() as conn, RouteTable(conn, cluster.config) as table:
        table.add_route("/api", "api", ["echo-a:80"])
    try:
        ok = _until(lambda: _raw(cluster, "/api/x?q=1"), lambda r: r.status == 200)
        assert json.loads(ok.body)["path"] == "/api/x?q=1"  # the control: raw requests work
        for target in ("/api/../admin", "/api/%2e%2e/admin", "/api%2F..%2Fadmin", "/api/./x"):
            reply = _raw(cluster, target)
            assert reply.status == 400, (target, reply)
            assert json.loads(reply.body) == {"error": "bad path"}
            assert "x-upstream-endpoint" not in reply.headers
        assert _raw(cluster, "/anything").status == 404
        assert json.loads(cluster.get("/anything").body) == {
            "error": "no route",
            "path": "/anything",
        }
    finally:
        with LocalConnection() as conn, RouteTable(conn, cluster.config) as table:
            table.remove_route("/api")


def test_bad_entries_in_redis_are_skipped(cluster: Cluster) -> None:
    bad = list(ENDPOINTS_REFUSED)  # the CLI's rule refuses each too (test_bad_input_holes)

    def write(r: Any) -> None:
        r.hset("routes", mapping={"/bad": "bad", "/mixed": "mixed", "/noname": "", "": "bad"})
        r.rpush("service:bad:endpoints", *bad)
        r.rpush("service:mixed:endpoints", *bad, "echo-b:80")

    def drop(r: Any) -> None:
        r.hdel("routes", "/bad", "/mixed", "/noname", "")
        r.delete("service:bad:endpoints", "service:mixed:endpoints")

    _write(cluster, write)
    try:
        mixed = _until(lambda: cluster.get("/mixed/x"), lambda r: r.status != 404)
        assert mixed.status == 200 and _served_by(mixed) == "echo-b:80"
        replies = [cluster.get(p) for p in ("/mixed/x",) * 6 + ("/bad/x", "/noname/x")]
        assert [_served_by(r) for r in replies[:6]] == ["echo-b:80"] * 6
        assert (replies[6].status, json.loads(replies[6].body)) == (
            503, {"error": "no endpoint", "service": "bad"}
        )  # fmt: skip
        assert (replies[7].status, json.loads(replies[7].body)["error"]) == (503, "no endpoint")
        # The empty prefix (which would match every path) is skipped too.
        assert cluster.get("/no/such/route").status == 404
    finally:
        _write(cluster, drop)


def test_refused_endpoint_is_retried_post_is_not(cluster: Cluster) -> None:
    with LocalConnection() as conn, RouteTable(conn, cluster.config) as table:
        table.add_route("/refuse", "refuse", ["echo-a:81", "echo-b:80"])  # nothing on :81
    try:
        _until(lambda: cluster.get("/refuse/x"), lambda r: r.status == 200)
        replies = [cluster.get("/refuse/x") for _ in range(20)]
        assert [_served_by(r) for r in replies] == ["echo-b:80"] * 20
        time.sleep(3.5)  # echo-a:81 is marked down for 3 s
        posts = [_raw(cluster, "/refuse/x", method="POST") for _ in range(4)]
        statuses = [r.status for r in posts]
        # Round robin starts one of the first two at echo-a:81: that POST is not retried;
        # the failure marks the endpoint down, so the others go to echo-b.
        assert statuses.count(502) == 1 and statuses.count(200) == 3, statuses
        failed = posts[statuses.index(502)]
        assert json.loads(failed.body) == {"error": "no endpoint answered", "service": "refuse"}
        assert {_served_by(r) for r in posts if r.status == 200} == {"echo-b:80"}
    finally:
        with LocalConnection() as conn, RouteTable(conn, cluster.config) as table:
            table.remove_route("/refuse")


def test_stopped_backend_costs_no_request(cluster: Cluster) -> None:
    with LocalConnection() as conn, RouteTable(conn, cluster.config) as table:
        table.add_route("/fail", "fail", ["echo-a:80", "echo-b:80"])
    echo_a = _container(cluster, "echo-a")
    try:
        _until(lambda: cluster.get("/fail/x"), lambda r: r.status == 200)
        assert {_served_by(cluster.get("/fail/x")) for _ in range(4)} == {"echo-a:80", "echo-b:80"}
        subprocess.run(["docker", "stop", "-t", "2", echo_a], check=True, capture_output=True)
        start = time.monotonic()
        replies = [cluster.get("/fail/x") for _ in range(200)]
        elapsed = time.monotonic() - start
        assert [r.status for r in replies if not 200 <= r.status < 300] == []
        assert {_served_by(r) for r in replies} == {"echo-b:80"}
        assert {_instance(r) for r in replies} == {"echo-b"}
        assert elapsed < 60, elapsed
    finally:
        subprocess.run(["docker", "start", echo_a], capture_output=True)
    try:
        back = _until(
            lambda: cluster.get("/fail/x"), lambda r: _served_by(r) == "echo-a:80", deadline=30
        )
        assert _served_by(back) == "echo-a:80"
    finally:
        with LocalConnection() as conn, RouteTable(conn, cluster.config) as table:
            table.remove_route("/fail")


def test_all_endpoints_down_is_502_json_at_once(cluster: Cluster) -> None:
    with LocalConnection() as conn, RouteTable(conn, cluster.config) as table:
        table.add_route("/down", "down", ["echo-a:80", "echo-b:80"])
    backends = [_container(cluster, "echo-a"), _container(cluster, "echo-b")]
    try:
        _until(lambda: cluster.get("/down/x"), lambda r: r.status == 200)
        subprocess.run(["docker", "stop", "-t", "2", *backends], check=True, capture_output=True)
        timed = []
        for _ in range(3):
            start = time.monotonic()
            timed.append((cluster.get("/down/x"), time.monotonic() - start))
        for reply, _ in timed:
            assert reply.status == 502 and reply.headers["content-type"] == "application/json"
            assert json.loads(reply.body)["error"] in (
                "no endpoint answered", "no endpoint up", "cannot resolve endpoint"
            )  # fmt: skip
        assert timed[0][1] < 3, timed  # at most a short connect timeout per endpoint
        assert all(seconds < 1 for _, seconds in timed[1:]), timed  # marked down: at once
    finally:
        subprocess.run(["docker", "start", *backends], capture_output=True)
    try:
        seen = set()
        end = time.monotonic() + 30
        while seen != {"echo-a:80", "echo-b:80"} and time.monotonic() < end:
            seen.add(_served_by(cluster.get("/down/x")) or "")
            seen.discard("")
            time.sleep(0.2)
        assert seen == {"echo-a:80", "echo-b:80"}
    finally:
        with LocalConnection() as conn, RouteTable(conn, cluster.config) as table:
            table.remove_route("/down")


def _listening(port: int, deadline: float = 30) -> None:
    """Wait (bounded) until the router's port takes a connection: no HTTP request, so that
    nothing reads the route table before the test does."""
    end = time.monotonic() + deadline
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


def test_a_cold_router_answers_a_burst_without_503_while_redis_is_up(cluster: Cluster) -> None:
    """The cold-start race (#23): a router just started has no table in any shared dict and
    no stale copy; of a burst of concurrent requests one reads Redis, and the others used to
    answer 503 "route table unavailable" (and keep that for a second). Now they wait for its
    answer. Three cold starts, 96 concurrent requests each."""
    from concurrent.futures import ThreadPoolExecutor

    with LocalConnection() as conn, RouteTable(conn, cluster.config) as table:
        table.add_route("/cold", "echo", ["echo-a:80", "echo-b:80"])
    port = int(cluster.config.http_url.rsplit(":", 1)[1])
    try:
        for _ in range(3):
            cluster.compose("openresty", "restart", "-t", "2")
            _listening(port)
            with ThreadPoolExecutor(max_workers=32) as pool:
                replies = list(pool.map(lambda _: cluster.get("/cold/x"), range(96)))
            statuses = sorted({r.status for r in replies})
            bodies = {r.body.strip() for r in replies if r.status != 200}
            assert statuses == [200], (statuses, bodies)
    finally:
        with LocalConnection() as conn, RouteTable(conn, cluster.config) as table:
            table.remove_route("/cold")
