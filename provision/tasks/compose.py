"""``compose``: a Compose project present, absent or restarted, with v1 or v2.

The project name is always explicit (``-p``). Changed only when a container was created,
recreated, started or removed. Compose itself is slow to start (v1 is Python: ~0.5 s), so a
converged project is recognised without calling it: the host keeps, per project, a
fingerprint of its compose files, ``.env`` and image IDs plus the container IDs that compose
left; when those still match and every container runs on its image's current tag, the task
is ok at once. (A container whose tag moved to a new image is listed by ``docker ps`` with
the old image's ID instead of its name: that is how a new image is seen without asking.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from provision.errors import TaskError
from provision.models.names import check_name, check_path
from provision.tasks.base import ModuleSpec, Outcome, Reads, TaskContext
from provision.tasks.facts import COMPOSE_STATE_DIR, ContainerInfo, host_facts, parse_containers

__all__ = ["SPEC", "ComposeArgs", "ProjectState", "parse_project_state"]

# $1 project dir, $2 project name, then the compose files. One round trip.
PROJECT_STATE = r"""
d="$1"; name="$2"; shift 2
if cd "$d" 2>/dev/null; then
  fp=$( (for f; do cat "$f"; done; cat .env 2>/dev/null) | sha256sum | cut -d' ' -f1)
  echo "fingerprint=$fp"
else
  echo "missing_dir=1"
fi
echo "stored=$(cat "/var/lib/provision/compose/$name" 2>/dev/null)"
docker ps -a --filter "label=com.docker.compose.project=$name" \
  --format 'c {{.ID}} {{.Names}} {{.State}} {{.Label "com.docker.compose.service"}} {{.Image}}'
