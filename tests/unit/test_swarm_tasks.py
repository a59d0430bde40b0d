"""docker_swarm and docker_node against fake hosts: facts in, commands out; the join token in no
command line, outcome, recorded command or error; re-runs ok; another swarm refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provision.errors import ProvisionError
from provision.models import HostSpec, Result
from provision.tasks.base import TaskContext
from provision.tasks.docker_node import DockerNodeArgs, label_changes, parse_nodes
from provision.tasks.docker_node import apply as node_apply
from provision.tasks.docker_swarm import DockerSwarmArgs, apply, parse_swarm
from tests.unit.fakes import FakeRemote

TOKEN = "SWMTKN-1-secretsecretsecret-abcdef"
INACTIVE = json.dumps({"LocalNodeState": "inactive", "NodeID": "", "NodeAddr": ""})


def active(node: str, addr: str, manager: bool, managers: tuple[str, ...] = ()) -> str:
    return json.dumps({"LocalNodeState": "active", "NodeID": node, "NodeAddr": addr,
                       "ControlAvailable": manager, "Cluster": {"ID": "c1"} if manager else None,
                       "RemoteManagers": [{"Addr": m} for m in managers]})  # fmt: skip


def host(name: str, swarm: str, gossip_held: bool = False) -> FakeRemote:
    remote = FakeRemote(host=HostSpec(name, "127.0.0.1", user="admin"))
    remote.answer(r"docker info --format", swarm)
    remote.answer(r":1F0A", code=0 if gossip_held else 1)  # port 7946 listening?
    return remote


def ctx_for(remote: FakeRemote, peers: dict[str, FakeRemote], check: bool = False) -> TaskContext:
    return TaskContext(remote, check=check, become=True, peers=lambda name: peers[name])


def test_parse_swarm():
    info = parse_swarm(active("n1", "10.0.0.5", True, ("10.0.0.5:2377",)))
    assert info is not None and (info.state, info.node_id, info.manager) == ("active", "n1", True)
    assert info.managers == ("10.0.0.5:2377",)
    assert parse_swarm("") is None and parse_swarm("not json") is None


def test_the_manager_initialises_on_its_private_address_then_is_ok():
    manager = host("m", INACTIVE)
    manager.answer(r"python3 -c", "10.0.0.5\n")
    out = apply(ctx_for(manager, {}), DockerSwarmArgs(manager="m"))
    assert out.changed and "docker swarm init --advertise-addr 10.0.0.5" in manager.commands()
    again = host("m", active("n1", "10.0.0.5", True))
    out = apply(ctx_for(again, {}), DockerSwarmArgs(manager="m"))
    assert not out.changed and not any("init" in c for c in again.commands())


def test_a_worker_joins_with_the_token_on_stdin_only():
    manager = host("m", active("n1", "10.0.0.5", True))
    manager.answer(r"join-token -q worker", TOKEN + "\n")
    worker = host("w", INACTIVE)
    worker.answer(r"python3 -c", "10.0.0.6\n")
    ctx = ctx_for(worker, {"m": manager})
    out = apply(ctx, DockerSwarmArgs(manager="m"))
    assert out.changed and out.data["role"] == "worker"
    joins = [c for c in worker.calls if "swarm join" in " ".join(c)]
    assert joins and all(TOKEN not in " ".join(c) for c in worker.calls)
    assert joins[0][-2:] == ["10.0.0.5:2377", "10.0.0.6"]
    assert worker.stdin == [f"{TOKEN}\n".encode()]
    assert TOKEN not in repr(out) and all(TOKEN not in c for c in ctx.executed)


def test_a_failed_join_hides_the_token_even_if_docker_echoed_it():
    manager = host("m", active("n1", "10.0.0.5", True))
    manager.answer(r"join-token -q worker", TOKEN)
    worker = host("w", INACTIVE)
    worker.answer(r"python3 -c", "10.0.0.6")
    worker.answer(r"swarm join", "", code=1, stderr=f"invalid join token {TOKEN}")
    with pytest.raises(ProvisionError) as caught:
        apply(ctx_for(worker, {"m": manager}), DockerSwarmArgs(manager="m"))
    assert TOKEN not in str(caught.value) and "***" in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is not None


def test_a_worker_of_this_swarm_is_ok_and_reads_no_token():
    manager = host("m", active("n1", "10.0.0.5", True))
    manager.answer(r"docker node inspect --format \{\{.ID\}\} n2", "n2\n")
    worker = host("w", active("n2", "10.0.0.6", False, ("10.0.0.5:2377",)))
    out = apply(ctx_for(worker, {"m": manager}), DockerSwarmArgs(manager="m"))
    assert not out.changed
    assert not any("join-token" in c for c in manager.commands())


def test_a_host_in_another_swarm_is_a_clear_error():
    manager = host("m", active("n1", "10.0.0.5", True))
    manager.answer(r"docker node inspect", "", code=1, stderr="no such node")
    worker = host("w", active("x9", "10.9.0.6", False, ("10.9.0.1:2377",)))
    with pytest.raises(ProvisionError, match=r"already in another swarm.*10\.9\.0\.1:2377.*leave"):
        apply(ctx_for(worker, {"m": manager}), DockerSwarmArgs(manager="m"))
    in_other = host("m", active("x1", "10.9.0.6", False, ("10.9.0.1:2377",)))
    with pytest.raises(ProvisionError, match="already in another swarm"):
        apply(ctx_for(in_other, {}), DockerSwarmArgs(manager="m"))


def test_check_mode_changes_nothing_and_absent_leaves():
    manager = host("m", INACTIVE)
    worker = host("w", INACTIVE)
    out = apply(ctx_for(worker, {"m": manager}, check=True), DockerSwarmArgs(manager="m"))
    assert out.changed and not any("join" in c for c in worker.commands())
    leaving = host("w", active("n2", "10.0.0.6", False))
    assert apply(ctx_for(leaving, {}), DockerSwarmArgs(manager="m", state="absent")).changed
    assert "docker swarm leave --force" in leaving.commands()
    assert not apply(ctx_for(host("w", INACTIVE), {}), DockerSwarmArgs("m", "absent")).changed


def test_label_changes_touch_only_our_prefix():
    held = {"io.provision.redis": "true", "other": "x"}
    assert label_changes(held, {"io.provision.redis": "true"}) == []
    assert label_changes(held, {}) == ["--label-rm", "io.provision.redis"]
    assert label_changes({}, {"io.provision.redis": "true"}) == [
        "--label-add", "io.provision.redis=true"]  # fmt: skip
    with pytest.raises(ProvisionError):
        DockerNodeArgs(manager="m", labels={"redis": "true"})


def test_parse_nodes_drops_the_self_mark():
    text = "n1 *   Ready m1 Leader\nn2 Down w-old Unreachable\nn3 Ready w2\n"
    assert parse_nodes(text.replace("n1 *   ", "n1 * ")) == [
        ("n1", "Ready", "m1", "Leader"), ("n2", "Down", "w-old", "Unreachable"),
        ("n3", "Ready", "w2", "")]  # fmt: skip


def test_docker_node_labels_on_the_manager_and_removes_a_gone_node():
    manager = host("m", active("n1", "10.0.0.5", True))
    manager.answer(r"node inspect --format \{\{json .Spec.Labels\}\} n1", "{}")
    manager.answer(r"docker node ls", "n1 * Ready m1\nn2 Down w-old\nn3 Ready w2\nn4 Down w3\n")
    worker = host("w", active("n3", "10.0.0.6", False))
    stopped = host("s", active("n4", "10.0.0.7", False))  # down for now, still a member
    args = DockerNodeArgs(manager="m", labels={"io.provision.redis": "true"},
                          members=("m", "w", "s"))  # fmt: skip
    out = node_apply(ctx_for(manager, {"m": manager, "w": worker, "s": stopped}), args)
    assert out.changed and out.data["removed"] == ["w-old"]
    commands = manager.commands()
    assert "docker node update --label-add io.provision.redis=true n1" in commands
    assert "docker node rm --force n2" in commands
    assert not any("rm --force n4" in c for c in commands)
    assert not any("demote" in c for c in commands)  # n2 was a worker


def test_a_gone_manager_is_demoted_then_removed():
    """Swarm refuses `docker node rm` of a manager; with the others a majority, Raft lets
    the unreachable one be demoted first."""
    manager = host("m", active("n1", "10.0.0.5", True))
    manager.answer(r"node inspect --format \{\{json .Spec.Labels\}\} n1", "{}")
    manager.answer(r"docker node ls", "n1 * Ready m Leader\nn2 Down m2 Unreachable\n"
                                      "n3 Ready m3 Reachable\n")  # fmt: skip
    peers = {
        "m": manager,
        "m3": host("m3", active("n3", "10.0.0.7", True)),
        "m2": host("m2", INACTIVE),
    }  # its replacement, not in the swarm yet
    out = node_apply(
        ctx_for(manager, peers), DockerNodeArgs(manager="m", members=("m", "m2", "m3"))
    )
    assert out.data["removed"] == ["m2"]
    commands = manager.commands()
    demote = commands.index("docker node demote n2")
    assert commands.index("docker node rm --force n2") > demote, commands


def test_three_managers_the_first_three_members_join_with_the_manager_token():
    manager = host("c-1", active("n1", "10.0.0.5", True))
    manager.answer(r"join-token -q manager", "SWMTKN-manager\n")
    manager.answer(r"join-token -q worker", TOKEN + "\n")
    members = ("c-1", "c-2", "c-3", "c-4")
    for name, role, token in (("c-3", "manager", "SWMTKN-manager"), ("c-4", "worker", TOKEN)):
        node = host(name, INACTIVE)
        node.answer(r"python3 -c", "10.0.0.9\n")
        peers = {"c-1": manager, "c-2": host("c-2", INACTIVE), "c-3": node, "c-4": node}
        out = apply(ctx_for(node, peers), DockerSwarmArgs("c-1", members=members, managers=3))
        assert out.changed and out.data["role"] == role and f"as a {role}" in out.msg
        assert node.stdin == [f"{token}\n".encode()]


def test_a_replacement_for_the_first_host_joins_the_swarm_its_managers_kept():
    """The first host (the one that makes the swarm) is gone for good and its replacement
    takes its name: it joins through a manager that is left, as a manager, instead of
    starting a second swarm that the others could not join."""
    new = host("c-1", INACTIVE)
    new.answer(r"python3 -c", "10.0.0.8\n")
    left = host("c-2", active("n2", "10.0.0.6", True, ("10.0.0.6:2377",)))
    left.answer(r"join-token -q manager", "SWMTKN-manager\n")
    peers = {"c-1": new, "c-2": left, "c-3": host("c-3", active("n3", "10.0.0.7", True))}
    args = DockerSwarmArgs("c-1", members=("c-1", "c-2", "c-3"), managers=3)
    out = apply(ctx_for(new, peers), args)
    assert out.changed and out.data["role"] == "manager", out
    assert not any("swarm init" in c for c in new.commands())
    assert "sh -c " in " ".join(new.commands()) and new.stdin == [b"SWMTKN-manager\n"]
    assert "joined the swarm at 10.0.0.6:2377" in out.msg


def test_a_worker_that_should_manage_is_promoted_through_a_manager():
    """A cluster grown from two hosts to three: its second host, a worker, is promoted."""
    manager = host("c-1", active("n1", "10.0.0.5", True))
    manager.answer(r"node inspect --format \{\{.ID\}\} n2", "n2\n")
    worker = host("c-2", active("n2", "10.0.0.6", False, ("10.0.0.5:2377",)))
    args = DockerSwarmArgs("c-1", members=("c-1", "c-2", "c-3"), managers=3)
    out = apply(ctx_for(worker, {"c-1": manager}), args)
    assert out.changed and "promoted" in out.msg
    assert "docker node promote n2" in manager.commands()
    again = host("c-2", active("n2", "10.0.0.6", True))
    assert not apply(ctx_for(again, {"c-1": manager}), args).changed


def test_cloud_hosts_come_in_name_order_whatever_the_launch_order(tmp_path: Path) -> None:
    """A replacement for a gone host comes from a later RunInstances (launch index 0, any
    instance ID): ``<cluster>-1`` stays first in the group, so it stays the Swarm manager."""
    from provision.aws.results import Instance
    from provision.cloud import Target
    from provision.tasks.ec2 import _found

    def instance(name: str, instance_id: str) -> Instance:
        return Instance(name, instance_id, None, "10.0.0.1", 22, "admin", None)

    launched = [instance("c-2", "i-0001"), instance("c-10", "i-0002"), instance("c-1", "i-0003")]
    outcome = _found(launched, Target("aws", "c", "us-east-1", tmp_path), False, "found")
    assert outcome.data["hosts"] == ["c-1", "c-2", "c-10"]
    assert [e["vars"]["instance_id"] for e in outcome.data["add_hosts"]] == [
        "i-0003",
        "i-0001",
        "i-0002",
    ]


def test_a_host_whose_left_swarm_still_holds_the_gossip_port_restarts_docker_first():
    """After `docker swarm leave`, dockerd can keep its old agent bound to 7946: the next
    join's agent cannot start and the overlay's DNS stays empty. Docker is restarted first."""
    manager = host("m", active("n1", "10.0.0.5", True))
    manager.answer(r"join-token -q worker", TOKEN + "\n")
    worker = host("w", INACTIVE, gossip_held=True)
    worker.answer(r"python3 -c", "10.0.0.6\n")
    freed = iter([0, 1])  # held when read, free after the restart
    worker.answers.insert(0, (r":1F0A", lambda argv: Result("grep", next(freed), "", "")))
    out = apply(ctx_for(worker, {"m": manager}), DockerSwarmArgs(manager="m"))
    assert out.changed
    commands = worker.commands()
    restart = next(i for i, c in enumerate(commands) if "systemctl restart docker" in c)
    join = next(i for i, c in enumerate(commands) if "docker swarm join" in c)
    assert restart < join, commands
    clear = host("w", INACTIVE)
    clear.answer(r"python3 -c", "10.0.0.6\n")
    apply(ctx_for(clear, {"m": manager}), DockerSwarmArgs(manager="m"))
    assert not any("restart docker" in c for c in clear.commands())


def test_a_gossip_port_held_by_something_else_is_an_error_before_the_join():
    manager = host("m", active("n1", "10.0.0.5", True))
    manager.answer(r"join-token -q worker", TOKEN + "\n")
    worker = host("w", INACTIVE, gossip_held=True)
    worker.answer(r"python3 -c", "10.0.0.6\n")
    with pytest.raises(ProvisionError, match=r"port 7946/tcp .* held by another process"):
        apply(ctx_for(worker, {"m": manager}), DockerSwarmArgs(manager="m"))
    assert not any("swarm join" in c for c in worker.commands())


def test_a_manager_labels_its_own_node_without_waiting_for_the_first_host():
    """A replacement for the first host joins side by side with the other hosts' tasks: the
    other managers label their own nodes, never through a first host that is still joining
    (seen: `docker node update` refused there, as it was not yet a manager)."""
    joining = host("c-1", INACTIVE)
    second = host("c-2", active("n2", "10.0.0.6", True))
    second.answer(r"node inspect --format \{\{json .Spec.Labels\}\} n2", "{}")
    args = DockerNodeArgs(manager="c-1", labels={"io.provision.redis": "false"})
    out = node_apply(ctx_for(second, {"c-1": joining, "c-2": second}), args)
    assert out.changed
    assert "docker node update --label-add io.provision.redis=false n2" in second.commands()
    assert joining.commands() == []


def test_two_hosts_make_one_manager_not_two():
    """Two managers need both for a quorum: losing either would lose the swarm. With two
    hosts the second joins as a worker, whatever ``managers`` asks."""
    manager = host("c-1", active("n1", "10.0.0.5", True))
    manager.answer(r"join-token -q worker", TOKEN + "\n")
    second = host("c-2", INACTIVE)
    second.answer(r"python3 -c", "10.0.0.6\n")
    args = DockerSwarmArgs("c-1", members=("c-1", "c-2"), managers=3)
    out = apply(ctx_for(second, {"c-1": manager, "c-2": second}), args)
    assert out.data["role"] == "worker" and second.stdin == [f"{TOKEN}\n".encode()]


def test_a_manager_that_leaves_is_demoted_first_but_the_first_host():
    """A manager that leaves, even with --force, stays a Raft member: two of three gone and
    the first host, still removing the stacks, has no quorum. Demoted first, Raft shrinks."""
    other = host("c-2", active("n2", "10.0.0.6", True))
    assert apply(ctx_for(other, {}), DockerSwarmArgs("c-1", state="absent")).changed
    commands = other.commands()
    assert commands.index("docker node demote n2") < commands.index("docker swarm leave --force")
    first = host("c-1", active("n1", "10.0.0.5", True))
    apply(ctx_for(first, {}), DockerSwarmArgs("c-1", state="absent"))
    assert "docker swarm leave --force" in first.commands()
    assert not any("demote" in c for c in first.commands())
