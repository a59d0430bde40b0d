"""Load and soak of the router on a sandbox cluster it stands up and tears down itself.

``provision up`` (a uniquely named sandbox cluster, one host, in a scratch folder), a route to
both echo backends, then a bounded Python load loop (``bench/loadgen.py``: keep-alive, loopback
only) against the host's OpenResty during:

  (a) steady state;
  (b) a route change every second (the route's endpoints alternate between both backends and
      echo-b alone, through the route table's SSH tunnel, as ``provision routes add`` does);
  (c) a Redis restart (``docker restart`` of its container on the host);
  (d) one backend killed (``docker kill`` of echo-a);
  (e) a soak, with the resident memory of the OpenResty workers at its start and end.

It prints a table (requests, non-2xx, 5xx, stale-cache answers, p99) and checks the goals:
0 non-2xx in (a), (b), (d); 0 5xx in (c), every answer fresh or stale-cache; worker memory
within 10% in (e). ``provision down`` runs at the end, also after a failure.

    python bench/load_soak.py [--seconds 10] [--soak 60] [--workers 8]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.loadgen import Load, Tally  # noqa: E402
from provision.api.routes import ClusterRoutes  # noqa: E402
from provision.run.options import Options  # noqa: E402
from provision.sandbox import cloud, localdocker  # noqa: E402

ROUTE = "/api/soak"
BOTH = ["echo-a:80", "echo-b:80"]
WORKERS_RSS = (
    'for d in /proc/[0-9]*; do if grep -qa "nginx: worker" "$d/cmdline" 2>/dev/null; then '
    "awk '/^VmRSS/ {print $2}' \"$d/status\"; fi; done"
)


def cli(cwd: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-m", "provision.cli", *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env,
    )  # fmt: skip


class Host:
    """The sandbox host's engine, through ``docker exec``."""

    def __init__(self, container: str) -> None:
        self.container = container

    def sh(self, *argv: str) -> str:
        return localdocker.docker("exec", self.container, *argv).stdout.strip()

    def service(self, name: str) -> str:
        return self.sh(
            "docker", "ps", "-aq", "--filter", f"label=com.docker.compose.service={name}"
        )

    def workers_rss_kb(self) -> int:
        out = self.sh("docker", "exec", self.service("openresty"), "sh", "-c", WORKERS_RSS)
        return sum(int(v) for v in out.split())


def during(
    url: str, seconds: float, workers: int, act: Callable[[], object] | None = None
) -> Tally:
    """Load for ``seconds``; ``act`` runs a quarter of the way in (in its own thread)."""
    failures: list[BaseException] = []

    def acting() -> None:
        try:
            if act is not None:
                act()
        except BaseException as exc:  # raised again below, in the caller's thread
            failures.append(exc)

    with Load(url, workers=workers, max_seconds=seconds + 30) as load:
        timer = threading.Timer(seconds / 4, acting)
        timer.start()
        time.sleep(seconds)
        timer.join()
    if failures:
        raise failures[0]
    return load.tally


def route_changes(routes: ClusterRoutes, seconds: float, counter: list[int]) -> Callable[[], None]:
    """Change the route every second for ``seconds``: both backends, then echo-b alone."""

    def loop() -> None:
        stop = time.monotonic() + seconds
        while time.monotonic() < stop:
            tick = time.monotonic()
            routes.add(ROUTE, "soak", BOTH if counter[0] % 2 else ["echo-b:80"])
            counter[0] += 1
            time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))

    return loop


def row(name: str, tally: Tally, note: str = "") -> str:
    return (
        f"| {name} | {tally.requests} | {tally.non_2xx} | {tally.server_errors} | "
        f"{tally.sources['stale-cache']} | {tally.p99_ms():.1f} | {note} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of (a) to (d)")
    parser.add_argument("--soak", type=float, default=60.0, help="length of (e)")
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    name = f"soak-{uuid.uuid4().hex[:6]}"
    var = f"cluster_name={name}"
    with tempfile.TemporaryDirectory(prefix="provision-soak-") as tmp:
        cwd = Path(tmp)
        try:
            return run(cwd, name, var, args)
        finally:
            cli(cwd, "down", "-e", var)
            cloud.remove_cluster(name)
            from provision.sandbox.moto_server import stop_server

            stop_server(cloud.sandbox_dir(cwd / ".provision"), forget=True)


def run(cwd: Path, name: str, var: str, args: argparse.Namespace) -> int:
    started = time.monotonic()
    up = cli(cwd, "up", "-e", var, "--json")
    if up.returncode != 0:
        print(up.stderr, file=sys.stderr)
        return 1
    print(f"provision up: {time.monotonic() - started:.0f} s", file=sys.stderr)
    url = json.loads(up.stdout)["resources"]["url"] + ROUTE + "/x"
    (container,) = localdocker.container_ids(f"{cloud.CLUSTER_LABEL}={name}")
    host = Host(container)
    routes = ClusterRoutes(
        None, Options(state_dir=cwd / ".provision", extra_vars={"cluster_name": name})
    )
    routes.add(ROUTE, "soak", BOTH)
    with Load(url, workers=1, max_seconds=30, max_requests=20):
        time.sleep(1)  # the route reaches the router's cache
    s, w = args.seconds, args.workers

    results: list[tuple[str, Tally, str, bool]] = []
    steady = during(url, s, w, None)
    results.append(("(a) steady state", steady, "", steady.non_2xx == 0))

    changes = [0]
    changing = during(url, s, w, route_changes(routes, s * 0.7, changes))
    routes.add(ROUTE, "soak", BOTH)
    results.append(("(b) route change every second", changing, f"{changes[0]} changes",
                    changing.non_2xx == 0))  # fmt: skip

    redis = host.service("redis")
    restart = during(url, s, w, lambda: host.sh("docker", "restart", redis))
    fresh_or_stale = set(restart.sources) <= {"fresh", "stale-cache"}
    results.append(("(c) Redis restart", restart, "answers fresh or stale-cache",
                    restart.server_errors == 0 and fresh_or_stale))  # fmt: skip
    time.sleep(3)

    echo_a = host.service("echo-a")
    killed = during(url, s, w, lambda: host.sh("docker", "kill", echo_a))
    results.append(("(d) one backend killed", killed, "", killed.non_2xx == 0))
    host.sh("docker", "start", echo_a)
    time.sleep(6)  # echo-a healthy again, its down mark expired

    before = host.workers_rss_kb()
    soak = during(url, args.soak, w, None)
    after = host.workers_rss_kb()
    growth = (after - before) / before if before else 0.0
    results.append((f"(e) {args.soak:.0f} s soak", soak,
                    f"workers' RSS {before / 1024:.1f} -> {after / 1024:.1f} MiB ({growth:+.1%})",
                    soak.non_2xx == 0 and abs(growth) <= 0.10))  # fmt: skip

    print(
        f"\nprovision bench/load_soak.py: {w} workers, {s:.0f} s per case, sandbox cluster {name}\n"
    )
    print("| case | requests | non-2xx | 5xx | stale-cache | p99 ms | note |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for label, tally, note, _ in results:
        print(row(label, tally, note))
    met = all(ok for *_, ok in results)
    print("\ngoals:", "met" if met else "NOT met: " + ", ".join(r[0] for r in results if not r[3]))
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
