"""The images the sandbox needs, made in the local engine only when missing.

This test bed has no registry, so every image can be built from Debian's
packages: a ``debootstrap`` base per suite, EC2-like SSH hosts on top of it,
and stand-ins for ``redis:latest`` and ``openresty/openresty:latest``. Where a
registry answers (a developer's machine), the two service images are pulled
instead. The local engine is the cache: each image built here carries a label with
the digest of its recipe (its Dockerfile, the files it copies, its suite and the
image it starts from), and is built again only when that digest changes, so a
second call costs a few ``docker image inspect`` calls and an edited Dockerfile
takes effect on the next run.

Example::

    >>> from provision.sandbox.images import ensure_images
    >>> ensure_images(("bookworm", "trixie"), progress=print)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from provision.errors import ConfigError, SandboxError
from provision.sandbox import localdocker

__all__ = [
    "FILES",
    "HOST_RUN_FLAGS",
    "OPENRESTY_IMAGE",
    "REDIS_IMAGE",
    "SUPPORTED_DISTROS",
    "base_image",
    "docker_ready_image",
    "ensure_images",
    "sshhost_image",
]

#: Dockerfiles and config files baked into the images.
FILES = Path(__file__).resolve().parent / "files"
#: Debian suites a sandbox host can run.
SUPPORTED_DISTROS = ("bookworm", "trixie")
REDIS_IMAGE = "redis:latest"
OPENRESTY_IMAGE = "openresty/openresty:latest"
#: The suite the two service stand-ins are built from.
SERVICE_SUITE = "bookworm"

# systemd as PID 1 and a nested Docker engine need these; `--privileged` fails
# on machines whose bounding set lacks CAP_SYS_RESOURCE ("unable to apply caps").
# `--tty` gives the host a /dev/console (systemd sends its own output to /dev/null
# without one), the serial console whose text the container's log keeps and the
# sandbox's EC2 answers GetConsoleOutput with.
#: ``docker run`` options every host image needs.
HOST_RUN_FLAGS = (
    "--tty",
    "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
    "--security-opt", "seccomp=unconfined",
    "--security-opt", "apparmor=unconfined",
    "--security-opt", "systempaths=unconfined",
    "--cgroupns", "host",
    "--volume", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs", "/run", "--tmpfs", "/run/lock",
)  # fmt: skip

Progress = Callable[[str], None]
#: The label that holds the digest of the recipe an image was built from.
RECIPE_LABEL = "io.provision.sandbox.recipe"


@dataclass(frozen=True)
class _Service:
    ref: str
    dockerfile: str


_SERVICES = (
    _Service(REDIS_IMAGE, "redis.Dockerfile"),
    _Service(OPENRESTY_IMAGE, "openresty.Dockerfile"),
)


def base_image(distro: str) -> str:
    return f"provision/debian-base:{_checked(distro)}"


def sshhost_image(distro: str) -> str:
    return f"provision/sshhost:{_checked(distro)}"


def docker_ready_image(distro: str) -> str:
    """The host image with Docker and Compose installed (a Docker-ready AMI's stand-in)."""
    return f"provision/sshhost-docker:{_checked(distro)}"


def _checked(distro: str) -> str:
    if distro not in SUPPORTED_DISTROS:
        raise ConfigError(
            f"unknown sandbox distro {distro!r}; expected one of {', '.join(SUPPORTED_DISTROS)}",
            field="distro",
        )
    return distro


def ensure_images(
    distros: Sequence[str] = ("bookworm",),
    *,
    docker_ready: bool = False,
    progress: Progress | None = None,
) -> None:
    """Make sure the SSH host images for ``distros`` and both service images exist, and with
    ``docker_ready`` the Docker-ready host images for ``distros`` too.

    Each image is built only if missing; raises EngineUnavailable when there is
    no local engine, CommandError when a build fails.
    """
    say = progress or (lambda _msg: None)
    wanted = [_checked(d) for d in dict.fromkeys(distros)]
    for service in _SERVICES:
        _ensure_service(service, say)
    for distro in wanted:
        _ensure_sshhost(distro, say)
        if docker_ready:
            _ensure_docker_ready(distro, say)


def _ensure_service(service: _Service, say: Progress) -> None:
    found = localdocker.image_labels(service.ref)
    if found is not None and localdocker.SANDBOX_LABEL.partition("=")[0] not in found:
        return  # pulled from a registry: not ours to rebuild
    if found is None:
        # A pull is cheap where a registry answers and fails fast where none does.
        say(f"pulling {service.ref}")
        if localdocker.pull(service.ref, timeout=30):
            return
    _ensure_base(SERVICE_SUITE, say)
    _ensure_built(service.ref, service.dockerfile, SERVICE_SUITE, base_image(SERVICE_SUITE), say,
                  what="stand-in ")  # fmt: skip


def _ensure_sshhost(distro: str, say: Progress) -> None:
    _ensure_base(distro, say)
    _ensure_built(sshhost_image(distro), "sshhost.Dockerfile", distro, base_image(distro), say)


def _ensure_docker_ready(distro: str, say: Progress) -> None:
    _ensure_built(docker_ready_image(distro), "sshhost-docker.Dockerfile", distro,
                  sshhost_image(distro), say)  # fmt: skip


def _ensure_built(
    ref: str, dockerfile: str, suite: str, parent: str, say: Progress, *, what: str = ""
) -> None:
    """Build ``ref`` unless it exists and was built from the recipe as it is now; the image
    it replaces is removed (when no container uses it)."""
    digest = recipe_digest(dockerfile, suite, parent)
    found = localdocker.image_labels(ref)
    if found is not None and found.get(RECIPE_LABEL) == digest:
        return
    old = localdocker.image_id(ref) if found is not None else None
    why = "" if found is None else " (its recipe changed)"
    _timed(say, f"building {what}{ref}{why}", lambda: localdocker.build(
        ref, dockerfile=FILES / dockerfile, context=FILES, build_args={"SUITE": suite},
        labels={RECIPE_LABEL: digest}))  # fmt: skip
    if old:
        localdocker.docker("image", "rm", old, check=False)


def recipe_digest(dockerfile: str, suite: str, parent: str) -> str:
    """The digest of what an image is built from: the Dockerfile, every file it COPYs (from
    ``FILES``), the suite, and the ID of the image it starts ``FROM`` (``parent``)."""
    text = (FILES / dockerfile).read_text(encoding="utf-8")
    sha = hashlib.sha256(text.encode())
    for line in text.splitlines():
        words = line.split()
        if not words or words[0] != "COPY":
            continue
        for source in [w for w in words[1:-1] if not w.startswith("--")]:
            source = source.replace("${SUITE}", suite)
            sha.update(source.encode() + b"\0" + (FILES / source).read_bytes())
    parent_id = localdocker.image_id(parent)
    sha.update(f"\0{suite}\0{parent_id}".encode())
    return sha.hexdigest()[:16]


def _ensure_base(distro: str, say: Progress) -> None:
    ref = base_image(distro)
    if localdocker.image_exists(ref):
        return
    _timed(say, f"debootstrapping {ref}", lambda: _debootstrap_import(distro, ref))


def _debootstrap_import(suite: str, ref: str) -> None:
    """``debootstrap --variant=minbase SUITE ROOT``, then import ROOT as ``ref``."""
    if shutil.which("debootstrap") is None:
        raise SandboxError(
            f"cannot build {ref}: `debootstrap` is not installed (apt-get install debootstrap)"
        )
    if os.geteuid() != 0:
        raise SandboxError(f"cannot build {ref}: debootstrap needs root")
    with tempfile.TemporaryDirectory(prefix="provision-debootstrap-") as tmp:
        root = Path(tmp) / "root"
        argv = ["debootstrap", "--variant=minbase", suite, str(root)]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = "\n".join(done.stdout.splitlines()[-10:] + done.stderr.splitlines()[-10:])
            raise SandboxError(f"debootstrap {suite} failed ({done.returncode}):\n{tail}")
        _drop_apt_caches(root)
        localdocker.import_rootfs(ref, root, changes=[f"LABEL {localdocker.SANDBOX_LABEL}"])


def _drop_apt_caches(root: Path) -> None:
    # debootstrap leaves ~80 MB of .debs and package lists behind; every image
    # on top runs `apt-get update` anyway, and smaller layers mean a faster
    # `docker save | ssh | docker load` onto sandbox hosts.
    for pattern in ("var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*"):
        for path in root.glob(pattern):
            if path.is_file():
                path.unlink()


def _timed(say: Progress, what: str, step: Callable[[], None]) -> None:
    say(f"{what} ...")
    start = time.monotonic()
    step()
    say(f"{what}: done in {time.monotonic() - start:.0f} s")
