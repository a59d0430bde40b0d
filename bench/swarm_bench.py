"""Benchmark: a swarm of N=3 against N=1, side by side in one run, on EC2-like sandbox hosts.

    python3 bench/swarm_bench.py

Starts three sandbox hosts on one network of the local engine (as the sandbox's swarm does),
converges them once into a swarm (not timed: installs Docker, sends the images), then times:

1. **cold converge**, hosts that already have Docker and the images (after `provision down`:
   no swarm, no stacks, no network, no volume): `provision up` of the swarm on 3 hosts, then on
   1 host (the parallel part: swarm init/join, labels, network, uploads, stacks, verification);
2. **image distribution** (the `docker_images` task's own time, from `--json`), the images
   removed from the hosts first: to 3 hosts (the controller sends to the manager, which relays
   to the two others), to 1 host, and, for reference, to 3 hosts the old way (the controller
   sends to each host: a one-task playbook without ``nodes``).

Prints the figures and both ratios (3 hosts / 1 host). Removes the hosts, their volumes and the
network at the end, also on failure.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from provision.sandbox import cloud, hosts, images  # noqa: E402

IMAGES = ["redis:latest", "openresty/openresty:latest"]
OLD_WAY = """- name: Images, from the controller to every host
  hosts: cluster
  become: true
  gather_facts: false
  tasks:
    - name: Images
      docker_images:
        images: ["redis:latest", "openresty/openresty:latest"]
"""


def inventory(path: Path, name: str, started: list[hosts.SandboxHost], key: Path) -> Path:
    lines = ["all:", "  vars:", "    cloud: none", f"    cluster_name: {name}",
             "    region: us-east-1", "    instance_type: t3.small", "    image: debian-12",
             "    ttl: 4h", "    http_cidr: 127.0.0.1/32", "    transfer_images: true",
             "    topology: swarm", f"    instance_count: {len(started)}",
             "  children:", "    cluster:", "      hosts:"]  # fmt: skip
    for i, host in enumerate(started, 1):
        lines.append(f"        node{i}: {{ansible_host: 127.0.0.1, ansible_port: {host.port}, "
                     f"ansible_user: admin, ansible_ssh_private_key_file: '{key}'}}")  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return path


def provision(state: Path, *args: str) -> tuple[float, dict]:
    """``provision ARGS --json``: (wall seconds, the report)."""
    argv = [sys.executable, "-m", "provision.cli", *args, "--state-dir", str(state), "--json"]
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=1200)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"provision {' '.join(args)} failed:\n{done.stderr[-4000:]}")
    return elapsed, json.loads(done.stdout or "{}")


def images_task(report: dict) -> tuple[float, str]:
    tasks = [
        t for t in report["tasks"] if t["module"] == "docker_images" and t["status"] != "skipped"
    ]
    return max(t["elapsed"] for t in tasks), "; ".join(f"{t['host']}: {t['msg']}" for t in tasks)


def drop_images(started: list[hosts.SandboxHost]) -> None:
    for host in started:
        subprocess.run(["docker", "exec", host.container_name, "docker", "image", "rm", "-f",
                        *IMAGES], capture_output=True, check=False)  # fmt: skip


def main() -> None:
    name = f"swb-{uuid.uuid4().hex[:6]}"
    images.ensure_images(("bookworm",))
    work = Path(tempfile.mkdtemp(prefix="provision-swarm-bench-"))
    key = work / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    labels = {cloud.CLUSTER_LABEL: name}
    network = cloud.cluster_network(name)
    started: list[hosts.SandboxHost] = []
    try:
        for i in range(3):
            started.append(hosts.start_host(f"{name}-{i + 1}", public_key=key.with_suffix(
                ".pub").read_text(), labels=labels, network=network))  # fmt: skip
        state = work / "state"
        state.mkdir()
        for host in started:
            hosts.wait_for_ssh(host, timeout=90)
        (state / "known_hosts").write_text(
            "".join(hosts.known_hosts_line(h) + "\n" for h in started)
        )
        inv3 = inventory(work / "three.yml", name, started, key)
        inv1 = inventory(work / "one.yml", name, started[:1], key)
        old_way = work / "old_way.yml"
        old_way.write_text(OLD_WAY)

        warm, _ = provision(state, "up", "-i", str(inv3))
        provision(state, "down", "-i", str(inv3))
        print(f"warm-up (Docker installed, images sent, swarm of 3): {warm:.1f} s", flush=True)

        cold3, _ = provision(state, "up", "-i", str(inv3))
        provision(state, "down", "-i", str(inv3))
        cold1, _ = provision(state, "up", "-i", str(inv1))
        provision(state, "down", "-i", str(inv1))

        drop_images(started)
        _, report = provision(state, "up", "-i", str(inv3), "--tags", "images")
        dist3, how3 = images_task(report)
        drop_images(started[:1])
        _, report = provision(state, "up", "-i", str(inv1), "--tags", "images")
        dist1, how1 = images_task(report)
        drop_images(started)
        _, report = provision(state, "play", str(old_way), "-i", str(inv3))
        old3, _ = images_task(report)

        print(f"cold converge (Docker and images present): N=3 {cold3:.1f} s, N=1 {cold1:.1f} s,"
              f" ratio {cold3 / cold1:.2f}x")  # fmt: skip
        print(f"image distribution: 3 hosts {dist3:.1f} s, 1 host {dist1:.1f} s, ratio "
              f"{dist3 / dist1:.2f}x ({how3} | {how1})")  # fmt: skip
        print(f"  for reference, the controller to each of 3 hosts: {old3:.1f} s "
              f"({old3 / dist1:.2f}x of 1 host)")  # fmt: skip
    finally:
        cloud.remove_cluster(name)
        subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main()
