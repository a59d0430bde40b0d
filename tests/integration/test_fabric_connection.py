"""``Cluster.connection(host)``: a ``fabric.Connection`` a pipeline runs its own commands
through, to a real sshd (a sandbox host), trusting only the project's pinned host keys."""

from __future__ import annotations

from pathlib import Path

import fabric
import paramiko
import pytest

from provision import Cluster, Options
from provision.api import host_inventory
from provision.sandbox import hosts, localdocker
from tests.helpers import state_for

pytestmark = pytest.mark.integration


def _cluster(port: int, key: Path, state: Path) -> Cluster:
    inventory = host_inventory(f"admin@127.0.0.1:{port}", key, name="web1")
    return Cluster(inventory, options=Options(state_dir=state))


def test_fabric_connection_runs_a_command_on_the_host(ssh_host_factory, ssh_keypair, tmp_path):
    host = ssh_host_factory("fab")
    state = state_for(host, tmp_path / "state")  # known_hosts pins the host's key
    cluster = _cluster(host.port, ssh_keypair.private_key, state)

    conn = cluster.connection("web1")
    assert isinstance(conn, fabric.Connection)
    assert (conn.host, conn.port, conn.user) == ("127.0.0.1", host.port, "admin")
    try:
        done = conn.run("id -un; cat /etc/hostname; sudo -n id -u", hide=True)
        # the remote end is the container: its hostname is the container's id prefix
        container_hostname = localdocker.inspect(host.container_id, "{{.Config.Hostname}}")
        assert done.stdout.split() == ["admin", container_hostname.strip(), "0"]
        assert conn.run("exit 3", hide=True, warn=True).exited == 3
    finally:
        conn.close()
    # by name, by address and by default (the first host): the same host
    assert cluster.connection().port == cluster.connection("127.0.0.1").port == host.port
    # nothing was added to the pinned keys
    assert (state / "known_hosts").read_text() == hosts.known_hosts_line(host) + "\n"


def test_fabric_connection_refuses_an_unknown_host_key(ssh_host_factory, ssh_keypair, tmp_path):
    host = ssh_host_factory("fabkey")
    key = ssh_keypair.private_key
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "known_hosts").write_text("")

    conn = _cluster(host.port, key, empty).connection("web1")
    with pytest.raises(paramiko.SSHException, match=r"is not in .*known_hosts"):
        conn.run("touch /tmp/should-not-run", hide=True)
    conn.close()
    assert (empty / "known_hosts").read_text() == ""  # not learned (trust on first use)

    # a different key pinned for the host's address and port: refused as well
    other = tmp_path / "other"
    other.mkdir()
    wrong = paramiko.Ed25519Key.from_private_key_file(str(key))  # any key but the host's
    (other / "known_hosts").write_text(
        f"[127.0.0.1]:{host.port} {wrong.get_name()} {wrong.get_base64()}\n"
    )
    conn = _cluster(host.port, key, other).connection("web1")
    with pytest.raises(paramiko.BadHostKeyException):
        conn.run("touch /tmp/should-not-run", hide=True)
    conn.close()

    # the control: Fabric's own default (AutoAddPolicy) would have connected and run it;
    # with the pinned key, our connection sees that it never ran through ours before
    plain = fabric.Connection(
        "127.0.0.1", user="admin", port=host.port,
        connect_kwargs={"key_filename": str(key), "allow_agent": False, "look_for_keys": False},
        config=fabric.Config(overrides={"load_ssh_configs": False}),
    )  # fmt: skip
    try:
        assert plain.run(
            "test -e /tmp/should-not-run || echo absent", hide=True, in_stream=False
        ).stdout == ("absent\n")
    finally:
        plain.close()
