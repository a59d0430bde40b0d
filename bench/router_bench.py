"""Router vs. ceiling: wrk against OpenResty routing through Redis (route table cache warm)
and against a static nginx proxy_pass to the same echo backends, in the same run.

Starts the three compose projects of playbooks/files (docker-compose v1 or v2) and the static
nginx on a network of its own, on loopback only, and removes everything at the end.

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
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provision.cluster.layout import Layout  # noqa: E402
from provision.cluster.routes import RouteTable  # noqa: E402
from provision.connection.local import LocalConnection  # noqa: E402

FILES = ROOT / "playbooks" / "files"
STATIC_CONF = ROOT / "bench" / "static-nginx.conf"
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


def _rounds(router: str, static: str, args: argparse.Namespace) -> tuple[Figures, Figures]:
    """Alternate the targets (ABBA...) and average: on a small machine, whichever runs second
    meets a warmer (or busier) host, and one pair of runs is mostly noise."""
    runs: dict[str, list[Figures]] = {router: [], static: []}
    for i in range(args.rounds):
        for url in (router, static) if i % 2 == 0 else (static, router):
            runs[url].append(wrk(url, args))

    def mean(figures: list[Figures]) -> Figures:
        return Figures(
            sum(f.rps for f in figures) / len(figures),
            sum(f.p99_ms for f in figures) / len(figures),
        )

    return mean(runs[router]), mean(runs[static])


def _stage(root: Path, network: str, port: int) -> None:
    (root / "secrets").mkdir()
    secret = root / "secrets" / "redis.env"
    secret.write_text(f"REDIS_PASSWORD={secrets.token_hex(16)}\n")
    secret.chmod(0o600)
    for component in ("redis", "echo", "openresty"):
        shutil.copytree(FILES / component, root / component)
        (root / component / ".env").write_text(
            f"NETWORK={network}\nSECRETS_DIR={root / 'secrets'}\nHTTP_BIND=127.0.0.1\n"
            f"HTTP_PORT={port}\n"
        )


def run(args: argparse.Namespace) -> tuple[Figures, Figures]:
    tag = f"prvbench-{secrets.token_hex(3)}"
    network, router_port, static_port = f"{tag}-net", _free_port(), _free_port()
    config = Layout(
        network=network,
        root="",
        redis_project=f"{tag}-redis",
        openresty_project=f"{tag}-openresty",
        echo_project=f"{tag}-echo",
        compose=_compose_command(),
        sudo=False,
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = dataclasses.replace(config, root=tmp, secrets_dir=str(root / "secrets"))
        _stage(root, network, router_port)
        try:
            subprocess.run(
                ["docker", "network", "create", "--label", LABEL, network],
                check=True,
                capture_output=True,
            )
            for component in ("redis", "echo", "openresty"):
                subprocess.run(
                    config.compose_argv(component, "up", "-d"),
                    cwd=root / component,
                    check=True,
                    capture_output=True,
                )
            subprocess.run(
                [
                    "docker",
                    "run",
                    "-d",
                    "--name",
                    f"{tag}-static",
                    "--label",
                    LABEL,
                    "--network",
                    network,
                    "-p",
                    f"127.0.0.1:{static_port}:80",
                    "-v",
                    f"{STATIC_CONF}:/usr/local/openresty/nginx/conf/nginx.conf:ro",
                    "openresty/openresty:latest",
                ],
                check=True,
                capture_output=True,
            )
            with LocalConnection() as conn, RouteTable(conn, config) as table:
                table.add_route("/bench", "bench-echo", ["echo-a:80", "echo-b:80"])
            router, static = f"http://127.0.0.1:{router_port}", f"http://127.0.0.1:{static_port}"
            _wait_ok(router + PATH)
            _wait_ok(static + PATH)
            return _rounds(router + PATH, static + PATH, args)
        finally:
            _cleanup(root, config, tag, network)


def _cleanup(root: Path, config: Layout, tag: str, network: str) -> None:
    for component in ("openresty", "echo", "redis"):
        subprocess.run(
            config.compose_argv(component, "down", "-v"), cwd=root / component, capture_output=True
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
    router, static = run(args)
    print(
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency {PATH}, "
        f"{args.rounds} alternated runs per target, mean"
    )
    print(f"{'target':<28}{'requests/s':>12}{'p99 ms':>10}")
    print(f"{'router (Lua + Redis table)':<28}{router.rps:>12.0f}{router.p99_ms:>10.2f}")
    print(f"{'static nginx (ceiling)':<28}{static.rps:>12.0f}{static.p99_ms:>10.2f}")
    print(
        f"router/ceiling: {router.rps / static.rps:.1%} of requests/s, "
        f"p99 x{router.p99_ms / static.p99_ms:.2f}"
    )


if __name__ == "__main__":
    main()
