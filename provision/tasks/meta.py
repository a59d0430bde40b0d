"""``meta``: Ansible's ``meta: flush_handlers`` (run the handlers notified so far, now, not at
the end of the play) and ``meta: noop``. The runner carries them out; they report no result,
as in Ansible's recap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from provision.tasks.base import ModuleSpec, Outcome, TaskContext

__all__ = ["SPEC", "MetaArgs"]


@dataclass(frozen=True)
class MetaArgs:
    action: Literal["flush_handlers", "noop"]


def apply(ctx: TaskContext, args: MetaArgs) -> Outcome:
    return Outcome(False, args.action)  # the runner acts on it (Runner._host_play)


SPEC = ModuleSpec("meta", MetaArgs, apply, text_arg="action")
