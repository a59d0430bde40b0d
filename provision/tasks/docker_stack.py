"""``docker_stack``: a Swarm stack deployed from a component's compose files (present), or
removed with its containers and, if asked, its volumes (absent).

The files are read on the host and merged here (a later file's mappings merge into the
earlier's, its lists replace them), then made into a stack file: a ``version:`` line first
(Debian's Docker 20.10 needs one), the keys a stack ignores dropped (``container_name``,
``build``, ``depends_on``, ``restart``), and every bind mount of a project file or folder
made into config objects whose names carry the content's hash, since a bind mount of a host
file does not follow a task to another node. A changed file is a changed service spec, so
Swarm rolls the service (per ``deploy.update_config``): that is the handler-style restart.
The stack file goes on stdin; ``${VAR}`` comes from the project's ``.env`` in the
environment of ``docker stack deploy``.

Changed only when a service spec changed (compared before and after, ``Version`` aside).
Each service carries the stamp of what it was deployed from (``io.provision.stack-hash``: the
stack file and the project's ``.env``): when every service of the stack has the stamp of the
stack file made now, nothing is sent (a no-op run writes nothing).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from provision.errors import TaskError
from provision.models.names import check_name
from provision.tasks.base import ModuleSpec, Outcome, Reads, TaskContext
from provision.tasks.compose import ProjectArgs

__all__ = ["SPEC", "STACK_VERSION", "DockerStackArgs", "merge", "parse_read", "stack_file"]

STACK_VERSION = "3.8"
IGNORED = ("container_name", "build", "depends_on", "restart")
LABEL = "com.docker.stack.namespace"
STAMP = "io.provision.stack-hash"  # on each service: what it was deployed from
# $1 project dir, $2 stack name, then the compose files: every file, the hashes of every
# project file, the stack's service specs. One round trip.
READ = r"""
d="$1"; name="$2"; shift 2
cd "$d" || exit 3
for f; do printf '=== file %s\n' "$f"; cat "$f"; printf '\n'; done
printf '=== hashes\n'; find . -type f ! -name .env -exec sha256sum {} + 2>/dev/null
printf '=== env\n'; [ ! -f .env ] || sha256sum < .env | cut -c1-64
printf '=== specs\n'
ids=$(docker service ls -q --filter "label=com.docker.stack.namespace=$name" 2>/dev/null)
[ -z "$ids" ] || docker service inspect --format '{{.Spec.Name}} {{json .Spec}}' $ids
"""
SPECS = (
    'ids=$(docker service ls -q --filter "label=com.docker.stack.namespace=$1"); '
    "[ -z \"$ids\" ] || docker service inspect --format '{{.Spec.Name}} {{json .Spec}}' $ids"
)
DEPLOY = (
    'cd "$1" && set -a && { [ ! -f .env ] || . ./.env; } && set +a && '
    'exec docker stack deploy --resolve-image never --prune -c - "$2"'
)
NODES_READY = '[ "$(docker node ls --format "{{.Status}}" | grep -c "^Ready$")" -ge "$1" ]'
# Every service of stack $1 runs as many tasks as it wants ("2/2"; global: one per node).
CONVERGED = (
    'out=$(docker service ls --filter "label=com.docker.stack.namespace=$1" '
    "--format '{{.Replicas}}') && [ -n \"$out\" ] && "
    "! printf '%s\\n' \"$out\" | awk -F/ '$1 != $2 || $2 == 0' | grep -q ."
)
STALE_CONFIGS = (
    'docker config ls --filter "label=com.docker.stack.namespace=$1" --format "{{.Name}}"'
)
# $1 stack name: wait (bounded) until this node runs none of its containers, then remove its
# volumes when $2 is 1.
GONE = r"""
i=0
while [ -n "$(docker ps -aq --filter "label=com.docker.stack.namespace=$1")" ]; do
  i=$((i+1)); [ "$i" -le 60 ] || { echo "containers of $1 still here after 60 s" >&2; exit 1; }
  sleep 1
done
if [ "$2" = 1 ]; then
  v=$(docker volume ls -q --filter "label=com.docker.stack.namespace=$1")
  [ -z "$v" ] || { docker volume rm $v >/dev/null; echo "removed volumes"; }
fi
"""
_SLUG = re.compile(r"[^A-Za-z0-9]+")


@dataclass(frozen=True, kw_only=True)
class DockerStackArgs(ProjectArgs):
    name: str
    state: Literal["present", "absent"] = "present"
    manager: bool = True  # absent: stack rm here (the manager); others only wait and clean
    nodes: int = 0  # present: wait (bounded) for this many Ready nodes before deploying
    wait: float = 180.0  # seconds for the nodes, then for every service's tasks to run

    def __post_init__(self) -> None:
        check_name(self.name, "docker_stack.name")
        self.check_project("docker_stack")


@dataclass(frozen=True)
class StackRead:
    files: dict[str, str]
    hashes: dict[str, str]  # "lua/router.lua" -> sha256
    specs: dict[str, str]  # service name -> spec JSON without Version
    env: str = ""  # the sha256 of the project's .env ("" without one)


def merge(base: Any, over: Any) -> Any:
    """Compose-style override: mappings merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = merge(base[key], value) if key in base else value
        return out
    return over


