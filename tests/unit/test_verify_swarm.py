"""The swarm's checks (``provision.verify.swarm``) on recorded Docker output: what each reads,
on the node and on the manager, and when it fails; the suite per topology."""

from __future__ import annotations

import json

import pytest

from provision.cluster.layout import Layout
from provision.verify import FIRST_CHECKS, run_suite
from provision.verify.swarm import (
    Swarm,
    check_swarm_containers,
    check_swarm_dns,
    check_swarm_nodes,
    parse_network_tasks,
    parse_node_ls,
    parse_service_ls,
    parse_service_ps,
)
from tests.unit.fakes import FakeRemote

CONFIG = Layout(sudo=False, deadline=0, topology="swarm", instance_count=3)

# Recorded on the sandbox (3 nodes), `docker node ls --format '{{.ID}} {{.Status}}
# {{.Availability}} {{.Hostname}}'` on the manager.
NODES = """99694qccv1c9n2yd59k4f07g0 Ready Active swdev1-8af82be7a4fc
afobkmnsr8nrwx5qp2kf01ybk Ready Active swdev1-8e97f00f5f4d
uar3jv89omcfo1zu8htj92hah Ready Active swdev1-ff8b2359d7cb
"""
SERVICES = "echo_echo-a 1/1\necho_echo-b 1/1\nopenresty_openresty 3/3\nredis_redis 1/1\n"
TASKS = json.dumps({
    "redis_redis": {"VIP": "<nil>", "Tasks": [
        {"Name": "redis_redis.1.n0v2", "EndpointIP": "10.0.1.2", "Info": {"Host IP": "172.20.0.2"}}
    ]},
    "echo_echo-a": {"VIP": "<nil>", "Tasks": [
        {"Name": "echo_echo-a.1.ois2", "EndpointIP": "10.0.1.4"}
    ]},
})  # fmt: skip
PS_HERE = (
    "openresty openresty_openresty running Up 2 minutes (healthy)\n"
    "echo echo_echo-a running Up 2 minutes (healthy)\n"
)


def _node(node_id: str = "uar3jv89omcfo1zu8htj92hah", name: str = "swdev1-ff8b2359d7cb"):
    fake = FakeRemote()
    fake.answer(r"^docker info --format", f"{node_id} {name}\n")
    return fake


def _manager(nodes: str = NODES, services: str = SERVICES) -> FakeRemote:
    fake = FakeRemote()
    fake.answer(r"^docker node ls", nodes)
    fake.answer(r"^docker service ls", services)
    fake.answer(r"^docker network inspect --verbose", TASKS)
    return fake


def test_parsers_read_the_recorded_output():
    assert [r["status"] for r in parse_node_ls(NODES)] == ["Ready"] * 3
    assert parse_service_ls(SERVICES)["openresty_openresty"] == "3/3"
    assert parse_network_tasks(TASKS, "redis_redis") == ["10.0.1.2"]
    assert parse_network_tasks(TASKS, "nope") == [] and parse_network_tasks("x", "a") == []
    ps = "echo_echo-a.1 n-1 Running 2 minutes ago\necho_echo-b.1 n-2 Preparing 1 second ago\n"
    assert parse_service_ps(ps) == {"echo_echo-a": ["n-1"]}


def test_all_nodes_ready_passes_with_the_table_as_evidence():
    result = check_swarm_nodes(_node(), CONFIG, Swarm(_manager(), nodes=3))
    assert result.passed, result.summary
    assert result.evidence["node"] == "swdev1-ff8b2359d7cb" and len(result.evidence["nodes"]) == 3


@pytest.mark.parametrize(
    ("nodes", "expected", "why"),
    [
        (NODES.replace("Ready Active swdev1-8af", "Down Active swdev1-8af"), 3, "2/3 nodes Ready"),
        (NODES, 4, "expected 4"),
        ("\n".join(NODES.splitlines()[:2]), 2, "not listed"),  # this node is not in the swarm
    ],
)
def test_a_node_down_missing_or_a_short_swarm_fails(nodes, expected, why):
    result = check_swarm_nodes(_node(), CONFIG, Swarm(_manager(nodes=nodes), nodes=expected))
    assert not result.passed and why in result.summary


