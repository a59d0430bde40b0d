"""``command``: run one command (an argv list, never a shell string), like Ansible's.

``creates``: skip when that path exists. ``changes: false`` for read-only commands (ok, and
it runs in check mode too). The result's ``stdout``, ``stderr`` and ``rc`` can be registered.
"""

from __future__ import annotations

from dataclasses import dataclass

from provision.errors import ConfigError
from provision.models import Result
from provision.tasks.base import ModuleSpec, Outcome, TaskContext

__all__ = ["SPEC", "CommandArgs"]


@dataclass(frozen=True)
class CommandArgs:
    # Each item a string, as Ansible's ``argv`` (a list of str) makes it: a rendered
    # ``{{ r.skipped }}`` is the argument "True", a ``{{ n }}`` the argument "3".
    argv: tuple[str | bool | int | float, ...]
    creates: str | None = None
    changes: bool = True

    def __post_init__(self) -> None:
        if not self.argv:
            raise ConfigError("argv must not be empty", field="command.argv")

    @property
    def words(self) -> tuple[str, ...]:
        """``argv`` as the command gets it."""
        return tuple(str(item) for item in self.argv)


def apply(ctx: TaskContext, args: CommandArgs) -> Outcome:
    if args.creates and ctx.read(["test", "-e", args.creates]).ok:
        return ctx.ok(f"{args.creates} exists")
    if not args.changes:
        result = ctx.read(args.words)
        return _outcome(result, changed=False)
    done = ctx.run(args.words, warn=True)
    if done is None:
        return ctx.changed(f"would run {' '.join(args.words)}")
    return _outcome(done, changed=True)


def _outcome(result: Result, *, changed: bool) -> Outcome:
    """Ansible's result of a command: ``stdout``/``stderr`` without their trailing newlines
    (so ``out.stdout == 'hello'`` holds), their ``_lines``, ``rc``, ``cmd``; a non-zero exit
    is a failed result that still carries them (``ignore_errors`` and ``until`` read it)."""
    stdout, stderr = result.stdout.rstrip("\r\n"), result.stderr.rstrip("\r\n")
    data = {
        "stdout": stdout, "stderr": stderr, "stdout_lines": stdout.splitlines(),
        "stderr_lines": stderr.splitlines(), "rc": result.exit_code, "cmd": result.command,
    }  # fmt: skip
    if result.failed:
        msg = f"non-zero return code {result.exit_code}"
        detail = (stderr or stdout).strip()[-300:]
        return Outcome(changed, f"{msg}: {detail}" if detail else msg, data=data, failed=True)
    return Outcome(changed, stdout.strip()[:200], data=data)


SPEC = ModuleSpec("command", CommandArgs, apply)
