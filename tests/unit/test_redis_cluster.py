"""The Redis Cluster mode, without a host: the layout, the cluster task's verdicts and the
commands it makes (facts in, commands out), the slot owner parser, the template."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from provision.cluster.layout import layout_from_vars
from provision.errors import ConfigError
from provision.load.templating import render
from provision.models import Result
from provision.tasks import registry
from provision.tasks.base import TaskContext, build_args
from provision.tasks.redis_cluster import NodeInfo, decide, parse_infos
from provision.verify.cluster import parse_slot_owner
from tests.unit.fakes import FakeRemote

NODES = tuple(f"redis-{i}" for i in range(1, 7))

PACKAGE = Path(__file__).resolve().parents[2] / "provision"


def info(state: str, slots: int, known: int) -> str:
    return (f"cluster_state:{state}\ncluster_slots_assigned:{slots}\ncluster_slots_ok:{slots}\n"
            f"cluster_known_nodes:{known}\ncluster_size:3\n")  # fmt: skip


def infos_text(*rows: tuple[str, int, int] | str) -> str:
    out = []
    for name, row in zip(NODES, rows, strict=True):
        out.append(f"== {name}")
        out.append(row if isinstance(row, str) else info(*row))
    return "\n".join(out) + "\n"


def test_layout_in_cluster_mode() -> None:
    layout = layout_from_vars({"redis_mode": "cluster", "redis_cluster_nodes": 8})
    assert layout.redis_services == tuple(f"redis-{i}" for i in range(1, 9))
    assert layout.compose_names("redis") == ["docker-compose.cluster.yml"]
    assert layout.key_prefix == "{provision}:"
    assert layout.as_vars()["redis_nodes"].split(",")[0] == "redis-1:6379"
    single = layout_from_vars({})
    assert (single.redis_services, single.key_prefix) == (("redis",), "")


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"redis_mode": "sentinel"}, "redis_mode"),
        ({"redis_mode": "cluster", "redis_cluster_nodes": 5}, "redis_cluster_nodes"),
        ({"redis_mode": "cluster", "redis_cluster_nodes": 7}, "redis_cluster_nodes"),
        ({"redis_mode": "cluster", "redis_strategy": "host-gateway"}, "redis_strategy"),
    ],
)
def test_bad_cluster_settings_are_config_errors(variables: dict, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        layout_from_vars(variables)
    assert caught.value.field == field


def test_parse_infos_and_unreachable_nodes() -> None:
    text = infos_text(*[("ok", 16384, 6)] * 5, "Could not connect to Redis at redis-6:6379")
    parsed = parse_infos(text, NODES)
    assert [p.ok for p in parsed] == [True] * 5 + [False]
    assert parsed[5].error.startswith("Could not connect")


@pytest.mark.parametrize(
    ("rows", "verdict", "concerned"),
    [
        ([("ok", 16384, 6)] * 6, "ok", []),
        ([("fail", 0, 1)] * 6, "create", list(NODES)),
        ([("ok", 16384, 6)] * 5 + [("fail", 0, 1)], "repair", ["redis-6"]),
        ([("ok", 16384, 6)] * 3 + [("fail", 5461, 6)] * 3, "broken", list(NODES[3:])),
        ([("fail", 0, 1)] * 3 + [("fail", 8000, 3)] * 3, "broken", list(NODES)),
    ],
)
def test_decide(rows: list, verdict: str, concerned: list[str]) -> None:
    infos = [NodeInfo(n, dict(line.split(":", 1) for line in info(*r).split())) for n, r in
             zip(NODES, rows, strict=True)]  # fmt: skip
    assert decide(infos) == (verdict, concerned)


def _cluster_host(*rows: tuple[str, int, int]) -> FakeRemote:
    fake = FakeRemote()
    fake.answer(r"docker ps --filter label=com.docker.compose.project=redis",
                "".join(f"c{i} {n}\n" for i, n in enumerate(NODES, 1)))  # fmt: skip
    fake.answer(r"cluster info", infos_text(*rows))
    return fake


def _run(fake: FakeRemote, *, check: bool = False):  # type: ignore[no-untyped-def]
    spec = registry()["redis_cluster"]
    args = build_args(spec, {"project": "redis", "nodes": list(NODES), "timeout": 0})
    return spec.apply(TaskContext(fake, check=check, become=True), args)


def test_a_formed_cluster_is_ok_and_untouched() -> None:
    fake = _cluster_host(*[("ok", 16384, 6)] * 6)
    outcome = _run(fake)
    assert not outcome.changed and not outcome.failed
    assert not any("--cluster" in c for c in fake.commands())


def test_new_nodes_are_created_once_with_the_password_off_the_command_line() -> None:
    fake = _cluster_host(*[("fail", 0, 1)] * 6)
    calls = []

    def created(argv: list[str]) -> Result:
        calls.append(argv)  # from now on the nodes answer as one cluster
        fake.answers.insert(0, ("cluster info", Result("", 0, infos_text(*[("ok", 16384, 6)] * 6))))
        return Result("", 0, "[OK] All 16384 slots covered.")

    fake.answers.insert(0, (r"--cluster create", created))
    outcome = _run(fake)
    assert outcome.changed and not outcome.failed, outcome.msg
    (create,) = calls
    assert create[:3] == ["docker", "exec", "c1"]
    assert create[-8:] == ["6379", "1", *NODES]  # port, replicas per master, the nodes by name
    assert "REDISCLI_AUTH" in create[5] and not any("REDIS_PASSWORD=" in a for a in create)


def test_check_mode_reports_the_creation_and_runs_nothing() -> None:
    fake = _cluster_host(*[("fail", 0, 1)] * 6)
    outcome = _run(fake, check=True)
    assert outcome.changed and "would" in outcome.msg
    assert not any("--cluster create" in c for c in fake.commands())


def test_a_half_formed_cluster_is_reported_with_the_command_never_reset() -> None:
    fake = _cluster_host(*[("ok", 16384, 6)] * 3, *[("fail", 5461, 6)] * 3)
    outcome = _run(fake)
    assert outcome.failed and "half-formed, not touched" in outcome.msg
    assert "redis-cli --cluster check redis-1:6379" in outcome.msg
    assert not any("--cluster create" in c or "reset" in c for c in fake.commands())


def test_a_node_that_lost_its_volume_is_forgotten_and_added_back() -> None:
    fake = _cluster_host(*[("ok", 16384, 6)] * 5, ("fail", 0, 1))
    fake.answer(r"cluster nodes", "deadbeef 10.0.0.7:6379@16379,redis-6\n")
    _run(fake)
    forgets = [c for c in fake.commands() if "cluster forget" in c]
    assert len(forgets) == 5 and all(c.endswith("deadbeef") for c in forgets)
    assert any("--cluster add-node" in c and c.endswith("redis-6 redis-1") for c in
               fake.commands())  # fmt: skip


def test_slot_owner_from_cluster_nodes() -> None:
    # as redis-cli prints CLUSTER NODES on a 7.0 cluster whose nodes announce their names
    nodes = (
        "774e 192.168.0.4:6379@16379,redis-3 master - 0 1796287918302 3 connected 10923-16383\n"
        "d8ae 192.168.0.5:6379@16379,redis-4 slave 774e 0 1796287917299 3 connected\n"
        "ebec 192.168.0.3:6379@16379,redis-2 master - 0 1796287917000 2 connected 5461-10922\n"
        "8e32 192.168.0.2:6379@16379,redis-1 myself,master - 0 0 1 connected 0-5460\n"
        "dead 192.168.0.9:6379@16379,redis-7 master,fail - 0 0 4 disconnected 16000\n"
    )
    assert parse_slot_owner(nodes, 7792) == "redis-2"
    assert parse_slot_owner(nodes, 0) == "redis-1"
    assert parse_slot_owner(nodes, 16383) == "redis-3"
    assert parse_slot_owner(nodes, 99999) == ""


def test_cluster_template_renders_one_service_per_node() -> None:
    template = PACKAGE / "_bundle" / "playbooks" / "templates" / "redis-cluster.yml.j2"
    layout = layout_from_vars({"redis_mode": "cluster"}).as_vars()
    compose = yaml.safe_load(render(template.read_text(), {"layout": layout}))
    assert list(compose["services"]) == list(NODES)
    command = compose["services"]["redis-4"]["command"][-1]
    assert "--cluster-announce-hostname redis-4" in command
    assert "--cluster-preferred-endpoint-type hostname" in command
    assert "--masterauth" in command and "ports" not in compose["services"]["redis-4"]
    assert set(compose["volumes"]) == {f"{n}-data" for n in NODES}
