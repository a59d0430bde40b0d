"""A cluster's ttl on the sandbox, as on EC2: the host runs the user-data it was launched with
at its first boot (the sandbox's cloud-init), which schedules a power-off at the cluster's
expiry; at the expiry the host powers itself off, the sandbox's EC2 terminates its instance
(``InstanceInitiatedShutdownBehavior=terminate``, ``Client.InstanceInitiatedShutdown``), and
``provision status`` says the cluster expired; ``down`` removes what is left."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from provision.aws.userdata import PER_BOOT
from provision.sandbox import cloud, localdocker
from tests import bounds
from tests.helpers import left_behind, provision, remove_sandbox_cluster

pytestmark = [pytest.mark.integration, pytest.mark.own_cluster]

#: The cluster's ttl: long enough for `up` and a first `status` on a loaded machine (done
#: 10 s after the launch here, with a busy core beside it), short enough that the test does
#: not spend minutes waiting for the power-off (the schedule is to the second: a timer).
TTL = 50


def host_id(cwd, name: str) -> str:
    (record,) = json.loads((cwd / ".provision" / name / "state.json").read_text())["instances"]
    return str(record["instance_id"])


def _state(container: str) -> str:
    found = localdocker.docker("inspect", "--format", "{{.State.Status}}", container, check=False)
    return found.stdout.strip() or "gone"


def test_a_short_ttl_powers_the_host_off_and_status_says_the_cluster_expired(
    tmp_path, sandbox_images
):
    name = f"ttl-{uuid.uuid4().hex[:6]}"
    cluster = ("-e", f"cluster_name={name}")
    try:
        launched_by = time.monotonic()
        up = provision(tmp_path, "up", "--tags", "cloud", *cluster, "-e", f"ttl={TTL}s")
        assert up.returncode == 0, up.stderr
        (container,) = localdocker.container_ids(f"{cloud.CLUSTER_LABEL}={name}")
        # The user-data ran at the first boot: cloud-init is done and the schedule in place.
        init = localdocker.docker("exec", container, "timeout", "30", "cloud-init", "status",
                                  "--wait", check=False)  # fmt: skip
        assert init.ok and "status: done" in init.stdout, (init.stdout, init.stderr)
        assert localdocker.docker("exec", container, "test", "-x", PER_BOOT, check=False).ok
        began = time.monotonic() - launched_by
        assert began < TTL - 10, f"up took {began:.0f} s of the {TTL} s ttl: too slow a machine"
        before = provision(tmp_path, "status", "--no-services", *cluster)  # quick, in the ttl
        assert before.returncode == 0 and "expires at" in before.stderr, before.stderr

        # The host powers itself off by the deadline, without anyone running anything.
        while _state(container) == "running":
            waited = time.monotonic() - launched_by
            assert waited < bounds.TTL_POWER_OFF, f"still running {waited:.0f} s after launch"
            time.sleep(2)
        assert _state(container) == "exited"
        assert localdocker.container_ids(f"{cloud.INSTANCE_LABEL}={host_id(tmp_path, name)}")
        cloud_dir = cloud.sandbox_dir((tmp_path / ".provision").resolve())
        assert host_id(tmp_path, name) in cloud.powered_off(cloud_dir)  # its console says so

        after = provision(tmp_path, "status", "--json", *cluster)
        assert after.returncode == 0, after.stderr
        (host,) = json.loads(after.stdout)
        assert host["state"] == "terminated" and host["expired"] is True, host
        assert host["state_reason"].startswith("Client.InstanceInitiatedShutdown"), host
        said = provision(tmp_path, "status", *cluster)
        assert "the cluster expired at" in said.stderr, said.stderr
        assert "powered themselves off" in said.stderr, said.stderr

        down = provision(tmp_path, "down", *cluster)
        assert down.returncode == 0, down.stderr
        assert left_behind(name) == []
    finally:
        remove_sandbox_cluster(tmp_path, name)
