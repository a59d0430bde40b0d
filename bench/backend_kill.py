"""Reliability: one of two echo backends killed (``docker kill``) under ``wrk -t2 -c32 -d12s``
through a route to both, RUNS times; each run's requests, non-2xx answers and socket errors
as wrk counts them. Goal: no non-2xx answer and no error in any run (a GET whose endpoint
dies is retried on the other one; the dead one is marked down).

Starts the compose projects of playbooks/files (one Redis, the echo backends, the router) on
a network of their own, on loopback only (router_bench.py's staging), and removes everything
at the end. The last line is ``backend killed: <n> non-2xx in <runs> runs``.

    python bench/backend_kill.py [--runs 3] [--duration 12] [--kill-after 4]
"""

from __future__ import annotations

import argparse
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.router_bench import (  # noqa: E402
    PATH,
    _free_port,
    _layouts,
    _stage,
    _up,
    _wait_ok,
    make_network,
    make_secret,
)


def _container(project: str, service: str) -> str:
    return subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}",
         "--filter", f"label=com.docker.compose.service={service}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()[0]  # fmt: skip


def one_run(url: str, echo_a: str, args: argparse.Namespace) -> tuple[int, int, int]:
    """wrk through the route while echo-a is killed ``kill_after`` seconds in: requests,
    non-2xx answers, socket errors."""
    killer = threading.Timer(args.kill_after, lambda: subprocess.run(
        ["docker", "kill", echo_a], capture_output=True))  # fmt: skip
    killer.start()
    done = subprocess.run(["wrk", "-t2", "-c32", f"-d{args.duration}s", url],
                          capture_output=True, text=True, check=True)  # fmt: skip
    killer.join()
    running = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", echo_a],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    if running != "false":
        raise SystemExit("echo-a was not killed during the run: the run proves nothing")
    out = done.stdout
    requests = int(re.search(r"(\d+) requests in", out)[1])  # type: ignore[index]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return (requests, int(non_2xx[1]) if non_2xx else 0,
            sum(int(g) for g in errors.groups()) if errors else 0)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=12, help="seconds of wrk per run")
    parser.add_argument("--kill-after", type=float, default=4.0, help="seconds into each run")
    args = parser.parse_args()
    tag = f"prvkill-{secrets.token_hex(3)}"
    network, port = f"{tag}-net", _free_port()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        single, _ = _layouts(tag, network, root)
        make_secret(root)
        Path(single.root).mkdir()
        _stage(Path(single.root), single, network, root / "secrets", port)
        try:
            make_network(network)
            _up(Path(single.root), single, network)
            url = f"http://127.0.0.1:{port}{PATH}"
            echo_a = _container(single.echo_project, "echo-a")
            for _ in range(args.runs):
                subprocess.run(["docker", "start", echo_a], check=True, capture_output=True)
                _wait_ok(url)
                time.sleep(4)  # echo-a's down mark (3 s) has passed: both endpoints in turn
                rows.append(one_run(url, echo_a, args))
        finally:
            for component in ("openresty", "echo", "redis"):
                subprocess.run(single.compose_argv(component, "down", "-v"),
                               cwd=Path(single.root) / component, capture_output=True)  # fmt: skip
            subprocess.run(["docker", "network", "rm", network], capture_output=True)
    print(f"wrk -t2 -c32 -d{args.duration}s {PATH}, echo-a killed {args.kill_after:g} s in")
    print(f"{'run':<6}{'requests':>10}{'non-2xx':>10}{'socket errors':>15}")
    for i, (requests, non_2xx, errors) in enumerate(rows, 1):
        print(f"{i:<6}{requests:>10}{non_2xx:>10}{errors:>15}")
    total = sum(r[1] + r[2] for r in rows)
    print(f"backend killed: {total} non-2xx in {len(rows)} runs")


if __name__ == "__main__":
    main()
