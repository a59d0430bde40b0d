"""The realism layer's host row ``apt_lists`` (``pytest tests -k realism``): a sandbox host's
apt-daily stand-in holds ``/var/lib/apt/lists/lock`` after boot, as apt-daily's first
``apt-get update`` does on a fresh Debian or Ubuntu instance. It is apt's own kind of lock (an
``fcntl`` lock): ``apt-get update`` meanwhile fails at once. The Docker install's lock wait,
over SSH, sees it, names it and its holder, and goes on once it is released."""

from __future__ import annotations

import subprocess
import time

import pytest

from provision.connection.ssh import Connection
from provision.tasks import dpkg_lock
from provision.tasks.base import TaskContext
from tests import bounds
from tests.helpers import state_for

pytestmark = pytest.mark.integration

HOLD = 12.0  # seconds from boot: long enough to see it held, over SSH, before it ends
PROBE = ["sh", "-c", dpkg_lock.PROBE_SCRIPT, "sh", *dpkg_lock.LOCKS]


def _exec(container: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", "exec", container, *argv], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip


def test_realism_apt_lists(ssh_host_factory, ssh_keypair, tmp_path):
    host = ssh_host_factory(bare=True, apt_daily=HOLD)
    deadline = time.monotonic() + bounds.SSH_BANNER
    while "lock=/var/lib/apt/lists/lock" not in _exec(host.container_id, *PROBE).stdout:
        assert time.monotonic() < deadline, "the apt-daily stand-in never took the lock"
        time.sleep(0.2)

    update = _exec(host.container_id, "apt-get", "update")
    assert update.returncode != 0
    assert "Could not get lock /var/lib/apt/lists/lock" in update.stderr, update.stderr

    said: list[str] = []
    state = state_for(host, tmp_path / "state")
    with Connection(host.host_spec(ssh_keypair.private_key),
                    known_hosts=state / "known_hosts") as conn:  # fmt: skip
        ctx = TaskContext(conn, become=True, progress=lambda label, *_: said.append(label))
        started = time.monotonic()
        found, _ = dpkg_lock.wait_for_lock(ctx, timeout=HOLD * 3)
        waited = time.monotonic() - started
    assert found.holder == "", found
    assert said[0].startswith("waiting for the apt lists lock (up to 36 s), held by pid "), said
    assert "(/usr/bin/python3 /usr/lib/provision/apt-daily)" in said[0], said
    assert said[-1] == "the apt lists lock was released", said
    assert 1.0 < waited < HOLD * 3, waited
    # Released: apt can take it now (checked without apt-get update, which needs a mirror).
    free = _exec(
        host.container_id,
        "python3",
        "-c",
        "import fcntl; f = open("
        "'/var/lib/apt/lists/lock', 'w'); fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)",
    )
    assert free.returncode == 0, free.stderr
