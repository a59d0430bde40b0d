"""Fault case 3: the host restarts (its container is restarted, as a reboot would).

The cluster's containers come back by their restart policy (``unless-stopped``), so
``provision verify`` passes without a re-run, and ``provision up`` then finds nothing to change."""

from __future__ import annotations

import json

import pytest

from provision.sandbox import cloud, localdocker
from tests.clirun import provision_cli

pytestmark = pytest.mark.integration


def test_after_a_host_restart_verify_passes_and_up_changes_nothing(cluster):
    cwd, name = cluster
    var = f"cluster_name={name}"
    up = provision_cli("up", "-e", var, cwd=cwd, timeout=900)
    assert up.returncode == 0, up.stderr
    (host,) = localdocker.container_ids(f"{cloud.CLUSTER_LABEL}={name}")
    localdocker.docker("restart", "--time", "5", host)

    verify = provision_cli("verify", "-e", var, "--json", cwd=cwd, timeout=600)
    assert verify.returncode == 0, verify.stderr
    checks = json.loads(verify.stdout)["checks"]
    assert checks and all(c["passed"] for c in checks), checks

    again = provision_cli("up", "-e", var, "--json", cwd=cwd, timeout=900)
    assert again.returncode == 0, again.stderr
    recap = json.loads(again.stdout)["recap"]
    assert sum(r["changed"] for r in recap.values()) == 0, recap
