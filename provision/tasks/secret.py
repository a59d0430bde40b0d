"""``secret``: a random value generated once and kept on the host, never in the repo or logs.

The file holds ``KEY=value`` (mode 0600). If it exists it is left alone, so the value survives
re-runs; the value itself never appears in a result, a diff or an event.

``keep_on``: other hosts that keep a copy (a swarm's other managers), so that the value
outlives this host: a replacement for it, whose file is missing, takes the value from the
first of them that has it instead of making a new one (a new password would not match what
the swarm's services were deployed with); a copy that is missing or differs is rewritten.
Copies go host to host through the controller's memory, on stdin, compared by digest.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from provision.connection.base import Remote
from provision.errors import ConfigError, TaskError
from provision.models.names import check_name, check_path
from provision.tasks.base import ModuleSpec, Outcome, Reads, TaskContext

__all__ = ["SPEC", "SecretArgs"]

WRITE = (
    'set -e; umask 077; mkdir -p "$(dirname "$1")"; '
    'if [ -s "$1" ] && [ "$2" != replace ]; then exit 0; fi; '
    't="$1.tmp.$$"; cat > "$t"; chmod 0600 "$t"; mv -f "$t" "$1"'
)
# The file's sha256, or nothing when it is missing or empty.
DIGEST = 'if [ -s "$1" ]; then sha256sum < "$1" | cut -c1-64; fi'


@dataclass(frozen=True)
class SecretArgs:
    path: str
    key: str
    length: int = 32
    keep_on: tuple[str, ...] = ()  # other hosts that keep a copy

    def __post_init__(self) -> None:
        check_path(self.path, "secret.path")
        if not self.key.isidentifier():
            raise ConfigError(f"key {self.key!r} is not a variable name", field="secret.key")
        if not 16 <= self.length <= 256:
            raise ConfigError("length must be between 16 and 256", field="secret.length")
        for i, name in enumerate(self.keep_on):
            check_name(name, f"secret.keep_on[{i}]")


def reads(args: SecretArgs, variables: Mapping[str, Any]) -> Reads:
    return {"digest": _digest_argv(args.path)}


def _digest_argv(path: str) -> list[str]:
    return ["sh", "-c", DIGEST, "sh", path]


def _content(conn: Remote, path: str, sudo: bool) -> bytes:
    read = conn.run(["cat", path], sudo=sudo, warn=True)
    if not read.ok or not read.stdout.strip():
        raise TaskError(f"could not read {path} on {conn.host.name} (exit {read.exit_code})")
    return read.stdout.encode()


def apply(ctx: TaskContext, args: SecretArgs) -> Outcome:
    mine = ctx.looked(reads(args, ctx.vars))["digest"].stdout.strip()
    peers = {n: ctx.peer(n) for n in dict.fromkeys(args.keep_on) if n != ctx.host.name}
    theirs: dict[str, str] = {}
    for name, conn in peers.items():
        read = conn.run(_digest_argv(args.path), sudo=ctx.become, warn=True)
        if not read.ok:  # not "no copy": a new value would overwrite the ones kept there
            raise TaskError(f"could not read {args.path} on {name} (exit {read.exit_code}): "
                            "run again once it answers")  # fmt: skip
        theirs[name] = read.stdout.strip()
    content = b""
    if mine:
        msg = f"{args.path} exists (value kept)"
    elif source := next((n for n, d in theirs.items() if d), ""):
        # A replacement: the value lives on, from a host that kept a copy.
        content, mine = _content(peers[source], args.path, ctx.become), theirs[source]
        ctx.run(["sh", "-c", WRITE, "sh", args.path, "replace"], stdin=content)
        msg = f"{args.path} copied from {source} (value kept)"
    else:
        value = secrets.token_urlsafe(args.length)[: args.length]
        content = f"{args.key}={value}\n".encode()
        mine = hashlib.sha256(content).hexdigest()
        # The value travels on stdin, so it is neither in a command line nor in ctx.executed.
        ctx.run(["sh", "-c", WRITE, "sh", args.path], stdin=content)
        msg = f"generated {args.key} in {args.path}"
    stale = [n for n, d in theirs.items() if d != mine]
    for name in stale:
        content = content or _content(ctx.conn, args.path, ctx.become)
        ctx.executed.append(f"{name}: keep a copy of {args.path}")
        if not ctx.check:
            peers[name].run(["sh", "-c", WRITE, "sh", args.path, "replace"], sudo=ctx.become,
                            stdin=content)  # fmt: skip
    if stale:
        msg += f"; a copy kept on {', '.join(stale)}"
    if content or stale:
        return ctx.changed(msg)
    return ctx.ok(msg)


SPEC = ModuleSpec("secret", SecretArgs, apply, reads=reads, secret_output=True)
