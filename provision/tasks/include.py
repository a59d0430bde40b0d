"""``include_tasks``'s own task: the playbook loader reads the included file's tasks when it
loads the playbook (``provision.load.playbook``); this task stands for the include itself,
ok when it runs (its tasks then follow), skipped by its ``when`` (they then do not).
"""

from __future__ import annotations

from dataclasses import dataclass

from provision.tasks.base import ModuleSpec, Outcome, TaskContext

__all__ = ["SPEC", "IncludeArgs"]


@dataclass(frozen=True)
class IncludeArgs:
    file: str


def apply(ctx: TaskContext, args: IncludeArgs) -> Outcome:
    return Outcome(False, f"included: {args.file}")


SPEC = ModuleSpec("include_tasks", IncludeArgs, apply)
