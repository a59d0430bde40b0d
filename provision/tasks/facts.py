"""Facts: what a host is like now. Each fact is a constant shell command plus a pure parser,
so the parsers are unit-tested on captured output, with no host at all.

The host facts are gathered in one round trip (``HOST_FACTS_SCRIPT``); narrower facts
(a network, a project's containers, a folder's manifest) are read by the module that needs them.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provision.cluster.layout import Layout
    from provision.tasks.base import TaskContext

__all__ = [
    "COMPOSE_STATE_DIR",
    "HOST_FACTS_SCRIPT",
    "PENDING_HANDLERS_FILE",
    "ContainerInfo",
    "HostFacts",
    "NetworkInfo",
    "fact_command",
    "gather",
    "host_facts",
    "parse_containers",
    "parse_host_facts",
    "parse_manifest",
    "parse_network",
]

PENDING_HANDLERS_FILE = "/var/lib/provision/pending-handlers"
COMPOSE_STATE_DIR = "/var/lib/provision/compose"

# One script, one round trip. Runs as root (become); every line is "key=value".
HOST_FACTS_SCRIPT = r"""
if [ -r /etc/os-release ]; then . /etc/os-release; fi
echo "os_id=${ID:-unknown}"
echo "os_like=${ID_LIKE:-}"
echo "os_version=${VERSION_ID:-}"
echo "os_codename=${VERSION_CODENAME:-}"
echo "arch=$(uname -m)"
echo "user=${1:-}"
if [ -n "${1:-}" ]; then echo "user_groups=$(id -nG "$1" 2>/dev/null)"; fi
# The Docker and Compose probes run side by side: Compose v1 alone takes ~0.3 s (Python).
t=$(mktemp -d)
if command -v docker >/dev/null 2>&1; then
  (docker --version > "$t/cli" 2>/dev/null) &
  (docker info --format '{{.ServerVersion}}' > "$t/server" 2>/dev/null) &
  (docker compose version --short > "$t/v2" 2>/dev/null) &
fi
if v1=$(command -v docker-compose); then
  # Compose v1 is Python and takes ~0.3 s to say its version: ask dpkg when it owns the file.
  if dpkg -S "$v1" >/dev/null 2>&1; then
    (dpkg-query -W -f='${Version}' docker-compose 2>/dev/null | sed 's/-[^-]*$//' > "$t/v1") &
  else
    (docker-compose version --short > "$t/v1" 2>/dev/null) &
  fi
