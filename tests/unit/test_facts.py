"""Fact parsers, on captured output (no host)."""

from __future__ import annotations

import json

import pytest

from provision.tasks.facts import parse_containers, parse_host_facts, parse_manifest, parse_network
from tests.unit.fakes import AL2023, DEBIAN12_BARE, DEBIAN13_DOCKER, UBUNTU


@pytest.mark.parametrize(
    ("stdout", "family", "compose", "running", "pending"),
    [
        (DEBIAN12_BARE, "debian", (), False, ()),
        (DEBIAN13_DOCKER, "debian", ("docker", "compose"), True, ("restart openresty",)),
        (UBUNTU, "debian", ("docker", "compose"), False, ()),
        (AL2023, "redhat", (), False, ()),
        (
            "os_id=debian\ncompose_v1=1.29.2\ndocker_server=20.10.24\n",
            "debian",
            ("docker-compose",),
            True,
            (),
        ),
        ("", "unknown", (), False, ()),
    ],
)
def test_host_facts(stdout, family, compose, running, pending):
    facts = parse_host_facts(stdout)
    assert facts.os_family == family
    assert facts.compose_command == compose
    assert facts.docker_running is running
    assert facts.pending_handlers == pending


def test_host_facts_fields():
    facts = parse_host_facts(DEBIAN13_DOCKER)
    assert (facts.os_version, facts.arch, facts.compose_version) == ("13", "aarch64", "2.26.1")
    assert "docker" in facts.user_groups
    assert parse_host_facts(UBUNTU).compose_v2 == "2.27.0"  # the "v" prefix is dropped
    assert parse_host_facts(AL2023).cloud_init


def test_network_parser():
    inspect = [
        {
            "Name": "shared-network",
            "Driver": "bridge",
            "Options": {"com.docker.network.mtu": "1400"},
            "IPAM": {"Config": [{"Subnet": "172.20.0.0/16", "Gateway": "172.20.0.1"}]},
            "Containers": {"abc": {"Name": "redis-redis-1"}, "def": {"Name": "openresty-1"}},
        }
    ]
    net = parse_network(json.dumps(inspect))
    assert net is not None
    assert (net.driver, net.gateway, net.subnet) == ("bridge", "172.20.0.1", "172.20.0.0/16")
    assert net.containers == ("openresty-1", "redis-redis-1")
    assert net.options == {"com.docker.network.mtu": "1400"}
    assert parse_network("[]") is None
    bridge = [
        {"Name": "bridge", "Driver": "bridge", "IPAM": {"Config": [{"Subnet": "172.17.0.0/16"}]}}
    ]
    assert parse_network(json.dumps(bridge)).gateway == "172.17.0.1"
    assert parse_network("Error: No such network: x") is None


def test_containers_and_manifest():
    rows = parse_containers(
        "b2 redis-redis-1 running redis\na1 openresty-openresty-1 exited openresty\n"
    )
    assert [(c.name, c.state, c.service) for c in rows] == [
        ("openresty-openresty-1", "exited", "openresty"),
        ("redis-redis-1", "running", "redis"),
    ]
    sha = "a" * 64
    assert parse_manifest(f"{sha}  /opt/x/nginx.conf\n{sha}  /elsewhere\nbad", "/opt/x") == {
        "nginx.conf": sha
    }
