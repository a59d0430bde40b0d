"""``secret``: a random value generated once and kept on the host, never in the repo or logs.

The file holds ``KEY=value`` (mode 0600). If it exists it is left alone, so the value survives
re-runs; the value itself never appears in a result, a diff or an event.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from provision.errors import ConfigError
from provision.models.names import check_path
from provision.tasks.base import ModuleSpec, Outcome, TaskContext

__all__ = ["SPEC", "SecretArgs"]

WRITE = (
    'set -e; umask 077; mkdir -p "$(dirname "$1")"; '
    'if [ -s "$1" ]; then exit 0; fi; t="$1.tmp.$$"; cat > "$t"; chmod 0600 "$t"; mv -f "$t" "$1"'
)


@dataclass(frozen=True)
class SecretArgs:
    path: str
    key: str
    length: int = 32

    def __post_init__(self) -> None:
        check_path(self.path, "secret.path")
        if not self.key.isidentifier():
            raise ConfigError(f"key {self.key!r} is not a variable name", field="secret.key")
        if not 16 <= self.length <= 256:
            raise ConfigError("length must be between 16 and 256", field="secret.length")


def apply(ctx: TaskContext, args: SecretArgs) -> Outcome:
    if ctx.read(["test", "-s", args.path]).ok:
        return ctx.ok(f"{args.path} exists (value kept)")
    value = secrets.token_urlsafe(args.length)[: args.length]
    # The value travels on stdin, so it is neither in a command line nor in ctx.executed.
    ctx.run(["sh", "-c", WRITE, "sh", args.path], stdin=f"{args.key}={value}\n".encode())
    return ctx.changed(f"generated {args.key} in {args.path}")


def look(args: SecretArgs, variables: Mapping[str, Any]) -> list[list[str]]:
    return [["test", "-s", args.path]]


SPEC = ModuleSpec("secret", SecretArgs, apply, look=look)
