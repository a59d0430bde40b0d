"""The modules a playbook task may name; ``registry()`` maps each name to its spec."""

from __future__ import annotations

from collections.abc import Mapping

from provision.tasks.base import ModuleSpec, Outcome, TaskContext

__all__ = ["ModuleSpec", "Outcome", "TaskContext", "registry"]


def registry() -> Mapping[str, ModuleSpec]:
    """Every module by name. Imported lazily so that ``provision --help`` stays fast."""
    from provision.tasks import catalog

    return catalog.MODULES
