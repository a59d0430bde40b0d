"""Fault case 6: a full disk on the host (a small tmpfs at the project root, filled up).

The upload fails with the host, the task and "No space left on device"; the file it was
replacing is still the whole old file (uploads write a temporary file, then rename it), and no
temporary file is left behind. After space is freed, the re-run converges and a third run
changes nothing."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from provision.sandbox import cloud, localdocker
from tests.clirun import provision_cli

pytestmark = [pytest.mark.integration, pytest.mark.own_cluster]

ROOT = "/opt/provision"  # the layout's project_root
TARGET = f"{ROOT}/openresty/lua/router.lua"
SOURCE = Path(__file__).resolve().parents[2] / "playbooks/files/openresty/lua/router.lua"


def _sh(host: str, script: str) -> str:
    """Run ``script`` as root on the host, in the mount namespace of its sshd (where the runs
    over SSH write), which systemd may keep apart from ``docker exec``'s."""
    ns = 'exec nsenter -t "$(pgrep -o -x sshd)" -m -- sh -c "$0"'
    return localdocker.docker("exec", host, "sh", "-c", ns, script).stdout


def test_an_upload_to_a_full_disk_fails_clearly_and_leaves_the_old_file(cluster):
    cwd, name = cluster
    var = f"cluster_name={name}"
    up = provision_cli("up", "-e", var, cwd=cwd, timeout=900)
    assert up.returncode == 0, up.stderr
    (host,) = localdocker.container_ids(f"{cloud.CLUSTER_LABEL}={name}")

    # An edit on the host makes the next run re-upload router.lua; then the disk fills up.
    _sh(host, f"echo '-- edited on the host' >> {TARGET}")
    edited = _sh(host, f"cat {TARGET}")
    _sh(
        host,
        f"cp -a {ROOT} /root/keep && mount -t tmpfs -o size=8m tmpfs {ROOT} && "
        f"cp -a /root/keep/. {ROOT}/ && "
        f"(dd if=/dev/zero of={ROOT}/filler bs=4k 2>/dev/null || true)",
    )
    assert _sh(host, f"df --output=avail {shlex.quote(ROOT)} | tail -1").strip() == "0"

    full = provision_cli("up", "-e", var, cwd=cwd, timeout=900)
    assert full.returncode == 1, full.stderr
    failed = [line for line in full.stderr.splitlines() if "failed" in line and name in line]
    assert failed and "Upload the openresty project" in full.stderr, full.stderr
    assert "No space left on device" in full.stderr, full.stderr
    assert _sh(host, f"cat {TARGET}") == edited  # the whole old file, not half a new one
    assert _sh(host, f"find {ROOT} -name '.provision.*'") == ""  # no temporary file left

    _sh(host, f"rm -f {ROOT}/filler")
    healed = provision_cli("up", "-e", var, "--json", cwd=cwd, timeout=900)
    assert healed.returncode == 0, healed.stderr
    recap = json.loads(healed.stdout)["recap"]
    assert sum(r["changed"] for r in recap.values()) >= 1, recap
    assert _sh(host, f"cat {TARGET}") == SOURCE.read_text()

    again = provision_cli("up", "-e", var, "--json", cwd=cwd, timeout=900)
    assert again.returncode == 0, again.stderr
    recap = json.loads(again.stdout)["recap"]
    assert sum(r["changed"] for r in recap.values()) == 0, recap
