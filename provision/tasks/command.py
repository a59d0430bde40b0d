"""``command``: run one command (an argv list, never a shell string), like Ansible's.

``creates``: skip when that path exists. ``changes: false`` for read-only commands (ok, and
it runs in check mode too). The result's ``stdout``, ``stderr`` and ``rc`` can be registered.
"""

from __future__ import annotations

from dataclasses import dataclass

from provision.errors import CommandError, ConfigError
from provision.tasks.base import ModuleSpec, Outcome, TaskContext

__all__ = ["SPEC", "CommandArgs"]


@dataclass(frozen=True)
class CommandArgs:
    argv: tuple[str, ...]
    creates: str | None = None
    changes: bool = True

    def __post_init__(self) -> None:
        if not self.argv:
            raise ConfigError("argv must not be empty", field="command.argv")


def apply(ctx: TaskContext, args: CommandArgs) -> Outcome:
    if args.creates and ctx.read(["test", "-e", args.creates]).ok:
        return ctx.ok(f"{args.creates} exists")
    if not args.changes:
        result = ctx.read(args.argv)
        if result.failed:
            raise CommandError(result, host=ctx.host.name)
        return ctx.ok(
            result.stdout.strip()[:200],
            stdout=result.stdout,
            stderr=result.stderr,
            rc=result.exit_code,
        )
    done = ctx.run(args.argv)
    if done is None:
        return ctx.changed(f"would run {' '.join(args.argv)}")
    return ctx.changed(
        done.stdout.strip()[:200], stdout=done.stdout, stderr=done.stderr, rc=done.exit_code
    )


SPEC = ModuleSpec("command", CommandArgs, apply)