def parse_specs(text: str) -> dict[str, str]:
    specs: dict[str, str] = {}
    for line in text.splitlines():
        name, _, raw = line.partition(" ")
        if not raw:
            continue
        spec = json.loads(raw)
        spec.pop("Version", None)
        specs[name] = json.dumps(spec, sort_keys=True)
    return specs


def parse_read(stdout: str) -> StackRead:
    """From ``READ``'s output: the files, the project's hashes, the stack's specs."""
    files: dict[str, list[str]] = {}
    hashes: dict[str, str] = {}
    specs: list[str] = []
    section, current, env = "", "", ""
    for line in stdout.splitlines():
        if line.startswith("=== file "):
            section, current = "file", line[9:]
            files[current] = []
        elif line in ("=== hashes", "=== env", "=== specs"):
            section = line[4:]
        elif section == "file":
            files[current].append(line)
        elif section == "hashes":
            digest, _, path = line.partition("  ")
            if path:
                hashes[path.removeprefix("./")] = digest
        elif section == "env":
            env = line.strip()
        elif section == "specs":
            specs.append(line)
    texts = {name: "\n".join(lines) for name, lines in files.items()}
    return StackRead(texts, hashes, parse_specs("\n".join(specs)), env)


def _config_key(path: str, digest: str) -> str:
    return f"{_SLUG.sub('_', path).strip('_')}_{digest[:12]}"


def _mounts(
    stack: str, volumes: Sequence[Any], hashes: Mapping[str, str], configs: dict[str, Any]
) -> tuple[list[Any], list[dict[str, Any]]]:
    """The service's volumes without the project bind mounts, and the configs replacing them."""
    kept: list[Any] = []
    used: list[dict[str, Any]] = []
    for entry in volumes:
        if not (isinstance(entry, str) and entry.startswith("./")):
            kept.append(entry)
            continue
        source, target = entry.split(":")[:2]
        source = source.removeprefix("./").rstrip("/")
        if source in hashes:
            found = {source: hashes[source]}
        else:
            found = {p: h for p, h in hashes.items() if p.startswith(f"{source}/")}
        if not found:
            raise TaskError(f"docker_stack {stack}: bind mount {entry!r}: no such file")
        for path, digest in sorted(found.items()):
            key = _config_key(path, digest)
            configs[key] = {"file": f"./{path}", "name": f"{stack}_{key}"}
            inner = target if path == source else f"{target}/{path[len(source) + 1 :]}"
            used.append({"source": key, "target": inner, "mode": 0o444})
    return kept, used


def stack_file(stack: str, files: Sequence[str], read: StackRead, stamp: str = "") -> str:
    """The stack file made from the compose files (see the module's doc); ``stamp``: the
    ``io.provision.stack-hash`` label put on every service."""
    doc: dict[str, Any] = {}
    for name in files:
        if name not in read.files:
            raise TaskError(f"docker_stack {stack}: {name} not found on the host")
        try:
            loaded = yaml.safe_load(read.files[name]) or {}
        except yaml.YAMLError as exc:  # translated here, where PyYAML is used
            mark = getattr(exc, "problem_mark", None)
            where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise TaskError(
                f"docker_stack {stack}: {where} on the host is not valid YAML: {problem}"
            ) from exc
        if not isinstance(loaded, dict):
            raise TaskError(f"docker_stack {stack}: {name} is not a mapping")
        doc = merge(doc, loaded)
    configs: dict[str, Any] = dict(doc.get("configs") or {})
    services: dict[str, Any] = {}
    for service, raw in (doc.get("services") or {}).items():
        spec = {k: v for k, v in dict(raw).items() if k not in IGNORED}
        kept, used = _mounts(stack, spec.get("volumes") or [], read.hashes, configs)
        if "volumes" in spec:
            spec["volumes"] = kept
            if not kept:
                del spec["volumes"]
        if used:
            spec["configs"] = [*(spec.get("configs") or []), *used]
        if stamp:
            deploy = dict(spec.get("deploy") or {})
            deploy["labels"] = {**dict(deploy.get("labels") or {}), STAMP: stamp}
            spec["deploy"] = deploy
        services[service] = spec
    out = {k: v for k, v in doc.items() if k != "version" and not k.startswith("x-")}
    out["services"] = services
    if configs:
        out["configs"] = configs
    body = yaml.dump(out, Dumper=_NoAliases, sort_keys=True, default_flow_style=False)
    return f'version: "{STACK_VERSION}"\n{body}'


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _wait_for(ctx: TaskContext, script: str, what: str, *argv: str, wait: float) -> None:
    """Poll ``script`` (exit 0 = done) for up to ``wait`` seconds; an error naming ``what``.
    Asks the host each time (never the play's batch: a poll must see the host change)."""
    deadline = time.monotonic() + wait
    while not ctx.conn.run(["sh", "-c", script, "sh", *argv], sudo=ctx.become, warn=True).ok:
        if time.monotonic() > deadline:
            raise TaskError(f"{ctx.host.name}: {what} after {wait:.0f} s")
        time.sleep(1)


