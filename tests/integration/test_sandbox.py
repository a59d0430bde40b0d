"""The test bed itself: sandbox hosts boot, answer SSH with our key, and go away cleanly."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import paramiko
import pytest

from provision.errors import ConfigError
from provision.sandbox import cloud, hosts, images, localdocker
from provision.sandbox.hosts import SandboxHost
from provision.sandbox.moto_server import stop_server

pytestmark = pytest.mark.integration


def _server_key(host: SandboxHost) -> str:
    """The ed25519 host key the SSH server presents, as "ssh-ed25519 BASE64"."""
    with socket.create_connection((host.address, host.port), timeout=10) as sock:
        transport = paramiko.Transport(sock)
        try:
            transport.get_security_options().key_types = ["ssh-ed25519"]
            transport.start_client(timeout=10)
            key = transport.get_remote_server_key()
            return f"{key.get_name()} {key.get_base64()}"
        finally:
            transport.close()


def test_images_exist_and_are_labelled(sandbox_images: None) -> None:
    for distro in ("bookworm", "trixie"):
        ref = images.sshhost_image(distro)
        labels = localdocker.inspect(ref, "{{json .Config.Labels}}", kind="image")
        assert '"io.provision.sandbox":"1"' in labels, ref
    for ref in (images.REDIS_IMAGE, images.OPENRESTY_IMAGE):
        assert localdocker.image_exists(ref)


def test_host_answers_ssh_and_sudo(
    ssh_host: SandboxHost, ssh_argv: Callable[..., list[str]]
) -> None:
    banner = hosts.wait_for_ssh(ssh_host, timeout=5)
    assert banner.startswith("SSH-2.0-OpenSSH")
    assert ssh_host.address == "127.0.0.1"

    done = subprocess.run(
        ssh_argv(ssh_host, "sudo", "-n", "sh", "-c", "id -un; id -u"),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["root", "0"]

    whoami = subprocess.run(
        ssh_argv(ssh_host, "id", "-un"), capture_output=True, text=True, timeout=60, check=True
    )
    assert whoami.stdout.strip() == "admin"


def test_host_is_bare_and_booted_by_systemd(
    bare_ssh_host: SandboxHost, ssh_argv: Callable[..., list[str]]
) -> None:
    script = (
        "cat /proc/1/comm; systemctl is-active ssh.service; "
        "command -v docker || echo no-docker; . /etc/os-release; echo $VERSION_CODENAME"
    )
    done = subprocess.run(
        ssh_argv(bare_ssh_host, "sh", "-c", script),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = done.stdout.split()
    assert lines[0] == "systemd"
    assert lines[1:] == ["active", "no-docker", "bookworm"]


@pytest.mark.parametrize("distro", ["bookworm", "trixie"])
def test_docker_ready_host_runs_docker_and_compose_for_admin(
    distro: str,
    ssh_host_factory: Callable[..., SandboxHost],
    ssh_argv: Callable[..., list[str]],
) -> None:
    """The Docker-ready image: the engine runs under systemd, `admin` reaches it without sudo
    (the docker group), and the release's Compose answers: what `docker_engine` looks for."""
    host = ssh_host_factory(f"ready-{distro}", distro=distro)
    # The engine may still be starting (systemd: "activating") just after sshd answers.
    script = (
        "timeout 60 sh -c 'until systemctl is-active -q docker; do sleep 0.2; done'; "
        "systemctl is-active docker; id -nG | tr ' ' '\\n' | grep -x docker; "
        "docker info --format '{{.Driver}}'; "
        "docker compose version --short 2>/dev/null || docker-compose version --short"
    )
    done = subprocess.run(
        ssh_argv(host, "sh", "-c", script),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    active, group, driver, compose = done.stdout.split()
    assert (active, group, driver) == ("active", "docker", "overlay2")
    assert compose.lstrip("v")[0] == ("1" if distro == "bookworm" else "2"), compose


def test_host_key_matches_what_the_server_presents(ssh_host: SandboxHost) -> None:
    pinned = hosts.host_key(ssh_host)
    assert pinned.startswith("ssh-ed25519 ")
    assert _server_key(ssh_host) == pinned
    assert hosts.known_hosts_line(ssh_host) == f"[127.0.0.1]:{ssh_host.port} {pinned}"


def test_each_host_has_its_own_host_key(ssh_host_factory: Callable[..., SandboxHost]) -> None:
    first, second = ssh_host_factory("a"), ssh_host_factory("b")
    assert first.port != second.port
    assert hosts.host_key(first) != hosts.host_key(second)


def test_wrong_key_is_refused(
    ssh_host: SandboxHost,
    ssh_argv: Callable[..., list[str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    other = tmp_path_factory.mktemp("other-key") / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    argv = ssh_argv(ssh_host, "true")
    argv[argv.index("-i") + 1] = str(other)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 255
    assert "Permission denied" in done.stderr


def test_trixie_host(
    ssh_host_factory: Callable[..., SandboxHost], ssh_argv: Callable[..., list[str]]
) -> None:
    host = ssh_host_factory("trixie", distro="trixie")
    script = ". /etc/os-release; echo $VERSION_CODENAME; sudo -n true && echo ok"
    done = subprocess.run(
        ssh_argv(host, "sh", "-c", script),
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert done.stdout.split() == ["trixie", "ok"]


def test_removal_leaves_nothing(ssh_host_factory: Callable[..., SandboxHost]) -> None:
    host = ssh_host_factory("rm")
    keydir = localdocker.inspect(
        host.container_id, '{{index .Config.Labels "io.provision.sandbox.keydir"}}'
    )
    assert os.path.isfile(os.path.join(keydir, "admin"))
    assert localdocker.docker("volume", "inspect", host.volume, check=False).ok

    hosts.remove_host(host.name)

    assert not localdocker.docker("container", "inspect", host.container_id, check=False).ok
    assert not localdocker.docker("volume", "inspect", host.volume, check=False).ok
    assert not os.path.exists(keydir)
    with socket.socket() as sock:  # the published port is gone too
        assert sock.connect_ex((host.address, host.port)) != 0
    hosts.remove_host(host.name)  # removing again is not an error


class _KeyPair(Protocol):
    public_key: str


def test_remove_all_by_label(
    sandbox_images: None, ssh_keypair: _KeyPair, sandbox_labels: dict[str, str]
) -> None:
    # A label of this test's own: the session's label also covers hosts that
    # other (module-scoped) fixtures may still be using.
    session = sandbox_labels["io.provision.test"]
    selector = f"io.provision.test.case=remove-all-{session}"
    labels = {**sandbox_labels, selector.split("=")[0]: selector.split("=")[1]}
    try:
        first = hosts.start_host(f"ra1-{session}", public_key=ssh_keypair.public_key, labels=labels)
        hosts.start_host(f"ra2-{session}", public_key=ssh_keypair.public_key, labels=labels)
        localdocker.docker("network", "create", "--label", selector, f"provision-ra-{session}")
        assert first.container_id in localdocker.container_ids(selector)
        assert first.volume in localdocker.volume_names(selector)
        assert len(localdocker.container_ids(selector)) == 2
    finally:
        hosts.remove_all(selector)

    assert localdocker.container_ids(selector) == []
    assert localdocker.volume_names(selector) == []
    assert localdocker.network_ids(selector) == []


def test_an_existing_host_is_not_replaced(
    ssh_host: SandboxHost, sandbox_labels: dict[str, str]
) -> None:
    with pytest.raises(ConfigError, match="already exists"):
        hosts.start_host(ssh_host.name, public_key="ssh-ed25519 AAAA x", labels=sandbox_labels)
    assert localdocker.inspect(ssh_host.container_id, "{{.State.Running}}") == "true"
    hosts.wait_for_ssh(ssh_host, timeout=5)


def test_ssh_port_is_published_on_loopback_only(ssh_host: SandboxHost) -> None:
    bindings = localdocker.inspect(ssh_host.container_id, "{{json .NetworkSettings.Ports}}")
    assert f'"HostIp":"127.0.0.1","HostPort":"{ssh_host.port}"' in bindings
    assert "0.0.0.0" not in bindings


_LUA_CONF = """
worker_processes 1;
events { worker_connections 64; }
http {
    lua_package_path "/usr/local/openresty/lua/?.lua;;";
    resolver 127.0.0.11 ipv6=off;
    server {
        listen 80;
        location /ping { content_by_lua_block {
            local redis = require "resty.redis"
            local red = redis:new()
            red:set_timeout(2000)
            local ok, err = red:connect("redis", 6379)
            if not ok then ngx.say("connect failed: ", err) return end
            red:auth("s3cret")
            ngx.say(require("sandboxcheck").tag, " ", red:ping())
        } }
    }
}
"""


def test_service_stand_ins_work_together(
    sandbox_images: None, test_session_id: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Like the seed: redis and openresty on one network; Lua reaches redis by name."""
    folder = tmp_path_factory.mktemp("openresty")
    (folder / "nginx.conf").write_text(_LUA_CONF, encoding="utf-8")
    (folder / "lua").mkdir()
    (folder / "lua" / "sandboxcheck.lua").write_text('return { tag = "lua-path-ok" }\n')
    # The session label for the final sweep; a label of its own to clean up
    # just this test's resources (other tests' hosts may still be running).
    label = f"io.provision.test={test_session_id}"
    own = f"io.provision.test.case=stand-ins-{test_session_id}"
    prefix = f"provision-test-{test_session_id}"
    try:
        localdocker.docker("network", "create", "--label", label, "--label", own, f"{prefix}-net")
        common = ["--label", label, "--label", own, "--network", f"{prefix}-net"]
        redis_argv = ["redis-server", "--requirepass", "s3cret", "--appendonly", "yes"]
        localdocker.run(images.REDIS_IMAGE, name=f"{prefix}-redis", command=redis_argv,
                        options=[*common, "--network-alias", "redis"])  # fmt: skip
        localdocker.run(images.OPENRESTY_IMAGE, name=f"{prefix}-openresty", options=[
            *common,
            "--volume", f"{folder / 'nginx.conf'}:/usr/local/openresty/nginx/conf/nginx.conf:ro",
            "--volume", f"{folder / 'lua'}:/usr/local/openresty/lua:ro",
        ])  # fmt: skip
        body = _retry_curl(f"{prefix}-openresty", "http://127.0.0.1/ping")
        assert body == "lua-path-ok PONG"
        pinged = localdocker.exec_in(f"{prefix}-redis", ["redis-cli", "-a", "s3cret", "ping"])
        assert pinged.stdout.strip() == "PONG"
        aof = localdocker.exec_in(f"{prefix}-redis", ["redis-cli", "-a", "s3cret", "config",
                                                      "get", "appendonly"])  # fmt: skip
        assert aof.stdout.split() == ["appendonly", "yes"]
        resolved = localdocker.exec_in(f"{prefix}-openresty", ["getent", "hosts", "redis"])
        assert resolved.stdout.split()[1] == "redis"
    finally:
        hosts.remove_all(own)


def _retry_curl(container: str, url: str) -> str:
    last = ""
    for _ in range(40):
        done = localdocker.docker("exec", container, "curl", "-fsS", url, check=False)
        if done.ok:
            return done.stdout.strip()
        last = done.stderr
        time.sleep(0.25)
    raise AssertionError(f"{url} never answered: {last}")


def test_a_sandbox_cloud_stops_its_moto_server_whatever_other_clouds_still_run(
    sandbox_images: None, sandbox_labels: dict[str, str], tmp_path: Path
) -> None:
    """Two sandbox clouds (two state folders) on one engine: the `down` of one cloud's last
    cluster stops that cloud's moto server, though another cloud's host is still running (on
    the old code any host of any cloud kept every server alive: a user's pytest session,
    torn down while another one ran, left its server behind)."""
    from provision.cloud import Target, _remove_sandbox
    from provision.sandbox.moto_server import ensure_server, running_server

    other = f"provision-test-other-cloud-{uuid.uuid4().hex[:6]}"
    label_args = [a for k, v in {**sandbox_labels, cloud.CLUSTER_LABEL: "other",
                                 "io.provision.sandbox.cloud": str(tmp_path / "elsewhere")}.items()
                  for a in ("--label", f"{k}={v}")]  # fmt: skip
    localdocker.run(images.REDIS_IMAGE, name=other, options=label_args)
    state = (tmp_path / "state").resolve()
    folder = cloud.sandbox_dir(state)
    try:
        ensure_server(folder)
        assert running_server(folder)
        removed = _remove_sandbox(Target("sandbox", "mine", "us-east-1", state))
        assert removed == ["moto server"], removed
        assert running_server(folder) is None
        assert cloud.any_cluster_left(tmp_path / "elsewhere") and cloud.any_cluster_left()
    finally:
        stop_server(folder, forget=True)
        localdocker.remove_container(other)
