"""The Python API a pipeline uses: a Cluster context manager that brings a host up verified,
gives its routes, reports through an event callback, and tears it all down on exit."""

from __future__ import annotations

import pytest

from provision import Cluster, Event, Options
from provision.api import host_inventory
from tests.helpers import ssh, state_for

pytestmark = [pytest.mark.integration, pytest.mark.own_cluster]


def test_cluster_context_manager_up_routes_down(ssh_host_factory, ssh_keypair, tmp_path):
    host = ssh_host_factory("api")
    key = ssh_keypair.private_key
    state = state_for(host, tmp_path / "state")
    inventory = host_inventory(f"admin@127.0.0.1:{host.port}", key)
    events: list[Event] = []
    with Cluster(
        inventory, options=Options(state_dir=state), teardown=True, on_event=events.append
    ) as cluster:
        assert not cluster.report.failed
        assert {c.name for c in cluster.report.checks} >= {"dns", "ping"}
        assert all(c.passed for c in cluster.report.checks)
        cluster.routes.add("/api", "api", ["echo-b:80"])
        assert cluster.routes.list()["/api"].service == "api"
        running = ssh(host, key, state, "docker", "ps", "-q")
        assert len(running.split()) == 4  # redis, openresty, echo-a, echo-b
    kinds = {e.kind for e in events}
    assert {"play", "task", "result"} <= kinds
    # teardown=True: `down` ran on exit — no container, no project volume, no shared network
    assert ssh(host, key, state, "docker", "ps", "-aq").strip() == ""
    assert "redis" not in ssh(host, key, state, "docker", "volume", "ls", "-q")
    assert "shared-network" not in ssh(host, key, state, "docker", "network", "ls")
