"""EC2-like SSH hosts as local containers: systemd, sshd, sudo, room for Docker.

A sandbox host is a container of ``provision/sshhost:<distro>`` that boots
systemd and answers SSH on a loopback port that docker picks. Its public key
arrives the way cloud-init would hand it in (a folder mounted at
``/etc/ssh/authorized_keys.d``), and ``/var/lib/docker`` is a volume so that
the Docker engine provision later installs inside runs overlay2 on a real
filesystem rather than overlay-on-overlay.

Example::

    >>> host = start_host("web-1", public_key=key, labels={"io.provision.test": "abc"})
    ... # doctest: +SKIP
    >>> wait_for_ssh(host)                    # doctest: +SKIP
    'SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3'
    >>> remove_host("web-1")                  # doctest: +SKIP
"""

from __future__ import annotations

import re
import shutil
import socket
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from provision.errors import CommandError, ConfigError, ConnectError
from provision.models import HostSpec
from provision.sandbox import images, localdocker, seed

__all__ = [
    "CONTAINER_PREFIX",
    "SandboxHost",
    "host_key",
    "known_hosts_line",
    "remove_all",
    "remove_host",
    "start_host",
    "wait_for_ssh",
]

CONTAINER_PREFIX = "provision-sandbox-"
_HOST_LABEL = "io.provision.sandbox.host"
_KEYDIR_LABEL = "io.provision.sandbox.keydir"
_KEYDIR_PREFIX = "provision-sandbox-keys-"
_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,40}[a-z0-9])?")


@dataclass(frozen=True)
class SandboxHost:
    """A running sandbox host, reachable at ``user@address:port``."""

    name: str
    container_id: str
    address: str
    port: int
    user: str
    volume: str
    distro: str = "bookworm"
    http_port: int = 0  # the host's port 80 (OpenResty), published on 127.0.0.1

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.http_port}"

    @property
    def container_name(self) -> str:
        return CONTAINER_PREFIX + self.name

    def host_spec(self, key_file: Path | None = None) -> HostSpec:
        """The inventory entry that reaches this host."""
        return HostSpec(
            name=self.name, address=self.address, port=self.port, user=self.user, key_file=key_file
        )


def _checked_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"invalid sandbox host name {name!r}: use 1-42 of [a-z0-9-], "
            "starting and ending with a letter or digit",
            field="name",
        )
    return name


def _volume_name(name: str) -> str:
    return f"{CONTAINER_PREFIX}{name}-docker"


