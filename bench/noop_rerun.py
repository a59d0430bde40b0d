"""Benchmark: a no-op `provision up` on a converged host, against a bash baseline that makes
the same checks over one ssh session (bench/noop_baseline.sh), run side by side, interleaved.

    python3 bench/noop_rerun.py [--runs 7]

Starts one EC2-like sandbox host (needs the local Docker engine), converges it once (not
timed), then times RUNS rounds of: `provision up --host ...` (the whole CLI process: Python
start-up, SSH connect, facts, every task, the first verification checks) and the baseline.
Also counts the SSH connections one no-op run opens, from the host's sshd log. Prints the
medians and the ratio; removes the host at the end.

provision is timed twice per round: as installed (Python's default: the modules' bytecode
cached, as `pip install` leaves it; here under a temporary PYTHONPYCACHEPREFIX so that the
checkout stays clean) and with PYTHONDONTWRITEBYTECODE=1, which this machine's environment
sets: then every start compiles provision's sources again (about 0.1 s here).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from provision.sandbox import hosts, images  # noqa: E402


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
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
        installed = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        installed["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        uncached = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        print("converging the host once (not timed)...", flush=True)
        timed(provision, installed)
        timed(provision, installed)  # a second run: handlers of the first are done, all warm
        before = ssh_logins(host)
        timed(provision, installed)
        connections = ssh_logins(host) - before
        ours, compiling, theirs = [], [], []
        for _ in range(runs):
            ours.append(timed(provision, installed))
            compiling.append(timed(provision, uncached))
            theirs.append(timed(baseline))
        report(ours, compiling, theirs, connections)
        events = work / "events.jsonl"
        started = time.time()
        timed([*provision, "--events", str(events)], installed)
        breakdown(started, events)
    finally:
        hosts.remove_host(host.name)


def report(
    ours: list[float], compiling: list[float], theirs: list[float], connections: int
) -> None:
    mine, cold, base = (statistics.median(t) for t in (ours, compiling, theirs))
    print(f"no-op `provision up` : median {mine:.2f}s  (runs: {_runs(ours)})")
    print(f"  sources compiled   : median {cold:.2f}s  (runs: {_runs(compiling)})")
    print(f"bash baseline        : median {base:.2f}s  (runs: {_runs(theirs)})")
    print(f"SSH connections opened by one no-op run: {connections}")
    print(f"ratio provision/baseline: {mine / base:.2f}x (goal: <= 1.5x); "
          f"with PYTHONDONTWRITEBYTECODE=1: {cold / base:.2f}x")  # fmt: skip


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
