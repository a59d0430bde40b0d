"""``shell``: a command line run by a shell, as Ansible's (``shell: cmd`` or ``cmd:``, with
``chdir``, ``creates`` and ``executable``). Prefer ``command`` (one argv, never re-parsed):
``shell`` is for what needs a shell, pipes and redirections; its text is the user's own and is
given to the shell as one argument, never spliced into another command. Its result is a
command's (``stdout``, ``stderr``, ``rc``...), and a non-zero exit fails the task.
"""

from __future__ import annotations

from dataclasses import dataclass

from provision.errors import ConfigError
from provision.models.names import check_path
from provision.tasks import command
from provision.tasks.base import ModuleSpec, Outcome, TaskContext

__all__ = ["SPEC", "ShellArgs"]

# cd to $1 (when given), then run $3 with the shell $2: the values travel as arguments.
_RUN = 'if [ -n "$1" ]; then cd "$1" || exit 1; fi; exec "$2" -c "$3"'


@dataclass(frozen=True)
class ShellArgs:
    cmd: str
    chdir: str | None = None
    creates: str | None = None
    executable: str = "/bin/sh"

    def __post_init__(self) -> None:
        if not self.cmd.strip():
            raise ConfigError("cmd must not be empty", field="shell.cmd")
        for name in ("chdir", "creates", "executable"):
            value = getattr(self, name)
            if value is not None:
                check_path(value, f"shell.{name}")


def apply(ctx: TaskContext, args: ShellArgs) -> Outcome:
    argv = ["sh", "-c", _RUN, "sh", args.chdir or "", args.executable, args.cmd]
    return command.apply(ctx, command.CommandArgs(argv=tuple(argv), creates=args.creates))


SPEC = ModuleSpec("shell", ShellArgs, apply, text_arg="cmd")
