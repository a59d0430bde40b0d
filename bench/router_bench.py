"""Where the router's time goes: a ladder of targets in the same run, wrk against each, the
same echo backends behind all of them:

1. static nginx ``proxy_pass`` (no Lua): the ceiling;
2. ``balancer_by_lua`` that only sets a fixed peer (bench/fixed-peer-nginx.conf): the
   practical limit of any Lua-balanced router; and the same peer chosen in ``access_by_lua``
   (bench/fixed-access-nginx.conf): what a second Lua phase costs by itself;
3. the router with its table cached (``ROUTES_CACHE_TTL`` of a day: Redis read once);
4. the full router (the table read from Redis every 2 s, as deployed);

rungs 3 and 4 in both Redis modes: one Redis, and a six-node Redis Cluster (redis_mode:
cluster, the template `provision up` renders).

Starts the compose projects of playbooks/files (docker-compose v1 or v2) and the extra
containers on a network of their own, on loopback only, and removes everything at the end.
The last line is ``single/ceiling: <p>% of requests/s`` (the full router with one Redis
against static nginx).

    python bench/router_bench.py [--duration 10] [--threads 2] [--connections 32] [--rounds 2]
                                 [--pin 0:1] [--variant NAME=NGINX_CONF[,LUA_DIR] ...]
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
FIXED_CONF = ROOT / "bench" / "fixed-peer-nginx.conf"
ACCESS_CONF = ROOT / "bench" / "fixed-access-nginx.conf"
TARGETS = ("static", "fixed", "fixed-access", "single-cached", "single", "cluster-cached",
           "cluster")  # fmt: skip
CLUSTER_TEMPLATE = ROOT / "playbooks" / "templates" / "redis-cluster.yml.j2"
LABEL = "io.provision.bench=1"
PATH = "/bench/echo"


@dataclass(frozen=True)
class Figures:
    rps: float
    p99_ms: float
    #: CPU time of the proxy's own container per request served, in microseconds (0 when the
    #: engine's cgroup counters cannot be read): the proxy container only (wrk, the backends
    #: and Redis, which the full router asks every 2 s, left out), far steadier from run to
    #: run than requests/s on a busy machine
    cpu_us: float = 0.0
    requests: int = 0


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
    """Requests/s, the 99th percentile latency and the count of requests from ``wrk
    --latency`` output."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    count = re.search(r"^\s*(\d+) requests in ", output, re.M)
    if not rps or not p99 or not count:
        raise SystemExit(f"cannot read wrk output:\n{output}")
    return Figures(float(rps.group(1)), _to_ms(p99.group(1)), requests=int(count.group(1)))


#: Where the engine keeps a container's CPU time (nanoseconds, or cpu.stat's usage_usec):
#: cgroup v1 with the cgroupfs driver and with systemd's, v2 with cgroupfs and with systemd's.
_CPU_FILES = (
    "/sys/fs/cgroup/cpuacct/docker/{id}/cpuacct.usage",
    "/sys/fs/cgroup/cpuacct/system.slice/docker-{id}.scope/cpuacct.usage",
    "/sys/fs/cgroup/docker/{id}/cpu.stat",
    "/sys/fs/cgroup/system.slice/docker-{id}.scope/cpu.stat",
)


def cpu_ns(container_id: str) -> int | None:
    """A container's CPU time so far (user and system, every process in it), or None."""
    for pattern in _CPU_FILES:
        path = Path(pattern.format(id=container_id))
        if path.exists():
            text = path.read_text()
            if path.name == "cpuacct.usage":
                return int(text)
            found = re.search(r"^usage_usec (\d+)", text, re.M)
            return int(found.group(1)) * 1000 if found else None
    return None