"""
IN_DIR = 'cd "$1" && shift && exec "$@"'
SAVE_STATE = 'mkdir -p "$(dirname "$1")" && printf "%s" "$2" > "$1"'
REMOVE_BY_LABEL = (
    'ids=$(docker ps -aq --filter "label=com.docker.compose.project=$1"); '
    '[ -z "$ids" ] || docker rm -f $ids; '
    'nets=$(docker network ls -q --filter "label=com.docker.compose.project=$1"); '
    '[ -z "$nets" ] || docker network rm $nets; rm -f "/var/lib/provision/compose/$1"'
)


_IMAGE_ID = re.compile(r"(sha256:)?[0-9a-f]{12,64}")


@dataclass(frozen=True, kw_only=True)
class ProjectArgs:
    """A compose project on the host, as ``compose`` and ``docker_stack`` take it: its folder,
    its compose files (Compose's ``-f``, in order), whether ``absent`` removes its volumes."""

    project_src: str
    files: tuple[str, ...] = ("docker-compose.yml",)
    remove_volumes: bool = False

    def check_project(self, module: str) -> None:
        check_path(self.project_src, f"{module}.project_src")
        for i, name in enumerate(self.files):
            check_name(name, f"{module}.files[{i}]")


@dataclass(frozen=True, kw_only=True)
class ComposeArgs(ProjectArgs):
    project_name: str
    state: Literal["present", "absent", "restarted"] = "present"
    services: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.check_project("compose")
        check_name(self.project_name, "compose.project_name")
        for i, name in enumerate(self.services):
            check_name(name, f"compose.services[{i}]")


@dataclass(frozen=True)
class ProjectState:
    fingerprint: str
    stored: str
    containers: tuple[ContainerInfo, ...]
    missing_dir: bool = False

    @property
    def signature(self) -> str:
        """What is stored after a converge: the inputs and the containers they gave."""
        ids = ",".join(sorted(c.id for c in self.containers))
        return f"{self.fingerprint}:{ids}"

    @property
    def converged(self) -> bool:
        current = all(
            c.state == "running" and not _IMAGE_ID.fullmatch(c.image) for c in self.containers
        )
        return bool(self.containers) and current and self.stored == self.signature


def parse_project_state(stdout: str) -> ProjectState:
    values: dict[str, str] = {}
    rows = []
    for line in stdout.splitlines():
        if line.startswith("c "):
            rows.append(line[2:])
        else:
            key, _, value = line.partition("=")
            values[key] = value.strip()
    return ProjectState(
        fingerprint=values.get("fingerprint", ""),
        stored=values.get("stored", ""),
        containers=parse_containers("\n".join(rows)),
        missing_dir="missing_dir" in values,
    )


def reads(args: ComposeArgs, variables: Mapping[str, Any]) -> Reads:
    return {"project": ["sh", "-c", PROJECT_STATE, "sh", args.project_src, args.project_name,
                        *args.files]}  # fmt: skip


def _state(ctx: TaskContext, args: ComposeArgs) -> ProjectState:
    return parse_project_state(ctx.looked(reads(args, ctx.vars))["project"].stdout)


def _compose(ctx: TaskContext, args: ComposeArgs, *words: str) -> None:
    flavour = host_facts(ctx).compose_command
    if not flavour and ctx.check:  # Docker is not installed yet; it would be by then
        flavour = ("docker", "compose")
    if not flavour:
        raise TaskError("compose: neither 'docker compose' nor 'docker-compose' on the host")
    files = [part for f in args.files for part in ("-f", f)]
    ctx.run(
        [
            "sh",
            "-c",
            IN_DIR,
            "sh",
            args.project_src,
            *flavour,
            "-p",
            args.project_name,
            *files,
            *words,
        ],
        timeout=600,
    )


def _save(ctx: TaskContext, args: ComposeArgs) -> ProjectState:
    after = _state(ctx, args)
    path = f"{COMPOSE_STATE_DIR}/{args.project_name}"
    ctx.run(["sh", "-c", SAVE_STATE, "sh", path, after.signature])
    return after


def _present(ctx: TaskContext, args: ComposeArgs, before: ProjectState) -> Outcome:
    if before.converged:
        return ctx.ok(
            f"{len(before.containers)} container(s) up to date",
            containers=[c.name for c in before.containers],
        )
    if before.missing_dir and not ctx.check:
        raise TaskError(f"compose: project folder {args.project_src} is missing")
    _compose(ctx, args, "up", "-d", "--remove-orphans")
    if ctx.check:
        return ctx.changed(f"would bring up project {args.project_name}")
    after = _save(ctx, args)
    was = {c.id: c.state for c in before.containers}
    now = {c.id: c.state for c in after.containers}
    if was == now:
        return ctx.ok("containers unchanged", containers=[c.name for c in after.containers])
    created = sorted(c.name for c in after.containers if c.id not in was)
    removed = len(set(was) - set(now))
    return ctx.changed(
        f"created/recreated {len(created)}, removed {removed}",
        containers=[c.name for c in after.containers],
        created=created,
    )


def apply(ctx: TaskContext, args: ComposeArgs) -> Outcome:
    before = _state(ctx, args)
    if args.state == "present":
        return _present(ctx, args, before)
    if args.state == "restarted":
        if not before.containers:  # v1 `restart` exits 1 when there is nothing to restart
            return _present(ctx, args, before)
        _compose(ctx, args, "restart", *args.services)
        if not ctx.check:
            _save(ctx, args)
        return ctx.changed(f"restarted {', '.join(args.services) or args.project_name}")
    if not before.containers:
        return ctx.ok(f"project {args.project_name} has no containers")
    if before.missing_dir:
        ctx.run(["sh", "-c", REMOVE_BY_LABEL, "sh", args.project_name])
    else:
        _compose(ctx, args, "down", "--remove-orphans", *(["-v"] if args.remove_volumes else []))
        ctx.run(["rm", "-f", f"{COMPOSE_STATE_DIR}/{args.project_name}"])
    return ctx.changed(f"removed {len(before.containers)} container(s)")


SPEC = ModuleSpec("compose", ComposeArgs, apply, reads=reads)
