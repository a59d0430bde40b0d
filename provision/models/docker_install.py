"""How Docker Engine and Compose are installed, per distribution: one source for the
``docker_engine`` task (over SSH, after boot) and the instances' user-data (by cloud-init,
during boot: ``provision.aws.userdata``).

Debian and Ubuntu: apt, ``docker.io`` and whichever Compose package the release has
(``docker-compose-v2`` on Ubuntu, ``docker-compose`` on Debian: v1 on 12, the v2 plugin on
13), ``docker-cli`` where the CLI is split out of ``docker.io``. Amazon Linux 2023: dnf
``docker`` plus the Compose CLI plugin (not packaged there), checked against the checksum
Docker publishes beside it.
"""

from __future__ import annotations

import math
import shlex

__all__ = [
    "COMPOSE_PLUGIN_URL",
    "COMPOSE_PLUGIN_VERSION",
    "LOCK_TIMEOUT",
    "PICK_PACKAGES",
    "amazon_linux",
    "apt",
    "debian",
    "verify_command",
]

LOCK_TIMEOUT = 300  # seconds to wait for the dpkg lock, by default
COMPOSE_PLUGIN_VERSION = "2.29.7"
COMPOSE_PLUGIN_URL = (
    "https://github.com/docker/compose/releases/download/v{version}/docker-compose-linux-{arch}"
)
PLUGIN_DIR = "/usr/local/lib/docker/cli-plugins"
DOWNLOADS = "/var/tmp/provision-compose"
# The packages this release has, beside docker.io: the Compose package it ships, and
# `docker-cli` where the CLI is split out of docker.io (Debian 13 and later).
PICK_PACKAGES = (
    "for p in docker-compose-v2 docker-compose-plugin docker-compose; do "
    'if apt-cache show "$p" >/dev/null 2>&1; then echo "$p"; break; fi; done; '
    "if apt-cache show docker-cli >/dev/null 2>&1; then echo docker-cli; fi"
)


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


def verify_command(folder: str, name: str) -> str:
    """The shell command that checks ``folder/name`` against ``folder/name.sha256`` (Docker's
    release format, ``HASH *NAME``); it fails on a mismatch or a missing checksum."""
    return f"cd {shlex.quote(folder)} && sha256sum --check --strict {shlex.quote(name + '.sha256')}"


def debian(
    packages: tuple[str, ...] = ("docker-compose",), lock_timeout: float = LOCK_TIMEOUT
) -> list[list[str]]:
    """Debian and Ubuntu, once ``packages`` (``PICK_PACKAGES``) are known."""
    return [
        [*apt(lock_timeout), "update"],
        [*apt(lock_timeout), "install", "--no-install-recommends", "docker.io", *packages],
        ["systemctl", "enable", "--now", "docker"],
    ]


def amazon_linux(arch: str, version: str = COMPOSE_PLUGIN_VERSION) -> list[list[str]]:
    """Amazon Linux 2023 on ``arch`` (``uname -m``)."""
    arch = "aarch64" if arch in ("aarch64", "arm64") else "x86_64"
    url = COMPOSE_PLUGIN_URL.format(version=version, arch=arch)
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