def test_containers_need_the_openresty_task_here_and_every_service_converged():
    node = _node()
    node.answer(r"^docker ps -a --filter label=com.docker.stack.namespace --format", PS_HERE)
    ok = check_swarm_containers(node, CONFIG, Swarm(_manager(), nodes=3))
    assert ok.passed, ok.summary
    assert ok.evidence["replicas"]["redis_redis"] == "1/1"
    short = _manager(
        services=SERVICES.replace("openresty_openresty 3/3", "openresty_openresty 2/3")
    )
    bad = check_swarm_containers(node, CONFIG, Swarm(short, nodes=3))
    assert not bad.passed and "openresty_openresty 2/3" in bad.summary


def test_containers_fail_when_this_node_runs_no_openresty_task():
    node = _node()
    node.answer(r"^docker ps -a --filter label=com.docker.stack.namespace --format", "")
    result = check_swarm_containers(node, CONFIG, Swarm(_manager(), nodes=3))
    assert not result.passed and "openresty_openresty here missing" in result.summary
    # the evidence is the stack's tasks on this node, not `docker compose ps`
    assert not any("compose" in " ".join(c) for c in node.calls)


def _with_openresty(getent: str) -> FakeRemote:
    node = _node()
    node.answer(
        r"^docker ps -a --filter label=com.docker.stack.namespace=openresty", "c0ffee running\n"
    )
    node.answer(r"^docker exec c0ffee getent hosts redis", getent)
    return node


def test_dns_resolves_redis_to_its_task_on_the_overlay():
    result = check_swarm_dns(_with_openresty("10.0.1.2 redis\n"), CONFIG, Swarm(_manager(), 3))
    assert result.passed, result.summary
    assert result.evidence["resolved"] == ["10.0.1.2"] and result.evidence["expected"] == [
        "10.0.1.2"
    ]


@pytest.mark.parametrize("getent", ["", "10.0.1.4 redis\n"])
def test_dns_fails_when_redis_resolves_to_nothing_or_elsewhere(getent):
    result = check_swarm_dns(_with_openresty(getent), CONFIG, Swarm(_manager(), 3))
    assert not result.passed


def test_the_suite_per_topology():
    """The single host's first checks are what they were; a swarm adds its own two and
    drops the checks that restart compose projects."""
    single = Layout(sudo=False, deadline=0)
    names = [n for n in FIRST_CHECKS if n not in ("swarm-nodes", "swarm-routing")]
    assert names == ["containers", "cluster-state", "dns", "ping", "negative-control"]
    # a swarm check without the manager's connection is a failed check, not a crash
    [result] = run_suite(FakeRemote(), CONFIG, checks=["swarm-nodes"])
    assert not result.passed and "manager" in result.summary
    assert run_suite(FakeRemote(), single, checks=["swarm-nodes", "swarm-routing"]) == []
    assert run_suite(FakeRemote(), CONFIG, checks=["restart-recovery", "route-roundtrip"]) == []


def test_in_a_swarm_the_other_checks_start_once_the_tasks_run(monkeypatch):
    """`stack deploy` returns before the tasks run (CI saw a node that had just joined, its
    images still on the way: dns and ping had looked before its OpenResty task started). The
    "containers" check, which waits for them, runs alone first; on a single host the quick
    checks all run side by side."""
    import threading
    import time

    import provision.verify as suite
    from provision.models import CheckResult

    log: list[str] = []
    lock = threading.Lock()

    def one(conn, config, name, swarm):
        with lock:
            log.append(f"start {name}")
        time.sleep(0.2 if name == "containers" else 0.05)
        with lock:
            log.append(f"end {name}")
        return CheckResult(name, True, name)

    monkeypatch.setattr(suite, "_one", one)
    checks = ["swarm-nodes", "containers", "dns", "ping"]
    results = run_suite(FakeRemote(), CONFIG, checks=checks, swarm=Swarm(FakeRemote(), 3))
    assert [r.name for r in results] == checks  # reported in the suite's order
    assert log[:2] == ["start containers", "end containers"]
    single = Layout(sudo=False, deadline=0)
    log.clear()
    run_suite(FakeRemote(), single, checks=["containers", "dns", "ping"])
    assert log[0].startswith("start") and log[1].startswith("start")  # side by side
