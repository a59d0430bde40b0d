"""``docker_images``: local images sent to a host that cannot pull them.

Compares image IDs on both sides and sends only the missing or different ones, in one
compressed stream (``docker save | gzip`` here, ``gunzip | docker load`` there). Layers
shared by the images travel once.

With ``nodes`` (a swarm: the task runs on the manager only), the other hosts get the images
from this one over their private network (``image_relay``), each only the ones whose ID it
lacks: the controller's link carries each image once, whatever the number of hosts. A node
the relay cannot reach gets them from the controller, as without ``nodes``, and the outcome
says so (``from_controller``).
"""

from __future__ import annotations

import subprocess
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from provision.connection.base import Remote
from provision.errors import TaskError
from provision.models.names import check_image, check_name
from provision.tasks.base import ModuleSpec, Outcome, Reads, TaskContext
from provision.tasks.image_relay import Target, relay

__all__ = ["SPEC", "DockerImagesArgs", "parse_remote_ids"]

# One `docker image inspect` for all images; a missing one just prints no line.
REMOTE_IDS = (
    "docker image inspect --format '{{.Id}}{{range .RepoTags}} {{.}}{{end}}' \"$@\" "
    "2>/dev/null; true"
)
LOAD = "gunzip | docker load"
ENGINE = ["docker", "info", "--format", "{{.ServerVersion}}"]
ENGINE_WAIT = 600.0  # seconds for another node's Docker Engine to answer


@dataclass(frozen=True)
class DockerImagesArgs:
    images: tuple[str, ...]
    nodes: tuple[str, ...] = ()  # the other hosts, served from this one (this host may be in)

    def __post_init__(self) -> None:
        for i, image in enumerate(self.images):
            check_image(image, f"docker_images.images[{i}]")
        for i, name in enumerate(self.nodes):
            check_name(name, f"docker_images.nodes[{i}]")


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
        raise TaskError(f"local docker failed: {exc}") from exc
    if done.returncode != 0:
        raise TaskError(f"local {' '.join(argv[:3])} failed: {done.stderr.strip()}")
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
            raise TaskError(f"local docker save {' '.join(images)} failed")


def _missing(stdout: str, local: Mapping[str, tuple[str, int]]) -> list[str]:
    remote = parse_remote_ids(stdout)
    return [i for i in local if remote.get(_tagged(i)) != local[i][0]]


def _from_controller(ctx: TaskContext, conn: Remote, missing: list[str],
                     local: Mapping[str, tuple[str, int]]) -> None:  # fmt: skip
    total = sum(local[i][1] for i in missing)
    sent = 0

    def on_raw(n: int) -> None:
        nonlocal sent
        sent += n
        ctx.progress("images", sent, total)

    conn.pipe_in(["sh", "-c", LOAD], _stream(missing, on_raw), sudo=ctx.become, timeout=1800)


def _wait_engine(conn: Remote, sudo: bool) -> None:
    """Hosts converge side by side: a node may still be installing Docker (bounded wait)."""
    deadline = time.monotonic() + ENGINE_WAIT
    while not conn.run(ENGINE, sudo=sudo, warn=True).ok:
        if time.monotonic() > deadline:
            raise TaskError(f"{conn.host.name}: Docker did not answer in {ENGINE_WAIT:.0f} s")
        time.sleep(1.0)


def _nodes(ctx: TaskContext, args: DockerImagesArgs,
           local: Mapping[str, tuple[str, int]]) -> dict[str, Target]:  # fmt: skip
    """The other nodes that lack some image, with what each lacks."""
    targets = {}
    for name in dict.fromkeys(n for n in args.nodes if n != ctx.host.name):
        conn = ctx.peer(name)
        if not ctx.check:
            _wait_engine(conn, ctx.become)
        held = conn.sh(REMOTE_IDS, *args.images, sudo=ctx.become, warn=True).stdout
        if missing := _missing(held, local):
            targets[name] = Target(conn, tuple(missing))
    return targets


def _serve_nodes(ctx: TaskContext, targets: Mapping[str, Target],
                 local: Mapping[str, tuple[str, int]]) -> dict[str, str]:  # fmt: skip
    """Relay to ``targets``; what the relay could not deliver comes from the controller.
    Returns {node: why it was sent from the controller}."""
    failed = relay(ctx, targets)
    for name, target in targets.items():
        held = target.conn.sh(REMOTE_IDS, *target.images, sudo=ctx.become, warn=True).stdout
        still = _missing(held, {i: local[i] for i in target.images})
        if still:
            failed.setdefault(name, "the relay did not load every image")
            _from_controller(ctx, target.conn, still, local)
    return failed


def apply(ctx: TaskContext, args: DockerImagesArgs) -> Outcome:
    local = local_images(args.images)
    missing = _missing(ctx.looked(reads(args, ctx.vars))["ids"].stdout, local)
    targets = _nodes(ctx, args, local)
    if not missing and not targets:
        hosts = len({ctx.host.name, *args.nodes})
        return ctx.ok(f"{len(args.images)} image(s) present on {hosts} host(s)", sent=[],
                      relayed={})  # fmt: skip
    if missing:
        ctx.executed.append(f"docker save {' '.join(missing)} | gzip | ssh ... '{LOAD}'")
    for name, target in targets.items():
        ctx.executed.append(f"{ctx.host.name}: docker save {' '.join(target.images)} | "
                            f"ssh {name} docker load")  # fmt: skip
    fallback: dict[str, str] = {}
    if not ctx.check:
        ctx.changing()
        if missing:
            _from_controller(ctx, ctx.conn, missing, local)
        if targets:
            fallback = _serve_nodes(ctx, targets, local)
    words = [f"sent {', '.join(missing)}"] if missing else []
    relayed = {name: list(t.images) for name, t in targets.items() if name not in fallback}
    if relayed:
        words.append(f"relayed to {', '.join(relayed)} from {ctx.host.name}")
    words += [f"sent to {name} from the controller ({why})" for name, why in fallback.items()]
    return ctx.changed("; ".join(words), sent=missing, relayed=relayed,
                       from_controller=fallback)  # fmt: skip


def reads(args: DockerImagesArgs, variables: Mapping[str, Any]) -> Reads:
    return {"ids": ["sh", "-c", REMOTE_IDS, "sh", *args.images]}


SPEC = ModuleSpec("docker_images", DockerImagesArgs, apply, reads=reads)
