"""``docker_engine``: Docker Engine and Compose from the distribution's packages.

Debian and Ubuntu: apt, ``docker.io`` and whichever Compose package the release has
(``docker-compose-v2`` on Ubuntu, ``docker-compose`` on Debian: v1 on 12, the v2 plugin on 13).
Amazon Linux 2023: dnf ``docker`` plus the Compose CLI plugin (not packaged there).
A host that already runs Docker with Compose, the login user in the ``docker`` group: ok.

On an instance whose user-data installs Docker while it boots (``provision.aws.userdata``),
SSH answers before cloud-init is done: when Docker is not there yet, the task waits for
cloud-init and looks again; installed by then: ok, and it says so. Where the user-data's
install failed, it installs over SSH and says why (the cloud-init log's last lines).

On Debian and Ubuntu it first waits, at most ``lock_timeout`` seconds, for whoever holds the
dpkg lock (cloud-init, unattended-upgrades), saying who that is, and finishes the work of a
dpkg run that was killed half-way (``dpkg --configure -a``); see ``dpkg_lock``.
"""

from __future__ import annotations

from dataclasses import dataclass

from provision.errors import TaskError
from provision.models.docker_install import (
    COMPOSE_PLUGIN_VERSION,
    LOCK_TIMEOUT,
    PICK_PACKAGES,
    amazon_linux,
    apt,
    debian,
    verify_command,
)
from provision.tasks.base import ModuleSpec, Outcome, TaskContext
from provision.tasks.dpkg_lock import settle, wait_for_lock
from provision.tasks.facts import HostFacts, gather, host_facts

__all__ = ["PICK_PACKAGES", "SPEC", "DockerEngineArgs", "install_commands", "verify_command"]


@dataclass(frozen=True)
class DockerEngineArgs:
    compose_plugin_version: str = COMPOSE_PLUGIN_VERSION  # Amazon Linux: the plugin's
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
        return debian(packages, lock_timeout)
    if facts.os_id == "amzn":
        return amazon_linux(facts.arch, args.compose_plugin_version)
    raise TaskError(f"docker_engine: unsupported distribution {facts.os_id!r}")


#: The last lines of what the user-data printed, where cloud-init keeps it.
BOOT_LOG = ["tail", "-n", "6", "/var/log/cloud-init-output.log"]


def _after_boot(ctx: TaskContext) -> tuple[HostFacts, str]:
    """Wait for cloud-init (the user-data installs Docker while the instance boots; SSH
    answers before it is done), then look again: (the facts now, "" when cloud-init is done,
    else why the install will be made over SSH)."""
    ctx.progress("waiting for cloud-init (the user-data installs Docker during boot)", 0, 0)
    status = ctx.read(["cloud-init", "status", "--wait"])
    ctx.progress("cloud-init done", 0, 0)  # a phase of its own in the run's timing
    ctx.changing()  # the boot changed the host meanwhile: what was read ahead is stale
    facts = gather(ctx)
    if status.ok:
        return facts, ""
    said = " | ".join(ctx.read(BOOT_LOG, sudo=True).stdout.strip().splitlines()[-3:])
    return facts, f"cloud-init reported {status.stdout.strip() or 'an error'}: {said}"


def apply(ctx: TaskContext, args: DockerEngineArgs) -> Outcome:
    facts = host_facts(ctx)
    waited, failed = False, ""
    if not (facts.docker_running and facts.compose_command) and facts.cloud_init and not ctx.check:
        facts, failed = _after_boot(ctx)
        waited = True
    need_engine = not (facts.docker_running and facts.compose_command)
    add_user = _user_needs_group(facts)
    if not need_engine and not add_user:
        if waited:
            ctx.conn.reconnect()  # a session older than the user-data's usermod: the group
            return ctx.ok(f"Docker {facts.docker_server}, Compose {facts.compose_version}, "
                          "installed while the instance booted (user-data)")  # fmt: skip
        return ctx.ok(f"Docker {facts.docker_server}, Compose {facts.compose_version}")
    why = ""
    if need_engine and failed:
        why = f" over SSH: the user-data's install failed ({failed})"
        ctx.progress(f"installing Docker{why}", 0, 0)
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
    return ctx.changed(what + why, **facts.as_dict())


def _install(ctx: TaskContext, facts: HostFacts, args: DockerEngineArgs) -> None:
    if facts.cloud_init and ctx.check:
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