def _present(ctx: TaskContext, args: DockerStackArgs) -> Outcome:
    got = ctx.looked(reads(args, ctx.vars))["stack"]
    if got.exit_code == 3:
        raise TaskError(f"{ctx.host.name}: {args.project_src} is missing")
    before = parse_read(got.stdout)
    plain = stack_file(args.name, args.files, before)
    digest = hashlib.sha256(f"{plain}\0{before.env}".encode()).hexdigest()[:12]
    text = stack_file(args.name, args.files, before, stamp=digest)
    wanted = {f"{args.name}_{s}" for s in (yaml.safe_load(text).get("services") or {})}
    if set(before.specs) == wanted and all(
        json.loads(spec).get("Labels", {}).get(STAMP) == digest for spec in before.specs.values()
    ):
        # As deployed; its tasks may still be moving (a node replaced): wait as after a deploy.
        if not ctx.check:
            _wait_for(ctx, CONVERGED, f"stack {args.name}'s services not all running",
                      args.name, wait=args.wait)  # fmt: skip
        return ctx.ok(f"stack {args.name}: {len(wanted)} services as deployed",
                      services=sorted(wanted), stack_hash=digest)  # fmt: skip
    if args.nodes and not ctx.check:
        _wait_for(ctx, NODES_READY, f"fewer than {args.nodes} Ready swarm nodes",
                  str(args.nodes), wait=args.wait)  # fmt: skip
    ctx.run(["sh", "-c", DEPLOY, "sh", args.project_src, args.name], stdin=text.encode(),
            timeout=300)  # fmt: skip
    if ctx.check:
        return ctx.changed(f"would deploy stack {args.name}", stack_hash=digest)
    _wait_for(ctx, CONVERGED, f"stack {args.name}'s services not all running", args.name,
              wait=args.wait)  # fmt: skip
    after = parse_specs(ctx.read_sh(SPECS, args.name).stdout)
    _prune_configs(ctx, args.name, text)
    moved = sorted(n for n in after.keys() | before.specs.keys()
                   if after.get(n) != before.specs.get(n))  # fmt: skip
    if not moved:
        return ctx.ok(f"stack {args.name}: {len(after)} services as they were",
                      services=sorted(after), stack_hash=digest)  # fmt: skip
    return ctx.changed(f"stack {args.name}: updated {', '.join(moved)}",
                       services=sorted(after), updated=moved, stack_hash=digest)  # fmt: skip


def _prune_configs(ctx: TaskContext, stack: str, text: str) -> None:
    """Configs of this stack from earlier versions; one still in use is left (Docker refuses)."""
    wanted = set(re.findall(rf"name: ({re.escape(stack)}_\S+)", text))
    for name in ctx.read_sh(STALE_CONFIGS, stack).stdout.split():
        if name not in wanted and "_" in name:
            ctx.conn.run(["docker", "config", "rm", name], sudo=ctx.become, warn=True)


def _absent(ctx: TaskContext, args: DockerStackArgs) -> Outcome:
    did = []
    if args.manager and parse_specs(ctx.read_sh(SPECS, args.name).stdout):
        ctx.run(["docker", "stack", "rm", args.name])
        did.append("removed the stack")
    present = ctx.read_sh(
        'docker ps -aq --filter "label=$1"; docker volume ls -q --filter "label=$1"',
        f"{LABEL}={args.name}",
    ).stdout.split()
    if present and not ctx.check:
        ctx.changing()
        res = ctx.conn.run(["sh", "-c", GONE, "sh", args.name, "1" if args.remove_volumes else "0"],
                           sudo=ctx.become, timeout=120)  # fmt: skip
        if res.stdout.strip():
            did.append(res.stdout.strip())
    if not did:
        return ctx.ok(f"no stack {args.name} here")
    return ctx.changed(f"{args.name}: {', '.join(did)}")


def apply(ctx: TaskContext, args: DockerStackArgs) -> Outcome:
    if args.state == "absent":
        return _absent(ctx, args)
    return _present(ctx, args)


def reads(args: DockerStackArgs, variables: Mapping[str, Any]) -> Reads:
    """The project's files and the stack's specs, when deploying. (Whether its services run
    is asked live: a node that joined since the batch was read has tasks still to start.)"""
    if args.state == "absent":
        return {}
    return {"stack": ["sh", "-c", READ, "sh", args.project_src, args.name, *args.files]}


SPEC = ModuleSpec("docker_stack", DockerStackArgs, apply, reads=reads)