def start_host(
    name: str,
    *,
    distro: str = "bookworm",
    public_key: str,
    labels: Mapping[str, str] | None = None,
    network: str | None = None,
    docker_ready: bool = False,
    preloaded: bool = False,
    user_data: str = "",
    apt_daily: float = 0,
) -> SandboxHost:
    """Start a sandbox host whose user ``admin`` accepts ``public_key``.

    The image must exist (see ``images.ensure_images``). ``labels`` go on the
    container and its volume, so ``remove_all`` finds both. ``network``: a user-defined
    network of the local engine to join instead of the default bridge (the hosts of one
    cluster reach each other there, as instances do in a VPC). ``docker_ready``: the host
    starts with Docker and Compose installed (``images.docker_ready_image``), as from an
    AMI that ships them; otherwise it is bare. ``preloaded`` (with ``docker_ready``): its
    engine also holds the service images (``seed.fill``), as from an AMI baked with them.
    ``user_data``: what the instance was launched with; the host's cloud-init stand-in runs
    it late in its first boot, as cloud-init runs an EC2 instance's (a script, ``#!``).
    ``apt_daily``: seconds its apt-daily stand-in holds the apt lists lock from boot, as
    apt-daily's first ``apt-get update`` does on a fresh instance (0: not at all).
    Does not wait for SSH: call ``wait_for_ssh``.
    """
    if preloaded and not docker_ready:
        raise ConfigError("a preloaded host must be Docker-ready", field="preloaded")
    image = images.docker_ready_image(distro) if docker_ready else images.sshhost_image(distro)
    _checked_name(name)
    if not public_key.strip().startswith(("ssh-", "ecdsa-", "sk-")):
        raise ConfigError("public_key must be an OpenSSH public key line", field="public_key")
    # Refuse rather than replace: the clean-up below removes by name.
    if localdocker.docker("container", "inspect", CONTAINER_PREFIX + name, check=False).ok:
        raise ConfigError(
            f"sandbox host {name!r} already exists; remove it first (remove_host)", field="name"
        )
    keydir = _write_key_dir(public_key, user_data)
    all_labels = {**(labels or {}), _HOST_LABEL: name, _KEYDIR_LABEL: str(keydir)}
    label_args = [arg for k, v in all_labels.items() for arg in ("--label", f"{k}={v}")]
    volume = _volume_name(name)
    try:
        localdocker.docker("volume", "create", "--label", localdocker.SANDBOX_LABEL,
                           *label_args, volume)  # fmt: skip
        if preloaded:
            seed.fill(volume, distro)
        container_id = _run_on_fixed_ports(image, name, [
            "--hostname", name, "--label", localdocker.SANDBOX_LABEL, *label_args,
            *images.HOST_RUN_FLAGS,
            *(["--env", f"PROVISION_APT_DAILY={apt_daily:g}"] if apt_daily > 0 else []),
            "--volume", f"{volume}:/var/lib/docker",
            "--volume", f"{keydir}:/etc/ssh/authorized_keys.d:ro",
            "--volume", f"{keydir / _SEED}:/var/lib/cloud/seed/nocloud:ro",
            *(["--network", network] if network else []),
        ])  # fmt: skip
        port = localdocker.published_port(container_id, "22/tcp")
        http_port = localdocker.published_port(container_id, "80/tcp")
    except BaseException:
        _remove(CONTAINER_PREFIX + name, volume, keydir)
        raise
    return SandboxHost(name, container_id, "127.0.0.1", port, "admin", volume, distro, http_port)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_on_fixed_ports(image: str, name: str, options: list[str]) -> str:
    """Run the host container with its SSH and HTTP ports published on fixed loopback ports
    (``127.0.0.1:PORT:22``), so that a restart of the container (a reboot of the host) keeps
    them, as a reboot keeps an instance's address: an ephemeral ``127.0.0.1::22`` is chosen
    anew by Docker on every start, and the pinned host key's ``[127.0.0.1]:PORT`` would no
    longer match. A port taken between choosing and binding is chosen again (3 tries)."""
    for attempt in range(3):
        ports = ["--publish", f"127.0.0.1:{_free_port()}:22",
                 "--publish", f"127.0.0.1:{_free_port()}:80"]  # fmt: skip
        try:
            return localdocker.run(image, name=CONTAINER_PREFIX + name, options=[*options, *ports])
        except CommandError as exc:
            taken = "already allocated" in str(exc) or "address already in use" in str(exc)
            if not taken or attempt == 2:
                raise
            localdocker.docker("rm", "--force", CONTAINER_PREFIX + name, check=False)
    raise AssertionError("unreachable")


#: The folder (in the key folder) of the host's NoCloud seed: its ``user-data``.
_SEED = "seed"


def _write_key_dir(public_key: str, user_data: str = "") -> Path:
    # sshd reads the key as the user (StrictModes): root-owned, not writable
    # by others, and traversable by `admin`. The seed beside it is root's only.
    keydir = Path(tempfile.mkdtemp(prefix=_KEYDIR_PREFIX))
    keydir.chmod(0o755)
    keyfile = keydir / "admin"
    keyfile.write_text(public_key.strip() + "\n", encoding="utf-8")
    keyfile.chmod(0o644)
    seed = keydir / _SEED
    seed.mkdir(mode=0o700)
    (seed / "user-data").write_text(user_data, encoding="utf-8")
    return keydir


