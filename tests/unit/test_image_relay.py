"""docker_images with ``nodes`` against fake hosts: the controller sends to the manager only, the
manager relays to each other node only the images whose ID it lacks, over SSH with a key made
for the run (restricted to ``docker load`` from the manager's address, removed afterwards);
all IDs present: ok; a relay that cannot run: sent from the controller, and said so."""

from __future__ import annotations

import pytest

from provision.models import HostSpec, Result
from provision.tasks import docker_images
from provision.tasks.base import TaskContext, build_args
from provision.tasks.docker_images import SPEC
from provision.tasks.image_relay import MARK, authorized_line
from tests.unit.fakes import FakeRemote

IMAGES = ["redis:latest", "openresty/openresty:latest"]
LOCAL = {"redis:latest": ("sha256:r", 10), "openresty/openresty:latest": ("sha256:o", 20)}
ALL = "sha256:r redis:latest\nsha256:o openresty/openresty:latest\n"
ONLY_REDIS = "sha256:r redis:latest\nsha256:old openresty/openresty:latest\n"


@pytest.fixture(autouse=True)
def controller(monkeypatch):
    """The controller's images (its `docker image inspect`), and its stream, recorded."""
    streamed: list[list[str]] = []

    def stream(images, on_raw):
        streamed.append(list(images))
        return iter([b"tar"])

    monkeypatch.setattr(docker_images, "local_images", lambda images: LOCAL)
    monkeypatch.setattr(docker_images, "_stream", stream)
    return streamed


def node(name: str, ids: str, address: str) -> FakeRemote:
    """A host whose image IDs are ``ids`` until something loads into it, then all of them."""
    remote = FakeRemote(host=HostSpec(name, "127.0.0.1", user="admin"))
    loaded = {"done": False}

    def held(argv: list[str]) -> Result:
        return Result("inspect", 0, ALL if loaded["done"] else ids)

    def load(argv: list[str]) -> Result:
        loaded["done"] = True
        return Result("load", 0)

    remote.answers.insert(0, (r"image inspect", held))
    remote.answers.insert(0, (r"docker load", load))
    remote.answer(r"socket\.socket", f"{address}\n")
    remote.answer(r"^cat /etc/ssh/ssh_host_ed25519_key.pub", "ssh-ed25519 AAAAhost root@x\n")
    remote.loaded = loaded  # type: ignore[attr-defined]
    return remote


def manager_with(peers: dict[str, FakeRemote], keygen: Result | None = None) -> FakeRemote:
    manager = node("m", ALL, "10.0.0.5")
    manager.answer(r"ssh-keygen", f"/tmp/{MARK}.abc\nssh-ed25519 AAAArelay {MARK}\n")
    if keygen is not None:
        manager.answers.insert(0, (r"ssh-keygen", keygen))

    def send(argv: list[str]) -> Result:
        to = argv[6].split("@")[1]  # sh -c SEND sh key known user@addr source images...
        (peer,) = [p for p in peers.values() if p.loaded_address == to]  # type: ignore[attr-defined]
        peer.loaded["done"] = True  # type: ignore[attr-defined]
        return Result("send", 0)

    manager.answers.insert(0, (r"docker save", send))
    return manager


def apply(manager: FakeRemote, peers: dict[str, FakeRemote], check: bool = False):
    everyone = {"m": manager, **peers}
    ctx = TaskContext(manager, check=check, become=True, peers=lambda n: everyone[n])
    args = build_args(SPEC, {"images": IMAGES, "nodes": ["m", *peers]})
    return SPEC.apply(ctx, args)


def workers(**ids: str) -> dict[str, FakeRemote]:
    peers = {}
    for i, (name, held) in enumerate(ids.items()):
        peers[name] = node(name, held, f"10.0.0.{6 + i}")
        peers[name].loaded_address = f"10.0.0.{6 + i}"  # type: ignore[attr-defined]
    return peers


def sends(manager: FakeRemote) -> list[list[str]]:
    return [c for c in manager.calls if "docker save" in " ".join(c)]


def test_every_node_holds_every_id_ok_and_nothing_runs(controller):
    peers = workers(w2=ALL, w3=ALL)
    manager = manager_with(peers)
    outcome = apply(manager, peers)
    assert not outcome.changed and outcome.data["relayed"] == {}
    assert controller == [] and sends(manager) == []
    assert not any("ssh-keygen" in " ".join(c) for c in manager.calls)
    for peer in peers.values():
        assert not any("authorized_keys" in " ".join(c) for c in peer.calls)


def test_the_controller_sends_to_the_manager_once_and_the_manager_relays_what_each_lacks(
    controller,
):
    peers = workers(w2=ONLY_REDIS, w3=ALL, w4="")
    manager = manager_with(peers)
    manager.answers.insert(0, (r"image inspect", lambda argv: Result("i", 0, ONLY_REDIS)))
    outcome = apply(manager, peers)
    assert outcome.changed
    # Over the controller's link: once, to the manager, only what it lacked.
    assert controller == [["openresty/openresty:latest"]]
    assert outcome.data["sent"] == ["openresty/openresty:latest"]
    assert outcome.data["relayed"] == {"w2": ["openresty/openresty:latest"], "w4": IMAGES}
    assert outcome.data["from_controller"] == {}
    relayed = {c[6]: c[8:] for c in sends(manager)}
    assert relayed == {"admin@10.0.0.6": ["openresty/openresty:latest"], "admin@10.0.0.8": IMAGES}
    for c in sends(manager):  # bound to the manager's address, the target's key pinned
        assert c[7] == "10.0.0.5" and c[5].startswith(f"/tmp/{MARK}.abc/known_hosts.")
    assert ["rm", "-rf", f"/tmp/{MARK}.abc"] in manager.calls
    # On each served node: the key in, restricted to docker load from the manager, then out.
    for name in ("w2", "w4"):
        joined = [" ".join(c) for c in peers[name].calls if "authorized_keys" in " ".join(c)]
        assert len(joined) == 2, joined
        assert (
            'restrict,from="10.0.0.5",command="sudo -n docker load" ssh-ed25519 AAAArelay'
            in (joined[0])
        )
        assert "sed -i" in joined[1] and ">>" not in joined[1]
    assert not any("authorized_keys" in " ".join(c) for c in peers["w3"].calls)
    assert all(not peers[n].stdin for n in peers)  # nothing streamed from the controller


def test_check_mode_records_the_relay_and_runs_nothing(controller):
    peers = workers(w2="")
    manager = manager_with(peers)
    ctx_outcome = apply(manager, peers, check=True)
    assert ctx_outcome.changed and controller == [] and sends(manager) == []
    assert not any("authorized_keys" in " ".join(c) for c in peers["w2"].calls)


def test_no_ssh_client_on_the_manager_sends_from_the_controller_and_says_why(controller):
    peers = workers(w2="", w3=ALL)
    manager = manager_with(peers, keygen=Result("keygen", 3, "", "no ssh client on this host"))
    outcome = apply(manager, peers)
    assert outcome.changed and controller == [IMAGES]
    assert outcome.data["relayed"] == {}
    assert "no ssh client" in outcome.data["from_controller"]["w2"]
    assert "sent to w2 from the controller" in outcome.msg
    assert peers["w2"].commands()[-1] == "sh -c gunzip | docker load"


def test_authorized_line_allows_only_docker_load_from_the_source():
    line = authorized_line("ssh-ed25519 AAAAk provision-relay", "10.0.0.5", "docker load", "ab12")
    assert line == 'restrict,from="10.0.0.5",command="docker load" ssh-ed25519 AAAAk ' + (
        f"{MARK}-ab12"
    )
