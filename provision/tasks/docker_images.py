"""``docker_images``: local images sent to a host that cannot pull them.

Compares image IDs on both sides and sends only the missing or different ones, in one
compressed stream (``docker save | gzip`` here, ``gunzip | docker load`` there). Layers
shared by the images travel once.
"""

from __future__ import annotations

import subprocess
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from provision.errors import ProvisionError
from provision.models.names import check_image
from provision.tasks.base import ModuleSpec, Outcome, TaskContext

__all__ = ["SPEC", "DockerImagesArgs", "parse_remote_ids"]

# One `docker image inspect` for all images; a missing one just prints no line.
REMOTE_IDS = (
    "docker image inspect --format '{{.Id}}{{range .RepoTags}} {{.}}{{end}}' \"$@\" "
    "2>/dev/null; true"
)
LOAD = "gunzip | docker load"


@dataclass(frozen=True)
class DockerImagesArgs:
    images: tuple[str, ...]

    def __post_init__(self) -> None:
        for i, image in enumerate(self.images):
            check_image(image, f"docker_images.images[{i}]")


def parse_remote_ids(stdout: str) -> dict[str, str]:
    """{tag: image id} from lines "ID TAG TAG..." (an image may carry several tags)."""
    ids = {}
    for line in stdout.splitlines():
        image_id, *tags = line.split() or [""]
        for tag in tags:
            ids[tag] = image_id
    return ids


def _tagged(image: str) -> str:
    """``redis`` → ``redis:latest``, as Docker lists it in RepoTags."""
    return image if ":" in image.rsplit("/", 1)[-1] else f"{image}:latest"


def _local(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ProvisionError(f"local docker failed: {exc}") from exc
    if done.returncode != 0:
        raise ProvisionError(f"local {' '.join(argv[:3])} failed: {done.stderr.strip()}")
    return done.stdout


def local_images(images: tuple[str, ...]) -> dict[str, tuple[str, int]]:
    """{image: (id, size)} of the controller's images; an image missing here is an error."""
    out = _local(["docker", "image", "inspect", "--format", "{{.Id}} {{.Size}}", *images])
    rows = [line.split() for line in out.splitlines() if line.strip()]
    return {image: (row[0], int(row[1])) for image, row in zip(images, rows, strict=True)}


def _stream(images: list[str], on_raw: Callable[[int], None]) -> Iterator[bytes]:
    proc = subprocess.Popen(["docker", "save", *images], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    gz = zlib.compressobj(1, zlib.DEFLATED, 31)  # gzip framing, fastest level: CPU-bound
    try:
        while chunk := proc.stdout.read(1 << 20):
            on_raw(len(chunk))
            yield gz.compress(chunk)
        yield gz.flush()
    finally:
        proc.stdout.close()
        if proc.wait() != 0:
            raise ProvisionError(f"local docker save {' '.join(images)} failed")


def apply(ctx: TaskContext, args: DockerImagesArgs) -> Outcome:
    local = local_images(args.images)
    remote = parse_remote_ids(ctx.read_sh(REMOTE_IDS, *args.images).stdout)
    missing = [i for i in args.images if remote.get(_tagged(i)) != local[i][0]]
    if not missing:
        return ctx.ok(f"{len(args.images)} image(s) present", sent=[])
    total = sum(local[i][1] for i in missing)
    ctx.executed.append(f"docker save {' '.join(missing)} | gzip | ssh ... '{LOAD}'")
    if not ctx.check:
        ctx.changing()
        sent = 0

        def on_raw(n: int) -> None:
            nonlocal sent
            sent += n
            ctx.progress("images", sent, total)

        ctx.conn.pipe_in(
            ["sh", "-c", LOAD], _stream(missing, on_raw), sudo=ctx.become, timeout=1800
        )
    return ctx.changed(f"sent {', '.join(missing)}", sent=missing)


def look(args: DockerImagesArgs, variables: Mapping[str, Any]) -> list[list[str]]:
    return [["sh", "-c", REMOTE_IDS, "sh", *args.images]]


SPEC = ModuleSpec("docker_images", DockerImagesArgs, apply, look=look)