def _publisher(port: int) -> str:
    """The full ID of the container that publishes ``port``."""
    found = subprocess.run(["docker", "ps", "-q", "--no-trunc", "--filter", f"publish={port}"],
                           capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    if len(found) != 1:
        raise SystemExit(f"not one container publishes port {port}: {found}")
    return found[0]


def measured(url: str, container_id: str, args: argparse.Namespace) -> Figures:
    """``wrk`` against ``url``, with the CPU time ``container_id`` spent meanwhile."""
    before = cpu_ns(container_id)
    figures = wrk(url, args)
    after = cpu_ns(container_id)
    if before is None or after is None or not figures.requests:
        return figures
    return dataclasses.replace(figures, cpu_us=(after - before) / 1000 / figures.requests)


def wrk(url: str, args: argparse.Namespace) -> Figures:
    pin = ["taskset", "-c", args.pin[0]] if args.pin else []
    argv = [
        *pin,
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
    cpu = [f.cpu_us for f in figures if f.cpu_us]  # a run whose counter could not be read: none
    return Figures(
        sum(f.rps for f in figures) / len(figures),
        sum(f.p99_ms for f in figures) / len(figures),
        sum(cpu) / len(cpu) if cpu else 0.0,
        sum(f.requests for f in figures),
    )


def _rounds(targets: dict[str, str], args: argparse.Namespace) -> list[Figures]:
    """``targets``: url -> the proxy's container. Rotate the targets (ABC, CBA, ...) and
    average: on a small machine, whichever runs later meets a warmer (or busier) host, and
    one run per target is mostly noise."""
    urls = list(targets)
    runs: dict[str, list[Figures]] = {url: [] for url in urls}
    for i in range(args.rounds):
        for url in urls if i % 2 == 0 else list(reversed(urls)):
            runs[url].append(measured(url, targets[url], args))
    return [_mean(runs[url]) for url in urls]


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


def _docker_run(tag: str, name: str, network: str, port: int, *options: str) -> None:
    subprocess.run(
        ["docker", "run", "-d", "--name", f"{tag}-{name}", "--label", LABEL,
         "--network", network, "-p", f"127.0.0.1:{port}:80", *options,
         "openresty/openresty:latest"],
        check=True, capture_output=True,
    )  # fmt: skip


def _address(config: Layout, service: str, network: str) -> str:
    """The address of the compose service's container on ``network``."""
    found = subprocess.run(
        ["docker", "ps", "-q",
         "--filter", f"label=com.docker.compose.project={config.echo_project}",
         "--filter", f"label=com.docker.compose.service={service}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    template = f'{{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}'
    return subprocess.run(["docker", "inspect", "-f", template, found[0]], capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip


def _cached_router(
    tag: str, config: Layout, network: str, port: int, secret: Path, *,
    name: str = "", nginx_conf: Path | None = None, lua: Path | None = None,
) -> None:  # fmt: skip
    """A second router of ``config``'s mode whose table, once read, is kept for a day (with
    another nginx.conf or Lua folder: a ``--variant``)."""
    files = FILES / "openresty"
    nginx_conf, lua = nginx_conf or files / "nginx.conf", lua or files / "lua"
    env = {"REDIS_HOST": "redis", "REDIS_PORT": "6379", "ROUTES_CACHE_TTL": "86400",
           "REDIS_PASSWORD_FILE": "/run/secrets/redis_env"}  # fmt: skip
    if config.cluster:
        env.update(REDIS_NODES=config.as_vars()["redis_nodes"], REDIS_KEY_PREFIX=config.key_prefix)
    _docker_run(
        tag, name or f"{config.redis_mode}-cached", network, port,
        "-v", f"{nginx_conf}:/usr/local/openresty/nginx/conf/nginx.conf:ro",
        "-v", f"{lua}:/usr/local/openresty/lua:ro",
        "-v", f"{secret}:/run/secrets/redis_env:ro",
        *[arg for k, v in env.items() for arg in ("-e", f"{k}={v}")],
    )  # fmt: skip


def make_secret(root: Path) -> Path:
    """``root/secrets/redis.env``: a fresh Redis password, readable by its owner only."""
    (root / "secrets").mkdir()
    secret = root / "secrets" / "redis.env"
    secret.write_text(f"REDIS_PASSWORD={secrets.token_hex(16)}\n")
    secret.chmod(0o600)
    return secret


def make_network(network: str) -> None:
    subprocess.run(["docker", "network", "create", "--label", LABEL, network], check=True,
                   capture_output=True)  # fmt: skip


def _containers(tag: str) -> list[str]:
    """Every container of this bench: all are named ``tag-...`` (routers, backends, Redis)."""
    return subprocess.run(["docker", "ps", "-aq", "--filter", f"name={tag}-"],
                          capture_output=True, text=True, check=True).stdout.split()  # fmt: skip


def _cpus(text: str) -> tuple[str, str]:
    """``--pin WRK_CPUS:SERVER_CPUS`` -> (wrk's CPUs, the servers' CPUs)."""
    wrk_cpus, sep, server_cpus = text.partition(":")
    if not (sep and wrk_cpus and server_cpus):
        raise argparse.ArgumentTypeError(f"{text!r}: WRK_CPUS:SERVER_CPUS, e.g. 0:1")
    return wrk_cpus, server_cpus


def _variants(args: argparse.Namespace) -> dict[str, tuple[Path, Path | None]]:
    """``--variant NAME=NGINX_CONF[,LUA_DIR]``: name -> (nginx.conf, Lua folder or None)."""
    found: dict[str, tuple[Path, Path | None]] = {}
    for text in args.variant:
        name, _, paths = text.partition("=")
        conf, _, lua = paths.partition(",")
        if not name or not Path(conf).is_file() or (lua and not Path(lua).is_dir()):
            raise SystemExit(f"--variant {text!r}: NAME=NGINX_CONF[,LUA_DIR], existing paths")
        found[name] = (Path(conf).resolve(), Path(lua).resolve() if lua else None)
    return found


def run(args: argparse.Namespace) -> dict[str, Figures]:
    tag = f"prvbench-{secrets.token_hex(3)}"
    network = f"{tag}-net"
    variants = _variants(args)
    targets = [*TARGETS, *variants]
    ports = {name: _free_port() for name in targets}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        single, cluster = _layouts(tag, network, root)
        secret = make_secret(root)
        for config, name in ((single, "single"), (cluster, "cluster")):
            Path(config.root).mkdir()
            _stage(Path(config.root), config, network, root / "secrets", ports[name])
        try:
            make_network(network)
            _up(Path(single.root), single, network)
            _up(Path(cluster.root), cluster, network)
            conf = "/usr/local/openresty/nginx/conf/nginx.conf"
            _docker_run(tag, "static", network, ports["static"], "-v", f"{STATIC_CONF}:{conf}:ro")
            peers = " ".join(f"{_address(single, s, network)}:80" for s in ("echo-a", "echo-b"))
            for name, recipe in (("fixed", FIXED_CONF), ("fixed-access", ACCESS_CONF)):
                _docker_run(tag, name, network, ports[name], "-v", f"{recipe}:{conf}:ro",
                            "-e", f"ECHO_PEERS={peers}")  # fmt: skip
            for config in (single, cluster):
                name = f"{config.redis_mode}-cached"
                _cached_router(tag, config, network, ports[name], secret)
            for name, (nginx_conf, lua) in variants.items():
                _cached_router(tag, single, network, ports[name], secret, name=name,
                               nginx_conf=nginx_conf, lua=lua)  # fmt: skip
            urls = [f"http://127.0.0.1:{ports[n]}{PATH}" for n in targets]
            for url in urls:
                _wait_ok(url)
            if args.pin:
                subprocess.run(["docker", "update", "--cpuset-cpus", args.pin[1],
                                *_containers(tag)], capture_output=True, check=True)  # fmt: skip
            proxies = {url: _publisher(ports[n]) for url, n in zip(urls, targets, strict=True)}
            return dict(zip(targets, _rounds(proxies, args), strict=True))
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
    left = _containers(tag)  # the ones docker run started (the compose projects are down)
    if left:
        subprocess.run(["docker", "rm", "-f", *left], capture_output=True)
    subprocess.run(["docker", "network", "rm", network], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per target")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2, help="runs per target, alternated")
    parser.add_argument(
        "--pin",
        type=_cpus,
        metavar="WRK_CPUS:SERVER_CPUS",
        help="wrk on these CPUs, every container of the bench on those (e.g. 0:1): the load "
        "generator then takes no CPU from what it measures",
    )
    parser.add_argument(
        "--variant", action="append", default=[], metavar="NAME=NGINX_CONF[,LUA_DIR]",
        help="one more rung: the table-cached router (one Redis) with this nginx.conf "
        "(and Lua folder), to try a change side by side with the ladder",
    )  # fmt: skip
    args = parser.parse_args()
    got = run(args)
    print(
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency {PATH}, "
        f"{args.rounds} rotated runs per target, mean"
        + (f"; wrk on CPU {args.pin[0]}, the servers on CPU {args.pin[1]}" if args.pin else "")
    )  # fmt: skip
    static = got["static"]
    print(f"{'rung':<44}{'requests/s':>12}{'p99 ms':>10}{'of static':>11}{'proxy CPU us/req':>18}")
    names = {
        "static": "1. static nginx proxy_pass (ceiling)",
        "fixed": "2. balancer_by_lua, fixed peer (limit)",
        "fixed-access": "2. the same, chosen in access_by_lua",
        "single-cached": "3. router, table cached, one Redis",
        "single": "4. router, full, one Redis",
        "cluster-cached": "3. router, table cached, Redis Cluster",
        "cluster": "4. router, full, Redis Cluster (6 nodes)",
    }
    names.update({key: f"+ {key} (--variant)" for key in got if key not in names})
    for key, name in names.items():
        fig = got[key]
        cpu = f"{fig.cpu_us:.1f}" if fig.cpu_us else "-"
        print(
            f"{name:<44}{fig.rps:>12.0f}{fig.p99_ms:>10.2f}{fig.rps / static.rps:>11.1%}{cpu:>18}"
        )
    fixed, single, cluster = got["fixed"], got["single"], got["cluster"]
    print(
        f"single/limit: {single.rps / fixed.rps:.1%}, cluster/limit: {cluster.rps / fixed.rps:.1%}"
        f", cluster/ceiling: {cluster.rps / static.rps:.1%} of requests/s (goal: 95% of static)"
    )
    if static.cpu_us:
        extra = ", ".join(f"{key} {got[key].cpu_us - static.cpu_us:+.1f}" for key in got
                          if key != "static" and got[key].cpu_us)  # fmt: skip
        print(f"proxy CPU per request: static {static.cpu_us:.1f} us; over static (us): {extra}")
    print(f"single/ceiling: {single.rps / static.rps:.1%} of requests/s")


if __name__ == "__main__":
    main()
