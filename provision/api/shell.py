"""Day two on a running cluster: a shell or a command on a host, a command in a service's
container, the services' logs; each over OpenSSH (``ssh``) with the cluster's user, key, port
and pinned ``known_hosts``, so that an unknown host key is refused here as everywhere else in
provision (``StrictHostKeyChecking=yes``; the user's ``~/.ssh/config`` is not read).

These build ``ssh`` command lines; the CLI runs them (``provision ssh``, ``exec``, ``logs``);
``service_containers`` runs one itself, for ``provision status``.

    >>> argv = ssh_argv(spec, known_hosts=Path(".provision/known_hosts"))  # doctest: +SKIP
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from provision.errors import ConfigError
from provision.models.names import check_name

if TYPE_CHECKING:
    from provision.models import HostSpec

__all__ = [
    "containers_command", "exec_command", "logs_command", "parse_containers", "pick_host",
    "service_containers", "ssh_argv",
]  # fmt: skip

# A service's running container on this host: a compose project's (its service label) or a
# swarm stack's task (its service is STACK_SERVICE).
_FIND = (
    'c=$(docker ps -q --filter "label=com.docker.compose.service=$1" | head -n 1); '
    '[ -n "$c" ] || c=$(docker ps --format \'{{.ID}} {{.Label "com.docker.swarm.service.name"}}\''
    ' | awk -v s="$1" \'$2 ~ ("_" s "$") { print $1; exit }\'); '
    '[ -n "$c" ] || { echo "no running container of service $1 on $(hostname)" >&2; exit 1; }; '
)


def ssh_argv(
    spec: HostSpec,
    *,
    known_hosts: Path,
    command: Sequence[str] = (),
    tty: bool = False,
    batch: bool = False,
) -> list[str]:
    """``ssh`` to ``spec`` trusting only ``known_hosts``; ``command`` (argv, quoted for the
    remote shell) or a login shell; ``tty`` forces a terminal (``-t``); ``batch`` never asks
    for a password or a passphrase (``BatchMode=yes``: a command nobody watches)."""
    argv = ["ssh", "-F", "none", "-p", str(spec.port), "-l", spec.user,
            "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={known_hosts}", "-o", "ConnectTimeout=15"]  # fmt: skip
    if batch:
        argv += ["-o", "BatchMode=yes"]
    if spec.key_file is not None:
        argv += ["-i", str(spec.key_file)]
    if tty:
        argv.append("-t")
    argv.append(spec.address)
    if command:
        argv += ["--", shlex.join(command)]
    return argv


def pick_host(hosts: Sequence[HostSpec], name: str | None) -> HostSpec:
    """The host called ``name`` (its inventory name or address); the first when None."""
    if not hosts:
        raise ConfigError("the cluster has no host", field="host")
    if name is None:
        return hosts[0]
    for spec in hosts:
        if name in (spec.name, spec.address):
            return spec
    known = ", ".join(h.name for h in hosts)
    raise ConfigError(f"no host {name!r} in the cluster (hosts: {known})", field="host")


def exec_command(service: str, command: Sequence[str], *, tty: bool) -> list[str]:
    """The remote command that runs ``command`` in ``service``'s container on that host."""
    check_name(service, "service")
    if not command:
        raise ConfigError("give the command to run after --", field="command")
    flags = "-it" if tty else "-i"
    script = _FIND + f'shift; exec docker exec {flags} "$c" "$@"'
    return ["sh", "-c", script, "sh", service, *command]


def logs_command(
    service: str | None, *, tail: int | None, since: str | None, follow: bool
) -> list[str]:
    """The remote command that prints the logs of ``service``'s containers on that host (of
    every compose or stack container when None), each line prefixed with its container."""
    if service is not None:
        check_name(service, "service")
    if since is not None and (not since or since.startswith("-") or len(since) > 40):
        raise ConfigError(f"not a time: {since!r} (e.g. 10m, 2026-12-07T10:00:00)", field="since")
    if tail is not None and tail < 0:
        raise ConfigError(f"not a number of lines: {tail}", field="tail")
    options = [*(["--tail", str(tail)] if tail is not None else []),
               *(["--since", since] if since else []),
               *(["--follow"] if follow else [])]  # fmt: skip
    select = (
        f"--filter label=com.docker.compose.service={service}"
        if service
        else "--filter label=com.docker.compose.project"
    )
    swarm = f'$2 ~ ("_" "{service}" "$")' if service else '$2 != ""'
    script = (
        f"{{ docker ps -q {select}; docker ps --format "
        "'{{.ID}} {{.Label \"com.docker.swarm.service.name\"}}' "
        f"| awk '{swarm} {{ print $1 }}'; }} | sort -u | while read -r c; do "
        'name=$(docker inspect --format "{{.Name}}" "$c" | cut -c2-); '
        f'docker logs {shlex.join(options)} "$c" 2>&1 | sed "s/^/$name | /" & '
        "done; wait"
    )
    return ["sh", "-c", script]


# One line per container of a compose project or a swarm stack: project, compose service,
# stack, swarm service, name, state, status ("Up 3 minutes (healthy)").
_CONTAINERS = (
    'docker ps -a --format \'{{.Label "com.docker.compose.project"}}|'
    '{{.Label "com.docker.compose.service"}}|{{.Label "com.docker.stack.namespace"}}|'
    '{{.Label "com.docker.swarm.service.name"}}|{{.Names}}|{{.State}}|{{.Status}}\''
)


def containers_command() -> list[str]:
    """The remote command that lists the compose projects' and swarm stacks' containers on
    that host (``parse_containers`` reads its output)."""
    return ["sh", "-c", _CONTAINERS]


def parse_containers(text: str) -> list[dict[str, str]]:
    """``containers_command``'s output as ``{"project", "service", "container", "state",
    "health", "status"}`` entries, sorted by project and service; ``health`` is the
    healthcheck's verdict (``healthy``, ``unhealthy``, ``starting``) or ``none`` without one.
    A swarm task's project is its stack and its service the swarm service without the
    stack's prefix, as ``provision logs SERVICE`` names it; an ended swarm task (the swarm keeps
    a few as its history) is left out."""
    found: list[dict[str, str]] = []
    for line in text.splitlines():
        fields = line.split("|", 6)
        if len(fields) != 7:
            continue
        project, service, stack, swarm_service, name, state, status = fields
        if not service and swarm_service:
            if state in ("exited", "dead"):
                continue  # a swarm task's history (task-history-limit): replaced already
            project, service = stack, swarm_service.removeprefix(f"{stack}_")
        if not service:
            continue  # neither compose's nor a stack's: not the cluster's
        health = "none"
        for mark, verdict in (("(healthy)", "healthy"), ("(unhealthy)", "unhealthy"),
                              ("(health: starting)", "starting")):  # fmt: skip
            if mark in status:
                health = verdict
        found.append({"project": project, "service": service, "container": name,
                      "state": state, "health": health, "status": status})  # fmt: skip
    return sorted(found, key=lambda c: (c["project"], c["service"], c["container"]))


def service_containers(
    spec: HostSpec, *, known_hosts: Path, timeout: float = 30.0
) -> list[dict[str, str]] | None:
    """The containers of ``spec``'s compose projects and stacks (``parse_containers``), asked
    over ``ssh`` as ``ssh_argv`` reaches the host, never asking for a password; ``None`` when
    the host does not answer or its ``docker`` fails."""
    argv = ssh_argv(spec, known_hosts=known_hosts, command=containers_command(), batch=True)
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout, check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_containers(done.stdout) if done.returncode == 0 else None
