"""Router with one Redis vs. router with a Redis Cluster vs. ceiling, in the same run: wrk
against OpenResty routing through a single Redis, against a second OpenResty routing through a
six-node Redis Cluster (redis_mode: cluster, the template `provision up` renders), and against
a static nginx proxy_pass to the same echo backends. The route table cache is warm in both
routers, so the store should not show.

Starts the compose projects of playbooks/files (docker-compose v1 or v2) and the static nginx
on a network of their own, on loopback only, and removes everything at the end.

    python bench/router_bench.py [--duration 10] [--threads 2] [--connections 32] [--rounds 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provision.cluster.layout import Layout  # noqa: E402
from provision.cluster.routes import RouteTable  # noqa: E402
from provision.connection.local import LocalConnection  # noqa: E402
from provision.load.templating import render  # noqa: E402

FILES = ROOT / "playbooks" / "files"
STATIC_CONF = ROOT / "bench" / "static-nginx.conf"
CLUSTER_TEMPLATE = ROOT / "playbooks" / "templates" / "redis-cluster.yml.j2"
LABEL = "io.provision.bench=1"
PATH = "/bench/echo"


@dataclass(frozen=True)
class Figures:
    rps: float
    p99_ms: float


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _compose_command() -> tuple[str, ...]:
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ("docker", "compose")
    return ("docker-compose",)


def _status(url: str) -> int:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=3) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def _wait_ok(url: str, deadline: float = 60.0) -> None:
    end = time.monotonic() + deadline
    while _status(url) != 200:
        if time.monotonic() > end:
            raise SystemExit(f"{url} did not answer 200 within {deadline:.0f}s")
        time.sleep(0.5)


def _to_ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def parse_wrk(output: str) -> Figures:
    """Requests/s and the 99th percentile latency from ``wrk --latency`` output."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    if not rps or not p99:
        raise SystemExit(f"cannot read wrk output:\n{output}")
    return Figures(float(rps.group(1)), _to_ms(p99.group(1)))


def wrk(url: str, args: argparse.Namespace) -> Figures:
    argv = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.duration}s",
        "--latency",
        url,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    return parse_wrk(done.stdout)


def _mean(figures: list[Figures]) -> Figures:
    return Figures(
        sum(f.rps for f in figures) / len(figures),
        sum(f.p99_ms for f in figures) / len(figures),
    )


def _rounds(targets: list[str], args: argparse.Namespace) -> list[Figures]:
    """Rotate the targets (ABC, CBA, ...) and average: on a small machine, whichever runs
    later meets a warmer (or busier) host, and one run per target is mostly noise."""
    runs: dict[str, list[Figures]] = {url: [] for url in targets}
    for i in range(args.rounds):
        for url in targets if i % 2 == 0 else list(reversed(targets)):
            runs[url].append(wrk(url, args))
    return [_mean(runs[url]) for url in targets]


def _env(network: str, secrets_dir: Path, port: int, extra: str = "") -> str:
    return (
        f"NETWORK={network}\nSECRETS_DIR={secrets_dir}\nHTTP_BIND=127.0.0.1\n"
        f"HTTP_PORT={port}\n{extra}"
    )


def _stage(root: Path, config: Layout, network: str, secrets_dir: Path, port: int) -> None:
    """One router's projects under ``root``: redis (one server, or the cluster's nodes from
    the template) and openresty; the echo backends with the single one."""
    components = ("redis", "openresty") if config.cluster else ("redis", "echo", "openresty")
    extra = ""
    if config.cluster:
        variables = config.as_vars()
        extra = f"REDIS_NODES={variables['redis_nodes']}\nREDIS_KEY_PREFIX={config.key_prefix}\n"
    for component in components:
        shutil.copytree(FILES / component, root / component)
        (root / component / ".env").write_text(_env(network, secrets_dir, port, extra))
    if config.cluster:
        rendered = render(CLUSTER_TEMPLATE.read_text(), {"layout": config.as_vars()})
        (root / "redis" / "docker-compose.cluster.yml").write_text(str(rendered))


