"""Benchmark: a cold `provision up`, from no instance to a verified cluster, on the sandbox
under a profile of EC2's boot (``PROVISION_SANDBOX_TIMINGS=ec2[:scale]``: pending -> running
~18 s, the status checks passing ~2.5 min after launch, apt-daily holding the package lists'
lock at boot), as published by default (``--scale 1``); ``--scale`` below 1 shortens it, at
the price of hiding part of what the status-check wait costs.

Three paths, alternated round by round so that the machine's noise hits them alike:

- ``ssh``: the path before #25: wait for EC2's status checks, then install Docker over SSH
  (``-e wait_status_checks=true -e docker_at_boot=false``);
- ``user-data``: the default: no status-check wait, Docker installed by the user-data while
  the instance boots;
- ``docker-ready``: an image that ships Docker (the sandbox's Docker-ready host image, as an
  AMI that has it): nothing to install.

Bare hosts for the first two (Docker comes from Debian's packages), the service images sent
from here in all three (``transfer_images``). Each run is ``up`` then ``down`` of a uniquely
named cluster in its own scratch folder; only ``up`` is timed; its phases come from its
``--json`` report. Prints a table (median seconds per phase and in all), then exactly:
``cold start: user-data <median>s vs ssh <median>s (ratio <r>)``.

    python3 bench/cold_start.py [--rounds 3] [--scale 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from provision.sandbox.cloud import DOCKER_READY_ENV, PRELOADED_ENV  # noqa: E402
from provision.sandbox.realism import TIMINGS_ENV  # noqa: E402

PATHS = {
    "ssh": ["-e", "wait_status_checks=true", "-e", "docker_at_boot=false"],
    "user-data": [],
    "docker-ready": [],
}
PHASES = ("RunInstances", "pending -> running", "SSH answering", "cloud-init done",
          "Docker ready", "images in place", "projects started", "verified")  # fmt: skip


def one_up(path: str, scale: float) -> tuple[float, dict[str, float]]:
    name = f"cold-{uuid.uuid4().hex[:6]}"
    env = {k: v for k, v in os.environ.items() if k not in (DOCKER_READY_ENV, PRELOADED_ENV)}
    env[TIMINGS_ENV] = f"ec2:{scale:g}"
    # This checkout's code, whatever `pip install -e` last pointed at.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    if path == "docker-ready":
        env[DOCKER_READY_ENV] = "1"
    args = ["-e", f"cluster_name={name}", *PATHS[path]]
    cli = [sys.executable, "-m", "provision.cli"]
    with tempfile.TemporaryDirectory(prefix="provision-cold-") as folder:
        started = time.perf_counter()
        try:
            done = subprocess.run([*cli, "up", *args, "--json"], cwd=folder, env=env,
                                  capture_output=True, text=True, timeout=1800)  # fmt: skip
            elapsed = time.perf_counter() - started
            if done.returncode != 0:
                raise SystemExit(f"{path}: up failed:\n{done.stderr[-3000:]}")
            phases = {p["phase"]: p["seconds"] for p in json.loads(done.stdout)["phases"]}
            return elapsed, phases
        finally:
            subprocess.run([*cli, "down", *args], cwd=folder, env=env, check=False,
                           capture_output=True, timeout=1800)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="of EC2's boot timings")
    opts = parser.parse_args()
    totals: dict[str, list[float]] = {p: [] for p in PATHS}
    phases: dict[str, dict[str, list[float]]] = {p: {} for p in PATHS}
    for n in range(opts.rounds):
        for path in PATHS:
            elapsed, seen = one_up(path, opts.scale)
            totals[path].append(elapsed)
            for phase, seconds in seen.items():
                phases[path].setdefault(phase, []).append(seconds)
            print(f"round {n + 1} {path:12} {elapsed:6.1f} s  {seen}", flush=True)
    print(f"\nEC2 boot profile at scale {opts.scale:g}; medians of {opts.rounds} rounds (s)")
    print(f"{'phase':20}" + "".join(f"{p:>14}" for p in PATHS))
    for phase in PHASES:
        cells = [statistics.median(phases[p][phase]) if phase in phases[p] else None
                 for p in PATHS]  # fmt: skip
        print(f"{phase:20}" + "".join(f"{c:14.1f}" if c is not None else f"{'-':>14}"
                                      for c in cells))  # fmt: skip
    medians = {p: statistics.median(v) for p, v in totals.items()}
    print(f"{'whole up':20}" + "".join(f"{medians[p]:14.1f}" for p in PATHS))
    ratio = medians["user-data"] / medians["ssh"]
    print(f"cold start: user-data {medians['user-data']:.1f}s vs ssh {medians['ssh']:.1f}s "
          f"(ratio {ratio:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
