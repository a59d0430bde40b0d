"""Benchmark: how fast `provision --help` answers (goal: under 0.3 s), beside two references
run in the same go: the bare interpreter (the floor) and the imports the CLI defers (boto3,
paramiko, rich), which it would pay if it imported them at start.

    python3 bench/cli_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "provision --help": [shutil.which("provision") or "provision", "--help"],
    "python -m provision.cli --help": [sys.executable, "-m", "provision.cli", "--help"],
    "python -c pass (floor)": [sys.executable, "-c", "pass"],
    "python -c 'import boto3, paramiko, rich.console' (deferred)": [
        sys.executable,
        "-c",
        "import boto3, paramiko, rich.console",
    ],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(runs):  # interleaved, so that noise hits every command alike
        for name, argv in COMMANDS.items():
            started = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True)
            times[name].append(time.perf_counter() - started)
    for name, values in times.items():
        print(
            f"{name:<60} median {statistics.median(values) * 1000:6.0f} ms  "
            f"(min {min(values) * 1000:.0f})"
        )
    help_ms = statistics.median(times["provision --help"]) * 1000
    verdict = "ok" if help_ms < 300 else "over"
    print(f"provision --help: {help_ms:.0f} ms, goal < 300 ms: {verdict}")


if __name__ == "__main__":
    main()