def _redis_cli(config: Layout, service: str, *args: str) -> str:
    """redis-cli in a node, the password from its secret (never on a command line)."""
    script = '. /run/secrets/redis_env; REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli "$@"'
    found = subprocess.run(
        [
            "docker", "ps", "-q",
            "--filter", f"label=com.docker.compose.project={config.redis_project}",
            "--filter", f"label=com.docker.compose.service={service}",
        ],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    container = found.stdout.strip()
    if not container:
        return ""
    done = subprocess.run(
        ["docker", "exec", container, "sh", "-c", script, "sh", *args],
        capture_output=True,
        text=True,
    )
    return done.stdout


def _form_cluster(config: Layout) -> None:
    nodes = config.redis_services
    for service in nodes:

        def pong(service: str = service) -> bool:
            return _redis_cli(config, service, "ping").strip() == "PONG"

        _until(pong, f"PONG from {service}")
    _redis_cli(
        config, nodes[0], "--cluster", "create", *[f"{n}:{config.redis_port}" for n in nodes],
        "--cluster-replicas", "1", "--cluster-yes",
    )  # fmt: skip
    _until(lambda: "cluster_state:ok" in _redis_cli(config, nodes[0], "cluster", "info"), "ok")


def _until(probe: Callable[[], bool], what: str, deadline: float = 60.0) -> None:
    end = time.monotonic() + deadline
    while not probe():
        if time.monotonic() > end:
            raise SystemExit(f"the cluster did not reach {what} within {deadline:.0f}s")
        time.sleep(0.5)


def _up(root: Path, config: Layout, network: str) -> None:
    components = ("redis", "openresty") if config.cluster else ("redis", "echo", "openresty")
    for component in components:
        subprocess.run(
            config.compose_argv(component, "up", "-d"),
            cwd=root / component,
            check=True,
            capture_output=True,
        )
        if component == "redis" and config.cluster:
            _form_cluster(config)
    with LocalConnection() as conn, RouteTable(conn, config) as table:
        table.add_route("/bench", "bench-echo", ["echo-a:80", "echo-b:80"])


def _layouts(tag: str, network: str, tmp: Path) -> tuple[Layout, Layout]:
    compose = _compose_command()
    single = Layout(
        network=network, root=str(tmp / "single"), redis_project=f"{tag}-redis",
        openresty_project=f"{tag}-openresty", echo_project=f"{tag}-echo", compose=compose,
        sudo=False, secrets_dir=str(tmp / "secrets"),
    )  # fmt: skip
    cluster = dataclasses.replace(
        single, root=str(tmp / "cluster"), redis_project=f"{tag}-rcluster",
        openresty_project=f"{tag}-openresty-c", redis_mode="cluster",
    )  # fmt: skip
    return single, cluster


def run(args: argparse.Namespace) -> list[Figures]:
    tag = f"prvbench-{secrets.token_hex(3)}"
    network = f"{tag}-net"
    ports = {"single": _free_port(), "cluster": _free_port(), "static": _free_port()}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        single, cluster = _layouts(tag, network, root)
        (root / "secrets").mkdir()
        secret = root / "secrets" / "redis.env"
        secret.write_text(f"REDIS_PASSWORD={secrets.token_hex(16)}\n")
        secret.chmod(0o600)
        for config, name in ((single, "single"), (cluster, "cluster")):
            Path(config.root).mkdir()
            _stage(Path(config.root), config, network, root / "secrets", ports[name])
        try:
            subprocess.run(
                ["docker", "network", "create", "--label", LABEL, network],
                check=True,
                capture_output=True,
            )
            _up(Path(single.root), single, network)
            _up(Path(cluster.root), cluster, network)
            subprocess.run(
                [
                    "docker", "run", "-d", "--name", f"{tag}-static", "--label", LABEL,
                    "--network", network, "-p", f"127.0.0.1:{ports['static']}:80",
                    "-v", f"{STATIC_CONF}:/usr/local/openresty/nginx/conf/nginx.conf:ro",
                    "openresty/openresty:latest",
                ],
                check=True,
                capture_output=True,
            )  # fmt: skip
            urls = [f"http://127.0.0.1:{ports[n]}{PATH}" for n in ("single", "cluster", "static")]
            for url in urls:
                _wait_ok(url)
            return _rounds(urls, args)
        finally:
            _cleanup(single, cluster, tag, network)


def _cleanup(single: Layout, cluster: Layout, tag: str, network: str) -> None:
    for config, components in (
        (cluster, ("openresty", "redis")),
        (single, ("openresty", "echo", "redis")),
    ):
        for component in components:
            subprocess.run(
                config.compose_argv(component, "down", "-v"),
                cwd=Path(config.root) / component,
                capture_output=True,
            )
    subprocess.run(["docker", "rm", "-f", f"{tag}-static"], capture_output=True)
    subprocess.run(["docker", "network", "rm", network], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per target")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2, help="runs per target, alternated")
    args = parser.parse_args()
    single, cluster, static = run(args)
    print(
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency {PATH}, "
        f"{args.rounds} rotated runs per target, mean"
    )
    print(f"{'target':<34}{'requests/s':>12}{'p99 ms':>10}")
    for name, fig in (
        ("router, one Redis", single),
        ("router, Redis Cluster (6 nodes)", cluster),
        ("static nginx (ceiling)", static),
    ):
        print(f"{name:<34}{fig.rps:>12.0f}{fig.p99_ms:>10.2f}")
    print(
        f"cluster/single: {cluster.rps / single.rps:.1%} of requests/s, "
        f"p99 x{cluster.p99_ms / single.p99_ms:.2f} (goal: within 10%)"
    )
    print(
        f"single/ceiling: {single.rps / static.rps:.1%} of requests/s, "
        f"p99 x{single.p99_ms / static.p99_ms:.2f}"
    )


if __name__ == "__main__":
    main()
