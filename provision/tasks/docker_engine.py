"""``docker_engine``: Docker Engine and Compose from the distribution's packages.

Debian and Ubuntu: apt, ``docker.io`` and whichever Compose package the release has
(``docker-compose-v2`` on Ubuntu, ``docker-compose`` on Debian: v1 on 12, the v2 plugin on 13).
Amazon Linux 2023: dnf ``docker`` plus the Compose CLI plugin (not packaged there).
A host that already runs Docker with Compose, the login user in the ``docker`` group: ok.

On Debian and Ubuntu it first waits, at most ``lock_timeout`` seconds, for whoever holds the
dpkg lock (cloud-init, unattended-upgrades), saying who that is, and finishes the work of a
dpkg run that was killed half-way (``dpkg --configure -a``); see ``dpkg_lock``.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass

from provision.errors import TaskError
from provision.tasks.base import ModuleSpec, Outcome, TaskContext
from provision.tasks.dpkg_lock import settle, wait_for_lock
from provision.tasks.facts import HostFacts, gather, host_facts

__all__ = ["SPEC", "DockerEngineArgs", "install_commands"]

LOCK_TIMEOUT = 300  # seconds to wait for the dpkg lock, by default


def apt(lock_timeout: float = LOCK_TIMEOUT) -> list[str]:
    """apt-get, waiting for the dpkg lock (a race after ``wait_for_lock``) instead of failing."""
    return [
        "env",
        "DEBIAN_FRONTEND=noninteractive",
        "apt-get",
        "-q",
        "-y",
        "-o",
        f"DPkg::Lock::Timeout={max(1, math.ceil(lock_timeout))}",
    ]


# The packages this release has, beside docker.io: the Compose package it ships, and
# `docker-cli` where the CLI is split out of docker.io (Debian 13 and later).
PICK_PACKAGES = (
    "for p in docker-compose-v2 docker-compose-plugin docker-compose; do "
    'if apt-cache show "$p" >/dev/null 2>&1; then echo "$p"; break; fi; done; '
    "if apt-cache show docker-cli >/dev/null 2>&1; then echo docker-cli; fi"
)
COMPOSE_PLUGIN_URL = (
    "https://github.com/docker/compose/releases/download/v{version}/docker-compose-linux-{arch}"
)

PLUGIN_DIR = "/usr/local/lib/docker/cli-plugins"
DOWNLOADS = "/var/tmp/provision-compose"


def verify_command(folder: str, name: str) -> str:
    """The shell command that checks ``folder/name`` against ``folder/name.sha256`` (Docker's
    release format, ``HASH *NAME``); it fails on a mismatch or a missing checksum."""
    return f"cd {shlex.quote(folder)} && sha256sum --check --strict {shlex.quote(name + '.sha256')}"


@dataclass(frozen=True)
class DockerEngineArgs:
    compose_plugin_version: str = "2.29.7"  # Amazon Linux only: the plugin is downloaded
    lock_timeout: int = LOCK_TIMEOUT  # Debian, Ubuntu: how long to wait for the dpkg lock


def _user_needs_group(facts: HostFacts) -> bool:
    return facts.user not in ("", "root") and "docker" not in facts.user_groups


def install_commands(
    facts: HostFacts,
    args: DockerEngineArgs,
    packages: tuple[str, ...] = ("docker-compose",),
    lock_timeout: float = LOCK_TIMEOUT,
) -> list[list[str]]:
    """The commands that install Docker and Compose on a host with these facts."""
    if facts.os_family == "debian":
        return [
            [*apt(lock_timeout), "update"],
            [*apt(lock_timeout), "install", "--no-install-recommends", "docker.io", *packages],
            ["systemctl", "enable", "--now", "docker"],
        ]
    if facts.os_id == "amzn":
        arch = "aarch64" if facts.arch in ("aarch64", "arm64") else "x86_64"
        url = COMPOSE_PLUGIN_URL.format(version=args.compose_plugin_version, arch=arch)
        name = url.rsplit("/", 1)[1]
        return [
            ["dnf", "install", "-y", "docker"],
            ["mkdir", "-p", PLUGIN_DIR, DOWNLOADS],
            ["curl", "-fsSL", "--retry", "5", "-o", f"{DOWNLOADS}/{name}", url],
            ["curl", "-fsSL", "--retry", "5", "-o", f"{DOWNLOADS}/{name}.sha256", f"{url}.sha256"],
            # Docker publishes the checksum beside each binary: nothing unchecked is installed.
            ["sh", "-c", verify_command(DOWNLOADS, name)],
            ["install", "-m", "0755", f"{DOWNLOADS}/{name}", f"{PLUGIN_DIR}/docker-compose"],
            ["rm", "-rf", DOWNLOADS],
            ["systemctl", "enable", "--now", "docker"],
        ]
    raise TaskError(f"docker_engine: unsupported distribution {facts.os_id!r}")


def apply(ctx: TaskContext, args: DockerEngineArgs) -> Outcome:
    facts = host_facts(ctx)
    need_engine = not (facts.docker_running and facts.compose_command)
    add_user = _user_needs_group(facts)
    if not need_engine and not add_user:
        return ctx.ok(f"Docker {facts.docker_server}, Compose {facts.compose_version}")
    if need_engine:
        _install(ctx, facts, args)
    if facts.user not in ("", "root"):
        ctx.run(["usermod", "-aG", "docker", facts.user])
    if not ctx.check:
        ctx.conn.reconnect()  # a new session picks up the docker group
        facts = gather(ctx)
        if not (facts.docker_running and facts.compose_command):
            raise TaskError("docker_engine: Docker or Compose still missing after install")
    what = "installed Docker and Compose" if need_engine else f"added {facts.user} to group docker"
    return ctx.changed(what, **facts.as_dict())


def _install(ctx: TaskContext, facts: HostFacts, args: DockerEngineArgs) -> None:
    if facts.cloud_init:
        # A just-booted EC2 host may still be installing packages: wait, as apt would fail.
        ctx.read(["cloud-init", "status", "--wait"])
    packages: tuple[str, ...] = ("docker-compose",)
    left: float = args.lock_timeout
    if facts.os_family == "debian":
        if not ctx.check:
            state, left = wait_for_lock(ctx, args.lock_timeout)
            settle(ctx, state)
        ctx.run([*apt(left), "update"])
        packages = tuple(ctx.read_sh(PICK_PACKAGES).stdout.split()) or packages
    commands = install_commands(facts, args, packages, left)
    if facts.os_family == "debian":
        commands = commands[1:]  # the package lists were just updated
    for argv in commands:
        ctx.run(argv, timeout=900)


SPEC = ModuleSpec("docker_engine", DockerEngineArgs, apply)