def wait_for_ssh(host: SandboxHost, timeout: float = 60.0) -> str:
    """Wait until sshd on ``host`` sends its banner; return the banner line.

    Docker's port proxy accepts connections before sshd is up (and then closes
    them), so a TCP connect alone proves nothing: wait for ``SSH-``.
    """
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host.address, host.port), timeout=2) as sock:
                sock.settimeout(2)
                banner = sock.recv(256).decode("ascii", errors="replace")
            if banner.startswith("SSH-"):
                return banner.strip()
            last = f"unexpected answer {banner[:40]!r}" if banner else "connection closed"
        except OSError as exc:
            last = str(exc) or type(exc).__name__
        if localdocker.inspect(host.container_id, "{{.State.Running}}") != "true":
            raise ConnectError("the sandbox container stopped while booting", host=_where(host))
        time.sleep(0.25)
    raise ConnectError(f"no SSH banner within {timeout:.0f} s ({last})", host=_where(host))


def _where(host: SandboxHost) -> str:
    return f"{host.name} ({host.address}:{host.port})"


def host_key(host: SandboxHost, key_type: str = "ed25519") -> str:
    """The host's public host key as ``"ssh-ed25519 AAAA..."`` (no comment).

    The keys are made at first boot, so call this after ``wait_for_ssh``.
    """
    path = f"/etc/ssh/ssh_host_{key_type}_key.pub"
    line = localdocker.exec_in(host.container_id, ["cat", path]).stdout.strip()
    fields = line.split()
    if len(fields) < 2:
        raise ConnectError(f"unreadable host key in {path}: {line!r}", host=_where(host))
    return f"{fields[0]} {fields[1]}"


def known_hosts_line(host: SandboxHost, key_type: str = "ed25519") -> str:
    """A known_hosts line that pins ``host``'s key at its loopback port."""
    return f"[{host.address}]:{host.port} {host_key(host, key_type)}"


def remove_host(name: str) -> None:
    """Remove the host's container, its Docker volume and its key folder (if present)."""
    _checked_name(name)
    container = CONTAINER_PREFIX + name
    _remove(container, _volume_name(name), _keydir_of(container))


def remove_all(label_selector: str) -> None:
    """Remove every container, volume and network labelled ``label_selector`` (KEY=VALUE).

    Also removes the key folders of the sandbox hosts among those containers.
    """
    for cid in localdocker.container_ids(label_selector):
        _remove(cid, None, _keydir_of(cid))
    localdocker.remove_by_label(label_selector)


def _keydir_of(container: str) -> Path | None:
    try:
        raw = localdocker.inspect(container, f'{{{{index .Config.Labels "{_KEYDIR_LABEL}"}}}}')
    except CommandError:  # no such container
        return None
    return Path(raw) if raw and raw != "<no value>" else None


def _remove(container: str, volume: str | None, keydir: Path | None) -> None:
    localdocker.remove_container(container)
    if volume:
        localdocker.remove_volume(volume)
    # Only ever delete a folder this module made under the temp dir.
    if (
        keydir
        and keydir.parent == Path(tempfile.gettempdir())
        and keydir.name.startswith(_KEYDIR_PREFIX)
    ):
        shutil.rmtree(keydir, ignore_errors=True)


def find_host(name: str) -> SandboxHost | None:
    """The running sandbox host called ``name``, e.g. started by an earlier ``provision up``."""
    container = CONTAINER_PREFIX + _checked_name(name)
    found = localdocker.docker("container", "inspect", "--format",
                               "{{.Id}} {{.State.Running}} {{.Config.Image}}", container,
                               check=False)  # fmt: skip
    if not found.ok:
        return None
    container_id, running, image = found.stdout.split()
    if running != "true":
        localdocker.docker("start", container)
    distro = image.rpartition(":")[2] or "bookworm"
    return SandboxHost(
        name, container_id, "127.0.0.1", localdocker.published_port(container_id, "22/tcp"),
        "admin", _volume_name(name), distro, localdocker.published_port(container_id, "80/tcp"),
    )  # fmt: skip


def find_by_port(port: int, label_selector: str) -> SandboxHost | None:
    """The sandbox host (among those labelled) whose SSH is published on ``port``."""
    for container_id in localdocker.container_ids(label_selector):
        name = localdocker.inspect(container_id, f'{{{{index .Config.Labels "{_HOST_LABEL}"}}}}')
        host = find_host(name.strip()) if name.strip() else None
        if host is not None and host.port == port:
            return host
    return None
