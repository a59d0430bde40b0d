"""Docker-ready sandbox hosts whose engine starts with the service images loaded.

A Docker-ready host (``images.docker_ready_image``) starts with an empty engine, so every
``up`` sends it the two service images and its engine loads them: 10-18 s per host, most of
a sandbox ``up`` on a Docker-ready host. A *seed* is the ``/var/lib/docker`` of such a host
after one load, kept as a volume of the local engine, like the images a cache that outlives
runs. A preloaded host's volume starts as a copy of the seed (about 1.5 s), as an instance
launched from an AMI baked with the images: ``docker_images`` then finds them and reports
``ok``. The engine ID is dropped from each copy, so every host's engine makes its own.

The seed's name carries a digest of the image IDs it was made from (host image and both
service images): rebuilding any of them makes a new seed, and older ones are removed.

Example::

    >>> fill("provision-sandbox-web-1-docker", "bookworm")   # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from provision.connection.flock import held
from provision.errors import CommandError, SandboxError
from provision.sandbox import images, localdocker

__all__ = ["SEED_LABEL", "SERVICE_IMAGES", "ensure_seed", "fill", "seed_name"]

SEED_LABEL = "io.provision.sandbox.seed"
SERVICE_IMAGES = (images.REDIS_IMAGE, images.OPENRESTY_IMAGE)
_PREFIX = "provision-sandbox-seed-"
_COMPLETE = "provision-seed-complete"  # written into the seed last: a partial one lacks it
ENGINE_WAIT = 120.0  # seconds for the seeding host's engine to answer (it boots in ~3 s)
#: One seeding at a time on this machine (two ``up``s may start hosts side by side).
_LOCK = Path(tempfile.gettempdir()) / "provision-sandbox-seed.lock"

Progress = Callable[[str], None]


def seed_name(distro: str) -> str:
    """The seed volume for ``distro`` with the images as they are now in the local engine."""
    refs = (images.docker_ready_image(distro), *SERVICE_IMAGES)
    ids = localdocker.docker("image", "inspect", "--format", "{{.Id}}", *refs).stdout.split()
    return f"{_PREFIX}{distro}-{hashlib.sha256(' '.join(ids).encode()).hexdigest()[:12]}"


def fill(volume: str, distro: str, progress: Progress | None = None) -> None:
    """Fill the empty ``volume`` from the seed of ``distro`` (made first if missing)."""
    seed = seed_name(distro)
    if not _clone(seed, volume, distro):
        ensure_seed(distro, progress)
        if not _clone(seed, volume, distro):
            raise SandboxError(f"the seed {seed} vanished while {volume} was filled from it")


# Layer contents (overlay2/<layer>/diff) are hard links to the seed's: the engine never
# writes a committed layer in place (a container's changes go to its own upper directory,
# an image removal only unlinks), so they are shared safely, and a copy is ~1 s instead of
# writing 500 MB (~9 s here). Every other file (image and layer databases, the network
# store, which the engine rewrites) is a copy of its own. Hard links need both volumes on
# one mount: the engine's volumes folder. SYS_ADMIN lets cp keep overlay's trusted.* xattrs.
_CLONE = """set -eu
test -e "/vols/$1/_data/{complete}" || exit 3
cp -al "/vols/$1/_data/." "/vols/$2/_data/"
cd "/vols/$2/_data"
find . -path './overlay2/*/diff' -prune -o -type f -print | while IFS= read -r f; do
    cp -p "$f" "$f.copy" && mv -f "$f.copy" "$f"
