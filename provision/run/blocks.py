"""Where a host is in the blocks of a play: which tasks run after a failure, which failure a
``rescue`` takes care of, and when a failure leaves a block (Ansible's ``block``/``rescue``/
``always``).

The play's tasks are one flat list; each knows its blocks (``TaskDef.blocks``, innermost
first). A failure in a block's ``block`` section skips the rest of that section and runs its
``rescue``, then its ``always``; a failure in ``rescue`` skips the rest of it and runs
``always``; one in ``always`` skips the rest of it. When the block ends, a failure that no
rescue took care of (no rescue, or the rescue failed too) becomes the failure of the
enclosing block's section, or of the host at the top. As in Ansible, the recap counts a
failure as ``rescued`` (not ``failed``) when a rescue around it will take care of it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from provision.load.playbook import BlockPos, Location, TaskDef

__all__ = ["HostBlocks"]


class HostBlocks:
    """One host's way through the blocks of one play (``tasks``: the play's, all of them;
    ``selected``: whether a task is selected by ``--tags``/``--skip-tags``)."""

    def __init__(self, tasks: Sequence[TaskDef], selected: Callable[[TaskDef], bool]) -> None:
        self._failed: dict[Location, str] = {}  # block -> the section that failed
        self._last: dict[Location, int] = {}  # block -> the index of its last task
        self._parent: dict[Location, BlockPos | None] = {}
        self._sections: set[tuple[Location, str]] = set()  # the sections with a selected task
        for index, task in enumerate(tasks):
            for depth, pos in enumerate(task.blocks):
                self._last[pos.block] = index
                self._parent[pos.block] = (
                    task.blocks[depth + 1] if depth + 1 < len(task.blocks) else None
                )
                if selected(task):  # as Ansible filters the tasks by tags before it runs
                    self._sections.add((pos.block, pos.section))

    def runs(self, task: TaskDef) -> bool:
        """Whether the task runs, given the failures so far (its own ``when`` aside)."""
        for pos in task.blocks:
            failed = self._failed.get(pos.block)
            if pos.section == "block" and failed is not None:
                return False
            if pos.section == "rescue" and failed != "block":
                return False
            if pos.section == "always" and failed == "always":
                return False
        return True

    def fail(self, task: TaskDef) -> bool:
        """Record the task's failure; True when it is in the ``block`` section of a block with
        a rescue, at any depth: that rescue takes care of it, and Ansible's recap counts it
        ``rescued`` (``PlayIterator.is_any_block_rescuing``), even where an inner ``always``
        runs first."""
        self._failed[task.blocks[0].block] = task.blocks[0].section
        return any(
            pos.section == "block" and (pos.block, "rescue") in self._sections
            for pos in task.blocks
        )

    def leave(self, index: int, task: TaskDef) -> bool:
        """After the task at ``index`` (run or not): close the blocks that end with it,
        innermost first. False when a failure leaves the outermost one: the host has failed."""
        for pos in task.blocks:
            if self._last.get(pos.block) != index:
                break
            failed = self._failed.pop(pos.block, None)
            rescued = failed == "block" and (pos.block, "rescue") in self._sections
            if failed is None or rescued:
                continue
            parent = self._parent[pos.block]
            if parent is None:
                return False
            self._failed[parent.block] = parent.section
        return True
