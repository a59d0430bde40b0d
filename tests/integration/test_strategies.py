"""The seed's three ways for OpenResty to reach Redis, each deployed on a real SSH host and
proven by every verification check (routing and Redis-restart recovery included); routes
survive a restart of the redis project and a re-run of `up`."""

from __future__ import annotations

import pytest

from provision.api import PLAYBOOKS, Options, host_inventory, run_playbook
from provision.api.routes import ClusterRoutes
from tests.helpers import ssh, state_for

pytestmark = pytest.mark.integration

ALL_CHECKS = {
    "containers",
    "dns",
    "ping",
    "negative-control",
    "redis-port-closed",
    "route-roundtrip",
    "restart-recovery",
}


@pytest.fixture(scope="module")
def host(module_ssh_host_factory, ssh_keypair, tmp_path_factory):
    host = module_ssh_host_factory("strategies")
    return host, state_for(host, tmp_path_factory.mktemp("state")), ssh_keypair.private_key


def run(host_info, playbook: str, strategy: str):
    host, state, key = host_info
    inventory = host_inventory(f"admin@127.0.0.1:{host.port}", key)
    options = Options(state_dir=state, extra_vars={"redis_strategy": strategy})
    return run_playbook(PLAYBOOKS / playbook, inventory, options), inventory, options


@pytest.mark.parametrize("strategy", ["shared-network", "host-gateway", "host-docker-internal"])
def test_strategy_deploys_and_every_check_passes(host, strategy):
    up, _, _ = run(host, "up.yml", strategy)
    assert not up.failed, up.errors
    verified, _, _ = run(host, "verify.yml", strategy)
    assert not verified.failed, verified.errors
    checks = {c.name: c for c in verified.checks}
    assert set(checks) == ALL_CHECKS
    failed = {n: (c.summary, c.evidence) for n, c in checks.items() if not c.passed}
    assert not failed
    published = ssh(
        host[0],
        host[2],
        host[1],
        "docker",
        "ps",
        "--format",
        "{{.Ports}}",
        "--filter",
        "label=com.docker.compose.service=redis",
    )
    if strategy == "shared-network":
        assert "->" not in published  # exposed inside (6379/tcp), published nowhere
    else:
        assert "0.0.0.0:6379" not in published and ":6379->6379" in published  # gateway only


def test_routes_survive_a_redis_restart_and_a_rerun(host):
    _, inventory, options = run(host, "up.yml", "shared-network")
    routes = ClusterRoutes(inventory, options)
    routes.add("/keep", "keep", ["echo-a:80"])
    ssh(
        host[0],
        host[2],
        host[1],
        "sh",
        "-c",
        "cd /opt/provision/redis && docker-compose -p redis restart",
    )
    again, _, _ = run(host, "up.yml", "shared-network")
    assert not again.failed, again.errors
    assert routes.list()["/keep"].endpoints == ("echo-a:80",)
    assert routes.remove("/keep")
