"""Benchmark: a no-op `provision up` on a converged host, against a bash baseline that makes
the same checks over one ssh session (bench/noop_baseline.sh), run side by side, interleaved.

    python3 bench/noop_rerun.py [--runs 7]

Starts one EC2-like sandbox host (needs the local Docker engine), converges it once (not
timed), then times RUNS rounds of: `provision up --host ...` (the whole CLI process: Python
start-up, SSH connect, facts, every task, the first verification checks) and the baseline.
Also counts the SSH connections one no-op run opens, from the host's sshd log. Prints the
medians and the ratio; removes the host at the end.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from provision.sandbox import hosts, images  # noqa: E402


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} failed:\n{done.stdout}\n{done.stderr}")
    return elapsed


def ssh_logins(host: hosts.SandboxHost) -> int:
    log = subprocess.run(
        [
            "docker",
            "exec",
            host.container_name,
            "journalctl",
            "-u",
            "ssh",
            "--no-pager",
            "-o",
            "cat",
        ],
        capture_output=True,
        text=True,
    ).stdout
    return log.count("Accepted publickey")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    images.ensure_images(("bookworm",))
    work = Path(tempfile.mkdtemp(prefix="provision-bench-"))
    key = work / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    host = hosts.start_host(
        f"bench-{int(time.time()) % 100000}",
        public_key=key.with_suffix(".pub").read_text().strip(),
        labels={"io.provision.bench": "1"},
    )
    try:
        hosts.wait_for_ssh(host, timeout=90)
        (work / "known_hosts").write_text(hosts.known_hosts_line(host) + "\n")
        provision = [
            sys.executable,
            "-m",
            "provision.cli",
            "up",
            "--host",
            f"admin@127.0.0.1:{host.port}",
            "--key",
            str(key),
            "--state-dir",
            str(work),
        ]
        baseline = [
            "bash",
            str(ROOT / "bench" / "noop_baseline.sh"),
            str(host.port),
            str(key),
            str(work / "known_hosts"),
            str(ROOT / "playbooks"),
        ]
        print("converging the host once (not timed)...", flush=True)
        timed(provision)
        timed(provision)  # a second run: handlers of the first are done, all is warm
        before = ssh_logins(host)
        timed(provision)
        connections = ssh_logins(host) - before
        ours, theirs = [], []
        for _ in range(runs):
            ours.append(timed(provision))
            theirs.append(timed(baseline))
        report(ours, theirs, connections)
        events = work / "events.jsonl"
        started = time.time()
        timed([*provision, "--events", str(events)])
        breakdown(started, events)
    finally:
        hosts.remove_host(host.name)


def report(ours: list[float], theirs: list[float], connections: int) -> None:
    mine, base = statistics.median(ours), statistics.median(theirs)
    print(f"no-op `provision up` : median {mine:.2f}s  (runs: {_runs(ours)})")
    print(f"bash baseline        : median {base:.2f}s  (runs: {_runs(theirs)})")
    print(f"SSH connections opened by one no-op run: {connections}")
    print(f"ratio provision/baseline: {mine / base:.2f}x (goal: <= 1.5x)")


def breakdown(started: float, events: Path) -> None:
    """Where one no-op run spends its time, from its events."""
    import json

    rows = [json.loads(line) for line in events.read_text().splitlines()]
    results = [r for r in rows if r["event"] == "result"]
    print(
        f"  one run: start-up {rows[0]['time'] - started:.2f}s, last event at "
        f"{rows[-1]['time'] - started:.2f}s; tasks:",
        ", ".join(f"{r['task'][:18]} {r['elapsed']:.2f}" for r in results),
    )
    for r in rows:
        print(f"    {r['time'] - started:5.2f} {r['event']} {r.get('task', r.get('name', ''))}")


def _runs(times: list[float]) -> str:
    return ", ".join(f"{t:.2f}" for t in times)


if __name__ == "__main__":
    main()
