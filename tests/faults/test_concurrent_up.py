"""Fault case 5: two ``provision up`` of one sandbox cluster at once, run as a user would.

One takes the cluster's run lock and converges; the other is refused at once, exit 1, naming
the holder (its pid, host and command); a third with ``--lock-wait`` waits for the first and
then finds nothing to change. Afterwards ``provision verify`` passes and the cluster's state
(its moto server record, key pair, known_hosts) is intact and the lock is gone."""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.clirun import provision_cli, provision_popen

pytestmark = [pytest.mark.integration, pytest.mark.own_cluster]


def test_two_ups_at_once_one_converges_the_other_is_refused_naming_the_holder(cluster):
    cwd, name = cluster
    var = f"cluster_name={name}"
    runs = [provision_popen("up", "-e", var, "--json", cwd=cwd) for _ in range(2)]

    # The loser is refused before any cloud call, so it ends long before the winner.
    deadline = time.monotonic() + 120
    while all(r.poll() is None for r in runs) and time.monotonic() < deadline:
        time.sleep(0.2)
    loser = next(r for r in runs if r.poll() is not None)
    winner = next(r for r in runs if r is not loser)
    _, loser_err = loser.communicate(timeout=30)
    assert loser.returncode == 1, loser_err
    assert winner.poll() is None, "the winner should still be converging"
    assert loser_err.startswith(
        f"error: cluster '{name}' is locked by another run: pid {winner.pid} on "
        f"{socket.gethostname()} (`provision up -e cluster_name=… --json`, since "
    ), loser_err
    assert "PLAY" not in loser_err

    # A third run that waits for the lock: it says why it waits, then finds nothing to change.
    waiter = provision_popen("up", "-e", var, "--json", "--lock-wait", "900", cwd=cwd)
    out, err = winner.communicate(timeout=900)
    assert winner.returncode == 0, err
    assert json.loads(out)["ok"]
    w_out, w_err = waiter.communicate(timeout=900)
    assert waiter.returncode == 0, w_err
    assert f"waiting up to 900 s for the run lock: cluster '{name}' is locked" in w_err
    recap = json.loads(w_out)["recap"]
    assert sum(r["changed"] for r in recap.values()) == 0, recap

    state = cwd / ".provision"
    assert not (state / name / "run.lock").exists()
    verify = provision_cli("verify", "-e", var, "--json", cwd=cwd, timeout=600)
    assert verify.returncode == 0, verify.stderr
    assert all(c["passed"] for c in json.loads(verify.stdout)["checks"])
