"""Fault case 2: another process holds the dpkg lock when Docker is installed.

On a bare host, a process takes ``/var/lib/dpkg/lock-frontend`` the way apt and
unattended-upgrades do (an ``fcntl`` lock; ``flock(1)`` takes a different kind of lock, which
apt does not see). ``provision up --tags docker`` with a short deadline
(``-e dpkg_lock_timeout=6``) waits, saying who holds the lock, then fails at the deadline
naming the holder (exit 1). With a long deadline it waits until the holder is gone, says so,
and installs Docker; the next run changes nothing."""

from __future__ import annotations

import json
import time

import pytest

from provision.sandbox import localdocker
from tests.clirun import provision_cli, provision_popen
from tests.helpers import state_for

pytestmark = pytest.mark.integration

HOLD = (
    "echo $$ > /run/dpkg-holder.pid; exec python3 -c "
    "\"import fcntl, time; f = open('/var/lib/dpkg/lock-frontend', 'w'); "
    'fcntl.lockf(f, fcntl.LOCK_EX); time.sleep(600)"'
)


def _sh(host: str, script: str) -> str:
    return localdocker.docker("exec", host, "sh", "-c", script, check=False).stdout


def test_the_install_waits_for_the_dpkg_lock_and_fails_clearly_at_the_deadline(
    bare_ssh_host, ssh_keypair, tmp_path
):
    ssh_host = bare_ssh_host
    state = state_for(ssh_host, tmp_path / "state")
    args = ("up", "--host", f"admin@127.0.0.1:{ssh_host.port}",
            "--key", str(ssh_keypair.private_key), "--state-dir", str(state),
            "--tags", "docker")  # fmt: skip
    host = ssh_host.container_id
    localdocker.docker("exec", "-d", host, "sh", "-c", HOLD)
    deadline = time.monotonic() + 30
    while not _sh(host, "cat /run/dpkg-holder.pid 2>/dev/null").strip():
        assert time.monotonic() < deadline
        time.sleep(0.2)
    holder = _sh(host, "cat /run/dpkg-holder.pid").strip()

    started = time.monotonic()
    short = provision_cli(*args, "-e", "dpkg_lock_timeout=6", cwd=tmp_path, timeout=300)
    assert short.returncode == 1, short.stderr
    assert f"waiting for the dpkg lock (up to 6 s), held by pid {holder} (python3 -c " in (
        short.stderr
    )
    assert (
        f"failed host1: Docker Engine and Compose docker_engine: the dpkg lock "
        f"(/var/lib/dpkg/lock-frontend) is still held by pid {holder} (python3 -c "
    ) in short.stderr, short.stderr
    assert "after 6 s; run again once it is released (or raise dpkg_lock_timeout)" in short.stderr
    assert time.monotonic() - started < 120
    assert _sh(host, "command -v dockerd || echo none").strip() == "none"

    waiting = provision_popen(*args, "-e", "dpkg_lock_timeout=600", "--json", cwd=tmp_path)
    try:
        assert waiting.stderr is not None
        seen = ""
        for line in waiting.stderr:  # the wait is announced before anything is installed
            seen += line
            if "waiting for the dpkg lock (up to 600 s), held by pid" in line:
                break
        assert f"held by pid {holder} (python3 -c " in seen, seen
        time.sleep(3)  # still waiting: nothing installed meanwhile
        assert _sh(host, "command -v dockerd || echo none").strip() == "none"
        _sh(host, "kill $(cat /run/dpkg-holder.pid)")
        out, rest = waiting.communicate(timeout=600)
    finally:
        if waiting.poll() is None:
            waiting.kill()
    err = seen + rest
    assert waiting.returncode == 0, err
    assert "the dpkg lock was released" in err
    recap = json.loads(out)["recap"]["host1"]
    assert recap["changed"] == 1 and recap["failed"] == 0, recap
    assert _sh(host, "systemctl is-active docker").strip() == "active"

    again = provision_cli(*args, "--json", cwd=tmp_path, timeout=300)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["recap"]["host1"]["changed"] == 0
