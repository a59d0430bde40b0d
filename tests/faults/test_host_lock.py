"""The run lock on each host (``/var/lib/provision/run.lock``), as a user meets it: another
controller (another CI job, another laptop, with its own state folder) converging the same host.

Its lock is planted on the host as that controller would leave it. ``provision up`` fails the
host at once, exit 1, naming the holder, and touches nothing; with ``--lock-wait`` it waits,
says why, and converges once the other run ends; a lock whose holder is gone is reported as
stale, ``provision unlock`` breaks it naming the holder, and the next ``up`` converges. Every
run removes its own lock when it ends."""

from __future__ import annotations

import json
import time

import pytest

from provision.sandbox import localdocker
from tests.clirun import provision_cli, provision_popen

pytestmark = pytest.mark.integration

LOCK = "/var/lib/provision/run.lock"


def _on_host(cid: str, script: str) -> str:
    return localdocker.docker("exec", cid, "sh", "-c", script).stdout.strip()


def _plant(cid: str, started: float) -> None:
    record = json.dumps({"pid": 4242, "host": "ci-runner-7", "command": "provision up",
                         "started": started, "token": "another-run"})  # fmt: skip
    _on_host(cid, f"mkdir -p {LOCK} && printf '%s' '{record}' > {LOCK}/holder.json")


def _locked(cid: str) -> bool:
    return _on_host(cid, f"[ -d {LOCK} ] && echo yes || echo no") == "yes"


def test_a_host_held_by_another_controller_is_refused_waited_for_and_unlocked(shared_cluster):
    """On the session's shared cluster; every lock the test plants is gone at its end."""
    cwd, name, var = shared_cluster.cwd, shared_cluster.name, shared_cluster.var
    up = provision_cli("up", "-e", var, "--json", cwd=cwd, timeout=900)
    assert up.returncode == 0, up.stderr
    (host,) = [h for h in json.loads(up.stdout)["recap"] if h != "localhost"]
    cid = shared_cluster.container
    assert not _locked(cid), "up left its lock on the host"

    # 1. Held by a live run of another controller: refused at once, naming it; nothing done.
    _plant(cid, time.time())
    refused = provision_cli("up", "-e", var, "--json", cwd=cwd, timeout=600)
    assert refused.returncode == 1, refused.stderr
    report = json.loads(refused.stdout)
    (failed,) = [t for t in report["tasks"] if t["status"] == "failed"]
    assert failed["host"] == host and failed["task"] == "Run lock", failed
    assert failed["msg"].startswith(
        f"host '{host}' is locked by another run: pid 4242 on ci-runner-7 (`provision up`, since "
    ), failed
    assert "--lock-wait SECONDS" in failed["msg"]
    assert not [t for t in report["tasks"] if t["host"] == host and t is not failed]
    assert _locked(cid) and "another-run" in _on_host(cid, f"cat {LOCK}/holder.json")
    assert not (cwd / ".provision" / name / "run.lock").exists()

    # 2. With --lock-wait: waits, says why, converges when the other run ends (changed=0).
    waiter = provision_popen("up", "-e", var, "--json", "--lock-wait", "300", cwd=cwd)
    try:
        assert waiter.stderr is not None
        seen = ""
        for line in waiter.stderr:  # the wait is announced before anything else is done
            seen += line
            if "waiting up to 300 s for the run lock" in line:
                break
        assert waiter.poll() is None, seen  # still waiting
        _on_host(cid, f"rm -rf {LOCK}")  # the other controller's run ends
        out, rest = waiter.communicate(timeout=600)
    finally:
        if waiter.poll() is None:
            waiter.kill()
    err = seen + rest
    assert waiter.returncode == 0, err
    assert f"waiting up to 300 s for the run lock: host '{host}' is locked by another run" in err
    recap = json.loads(out)["recap"]
    assert sum(r["changed"] for r in recap.values()) == 0, recap
    assert not _locked(cid)

    # 3. Left by a run that is gone (older than the stale limit): reported, kept, then broken.
    _plant(cid, time.time() - 7 * 3600)
    stale = provision_cli("up", "-e", var, "--lock-wait", "300", cwd=cwd, timeout=600)
    assert stale.returncode == 1, stale.stderr
    assert f"host '{host}' has a stale run lock {LOCK}: held by pid 4242 on ci-runner-7" in (
        stale.stderr
    )
    assert "break it with `provision unlock`" in stale.stderr and _locked(cid)
    unlocked = provision_cli("unlock", "-e", var, cwd=cwd, timeout=120)
    assert unlocked.returncode == 0, unlocked.stderr
    assert unlocked.stdout.startswith(
        f"broke the run lock on host '{host}': it was held by pid 4242 on ci-runner-7 "
    ), unlocked.stdout
    assert not _locked(cid)
    healed = provision_cli("up", "-e", var, "--json", cwd=cwd, timeout=900)
    assert healed.returncode == 0, healed.stderr
    assert sum(r["changed"] for r in json.loads(healed.stdout)["recap"].values()) == 0
    verify = provision_cli("verify", "-e", var, "--json", cwd=cwd, timeout=600)
    assert verify.returncode == 0, verify.stderr
    assert not _locked(cid)
