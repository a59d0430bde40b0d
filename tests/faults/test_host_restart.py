"""Fault case 3: the host restarts (its container is restarted, as a reboot would).

The cluster's containers come back by their restart policy (``unless-stopped``), so
``provision verify`` passes without a re-run, and ``provision up`` then finds nothing to change."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from provision.sandbox import localdocker
from tests import bounds
from tests.clirun import provision_cli

pytestmark = pytest.mark.integration


def test_after_a_host_restart_verify_passes_and_up_changes_nothing(shared_cluster):
    """On the session's shared cluster (up and verified): a restart restores itself."""
    cwd, var = shared_cluster.cwd, shared_cluster.var
    localdocker.docker("restart", "--time", "5", shared_cluster.container)
    # `docker restart` returns once the host's init runs, not once its services are back:
    # wait (bounded) until its OpenResty answers HTTP at all, as a user would see it boot.
    # (Seen: verify at once after the restart found the containers running but /ping's
    # connection closed by a router still starting.)
    deadline = time.monotonic() + bounds.SERVICE_BACK
    while not _answers(f"{shared_cluster.url}/health"):
        assert time.monotonic() < deadline, "OpenResty did not answer after the restart"
        time.sleep(0.5)

    verify = provision_cli("verify", "-e", var, "--json", cwd=cwd, timeout=600)
    assert verify.returncode == 0, verify.stderr
    checks = json.loads(verify.stdout)["checks"]
    assert checks and all(c["passed"] for c in checks), checks

    again = provision_cli("up", "-e", var, "--json", cwd=cwd, timeout=900)
    assert again.returncode == 0, again.stderr
    recap = json.loads(again.stdout)["recap"]
    assert sum(r["changed"] for r in recap.values()) == 0, recap


def _answers(url: str) -> bool:
    """The server sent an HTTP answer (any status)."""
    try:
        with urllib.request.urlopen(url, timeout=5):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