fi
wait
echo "docker_cli=$(cat "$t/cli" 2>/dev/null)"
echo "docker_server=$(cat "$t/server" 2>/dev/null)"
echo "compose_v2=$(cat "$t/v2" 2>/dev/null)"
echo "compose_v1=$(cat "$t/v1" 2>/dev/null)"
rm -rf "$t"
if command -v cloud-init >/dev/null 2>&1; then echo "cloud_init=1"; fi
if command -v systemctl >/dev/null 2>&1; then echo "systemd=1"; fi
p=/var/lib/provision/pending-handlers
if [ -r "$p" ]; then while IFS= read -r h; do [ -n "$h" ] && echo "pending=$h"; done < "$p"; fi
"""


@dataclass(frozen=True)
class HostFacts:
    """OS, architecture, Docker and Compose of a host."""

    os_id: str
    os_like: tuple[str, ...] = ()
    os_version: str = ""
    os_codename: str = ""
    arch: str = ""
    user: str = ""
    user_groups: tuple[str, ...] = ()
    docker_cli: str = ""
    docker_server: str = ""
    compose_v2: str = ""
    compose_v1: str = ""
    cloud_init: bool = False
    systemd: bool = False
    pending_handlers: tuple[str, ...] = ()

    @property
    def os_family(self) -> str:
        """``debian`` (Debian, Ubuntu), ``redhat`` (Amazon Linux, Fedora, RHEL) or the os id."""
        ids = (self.os_id, *self.os_like)
        if any(i in ("debian", "ubuntu") for i in ids):
            return "debian"
        if any(i in ("amzn", "fedora", "rhel", "centos") for i in ids):
            return "redhat"
        return self.os_id

    @property
    def docker_running(self) -> bool:
        return bool(self.docker_server)

    @property
    def compose_command(self) -> tuple[str, ...]:
        """The Compose flavour present: the v2 plugin is preferred over v1."""
        if self.compose_v2:
            return ("docker", "compose")
        if self.compose_v1:
            return ("docker-compose",)
        return ()

    @property
    def compose_version(self) -> str:
        return self.compose_v2 or self.compose_v1

    def as_dict(self) -> dict[str, Any]:
        return {
            "os_id": self.os_id,
            "os_family": self.os_family,
            "os_version": self.os_version,
            "os_codename": self.os_codename,
            "arch": self.arch,
            "docker_server": self.docker_server,
            "docker_running": self.docker_running,
            "compose": " ".join(self.compose_command),
            "compose_version": self.compose_version,
        }


def parse_host_facts(stdout: str) -> HostFacts:
    """Parse the output of ``HOST_FACTS_SCRIPT``.

    >>> parse_host_facts("os_id=debian\\narch=x86_64\\ncompose_v1=1.29.2\\n").compose_command
    ('docker-compose',)
    """
    values: dict[str, str] = {}
    pending: list[str] = []
    for line in stdout.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        if key == "pending":
            pending.append(value.strip())
        else:
            values[key.strip()] = value.strip()
    return HostFacts(
        os_id=values.get("os_id", "unknown"),
        os_like=tuple(values.get("os_like", "").split()),
        os_version=values.get("os_version", ""),
        os_codename=values.get("os_codename", ""),
        arch=values.get("arch", ""),
        user=values.get("user", ""),
        user_groups=tuple(values.get("user_groups", "").split()),
        docker_cli=values.get("docker_cli", ""),
        docker_server=values.get("docker_server", ""),
        compose_v2=_version(values.get("compose_v2", "")),
        compose_v1=_version(values.get("compose_v1", "")),
        cloud_init=values.get("cloud_init") == "1",
        systemd=values.get("systemd") == "1",
        pending_handlers=tuple(dict.fromkeys(pending)),
    )


def _version(text: str) -> str:
    # "docker compose version --short" prints "2.26.1"; some builds print "v2.26.1".
    return text.strip().lstrip("v")


@dataclass(frozen=True)
class NetworkInfo:
    name: str
    driver: str
    options: Mapping[str, str] = field(default_factory=dict)
    gateway: str = ""
    subnet: str = ""
    containers: tuple[str, ...] = ()


def parse_network(stdout: str) -> NetworkInfo | None:
    """Parse ``docker network inspect NAME`` (a JSON list); ``None`` when it does not exist."""
    try:
        data = json.loads(stdout)
    except json.JSONDecodeError:
        return None
    if not data:
        return None
    net = data[0]
    ipam = (net.get("IPAM") or {}).get("Config") or [{}]
    containers = tuple(sorted(c.get("Name", "") for c in (net.get("Containers") or {}).values()))
    subnet = ipam[0].get("Subnet", "")
    return NetworkInfo(
        name=net["Name"],
        driver=net.get("Driver", ""),
        options=dict(net.get("Options") or {}),
        gateway=ipam[0].get("Gateway", "") or _first_address(subnet),
        subnet=subnet,
        containers=containers,
    )


def _first_address(subnet: str) -> str:
    """Docker's default ``bridge`` may list no Gateway: it is then the subnet's first address."""
    try:
        return str(next(ipaddress.ip_network(subnet, strict=False).hosts()))
    except (ValueError, StopIteration):
        return ""


@dataclass(frozen=True)
class ContainerInfo:
    id: str
    name: str
    service: str
    state: str
    image: str = ""


def parse_containers(stdout: str) -> tuple[ContainerInfo, ...]:
    """Parse ``docker ps -a --format '{{.ID}} {{.Names}} {{.State}} {{.Label "..service"}}
    {{.Image}}'`` (the last two may be missing)."""
    found = []
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            service = parts[3] if len(parts) > 3 else ""
            image = parts[4] if len(parts) > 4 else ""
            found.append(ContainerInfo(parts[0], parts[1], service, parts[2], image))
    return tuple(sorted(found, key=lambda c: c.name))


def parse_manifest(stdout: str, root: str) -> dict[str, str]:
    """Parse ``sha256sum`` lines of files under ``root`` into {relative path: digest}."""
    root = root.rstrip("/") + "/"
    manifest: dict[str, str] = {}
    for line in stdout.splitlines():
        digest, _, path = line.partition("  ")
        if len(digest) == 64 and path.startswith(root):
            manifest[path[len(root) :]] = digest
    return manifest


# -- reading them on a host (through a task's context) ------------------------------------
def fact_command(ctx: TaskContext) -> list[str]:
    """The read that gathers the host facts (a runner may fetch it ahead with others)."""
    return ["sh", "-c", HOST_FACTS_SCRIPT, "sh", ctx.host.user]


def gather(ctx: TaskContext) -> HostFacts:
    """Read the host facts now (one round trip) and keep them in ``ctx.facts``."""
    result = ctx.read(fact_command(ctx))
    facts = parse_host_facts(result.stdout)
    ctx.facts["host"] = facts
    return facts


def host_facts(ctx: TaskContext) -> HostFacts:
    """The host facts of this run, gathered on first use."""
    facts = ctx.facts.get("host")
    return facts if isinstance(facts, HostFacts) else gather(ctx)


def host_layout(ctx: TaskContext) -> Layout:
    """The cluster's layout from the task's variables, with this host's compose command and
    sudo (``Layout.with_host``): what the checks and the route table read."""
    from provision.cluster.layout import layout_from_vars

    return layout_from_vars(ctx.vars).with_host(host_facts(ctx).compose_command, ctx.become)
