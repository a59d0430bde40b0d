"""Benchmark: the time of a sandbox ``provision up`` with the realism layer on (the default)
beside the same ``up`` with it off (``PROVISION_SANDBOX_REALISM=0``), in one go, alternating
so that the machine's noise hits both alike. Each round is ``up`` then ``down`` of a uniquely
named cluster in a scratch folder; only the ``up`` is timed. Docker-ready hosts with the
service images preloaded, as the tests run them.

    python3 bench/sandbox_realism.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from provision.sandbox.cloud import DOCKER_READY_ENV, PRELOADED_ENV
from provision.sandbox.realism import REALISM_ENV

PROVISION = shutil.which("provision") or "provision"


def one_up(folder: Path, realism: bool) -> float:
    name = f"bench-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, DOCKER_READY_ENV: "1", PRELOADED_ENV: "1",
           REALISM_ENV: "1" if realism else "0"}  # fmt: skip
    args = ["-e", f"cluster_name={name}"]
    started = time.perf_counter()
    try:
        subprocess.run([PROVISION, "up", *args], cwd=folder, env=env, check=True,
                       capture_output=True, timeout=900)  # fmt: skip
        return time.perf_counter() - started
    finally:
        subprocess.run([PROVISION, "down", *args], cwd=folder, env=env, check=False,
                       capture_output=True, timeout=900)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    times: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory(prefix="provision-bench-") as tmp:
        folder = Path(tmp)
        one_up(folder, True)  # warm-up: images, the seed, the moto server's first start
        for _ in range(rounds):
            for realism in (True, False):
                times[realism].append(one_up(folder, realism))
    on, off = statistics.median(times[True]), statistics.median(times[False])
    for label, values in (("realism on ", times[True]), ("realism off", times[False])):
        print(f"{label}: median {statistics.median(values):6.1f} s  "
              f"({', '.join(f'{v:.1f}' for v in values)})")  # fmt: skip
    print(f"on/off ratio: {on / off:.2f}")


if __name__ == "__main__":
    main()