done
rm -f {complete} engine-id
""".replace("{complete}", _COMPLETE)


def _clone(seed: str, volume: str, distro: str) -> bool:
    """Fill ``volume`` from ``seed``; False when the seed is missing or incomplete."""
    found = localdocker.docker("volume", "inspect", "--format", "{{.Mountpoint}}", seed,
                               check=False)  # fmt: skip
    if not found.ok:
        return False
    volumes = str(Path(found.stdout.strip()).parent.parent)
    cloned = localdocker.docker(
        "run", "--rm", "--cap-add", "SYS_ADMIN", "--volume", f"{volumes}:/vols",
        "--entrypoint", "sh", images.docker_ready_image(distro), "-c", _CLONE, "sh", seed,
        volume, timeout=300, check=False,
    )  # fmt: skip
    if cloned.exit_code == 3:
        return False
    if cloned.failed:
        raise CommandError(cloned, host=localdocker.ENGINE)
    return True


def ensure_seed(distro: str, progress: Progress | None = None) -> str:
    """The complete seed volume of ``distro``, made now if missing; returns its name."""
    name = seed_name(distro)
    with held(_LOCK):
        if _complete(name, distro):
            return name
        for stale in localdocker.volume_names(f"{SEED_LABEL}={distro}"):
            localdocker.remove_volume(stale)
        say = progress or (lambda _msg: None)
        say(f"seeding {name} with {', '.join(SERVICE_IMAGES)} ...")
        started = time.monotonic()
        try:
            _make(name, distro)
        except BaseException:
            localdocker.remove_volume(name)
            raise
        say(f"seeding {name}: done in {time.monotonic() - started:.0f} s")
    return name


def _complete(name: str, distro: str) -> bool:
    if not localdocker.docker("volume", "inspect", name, check=False).ok:
        return False
    return localdocker.docker(
        "run", "--rm", "--volume", f"{name}:/seed:ro", "--entrypoint", "test",
        images.docker_ready_image(distro), "-e", f"/seed/{_COMPLETE}", check=False,
    ).ok  # fmt: skip


def _make(name: str, distro: str) -> None:
    """Boot a Docker-ready host on the new volume, load the images, stop it cleanly."""
    localdocker.docker("volume", "create", "--label", localdocker.SANDBOX_LABEL,
                       "--label", f"{SEED_LABEL}={distro}", name)  # fmt: skip
    container = f"{_PREFIX}{distro}-making"
    localdocker.remove_container(container)
    localdocker.run(images.docker_ready_image(distro), name=container, options=[
        "--label", localdocker.SANDBOX_LABEL, *images.HOST_RUN_FLAGS,
        "--volume", f"{name}:/var/lib/docker",
    ])  # fmt: skip
    try:
        _wait_engine(container)
        _load(container)
        localdocker.docker("stop", "--time", "60", container, timeout=120)  # systemd stops dockerd
        localdocker.docker("run", "--rm", "--volume", f"{name}:/seed", "--entrypoint", "touch",
                           images.docker_ready_image(distro), f"/seed/{_COMPLETE}")  # fmt: skip
    finally:
        localdocker.remove_container(container)


def _wait_engine(container: str) -> None:
    deadline = time.monotonic() + ENGINE_WAIT
    # Through sh, silenced: the inner client's "Cannot connect to the Docker daemon" while
    # the host's engine starts must not read as the local engine being down.
    probe = ("exec", container, "sh", "-c", "docker info >/dev/null 2>&1")
    while not localdocker.docker(*probe, check=False).ok:
        if time.monotonic() > deadline:
            raise SandboxError(f"the seeding host's Docker engine did not answer in "
                                 f"{ENGINE_WAIT:.0f} s")  # fmt: skip
        time.sleep(0.5)


def _load(container: str) -> None:
    """``docker save IMAGES | docker exec -i CONTAINER docker load``."""
    with subprocess.Popen(["docker", "save", *SERVICE_IMAGES], stdout=subprocess.PIPE) as save:
        loaded = subprocess.run(["docker", "exec", "-i", container, "docker", "load"],
                                stdin=save.stdout, capture_output=True, text=True,
                                check=False, timeout=600)  # fmt: skip
        if save.stdout is not None:
            save.stdout.close()
        saved = save.wait()
    if saved or loaded.returncode:
        raise SandboxError(f"seeding failed: docker save rc={saved}, docker load "
                             f"rc={loaded.returncode}: {loaded.stderr.strip()[-300:]}")  # fmt: skip
