"""``set_fact``: variables for this host, from here on, in this play and the plays after it
(Ansible's host-scoped facts). The values are rendered with the task's variables; no command
reaches the host. Extra vars still win over them, as in Ansible.

>>> # - set_fact: {endpoint: "{{ address }}:{{ port }}", ready: true}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from provision.errors import ConfigError
from provision.tasks.base import ModuleSpec, Outcome, TaskContext

__all__ = ["SPEC", "SetFactArgs"]


@dataclass(frozen=True)
class SetFactArgs:
    facts: dict[str, Any] = field(default_factory=dict)
    cacheable: bool = False  # accepted for Ansible's sake; there is no fact cache here

    def __post_init__(self) -> None:
        if not self.facts:
            raise ConfigError("give at least one name: value", field="set_fact")
        for name in self.facts:
            if not isinstance(name, str) or not name.isidentifier():
                raise ConfigError(f"invalid variable name {name!r}", field=f"set_fact.{name}")


def _free_form(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    facts = {k: v for k, v in raw.items() if k != "cacheable"}
    return {"facts": facts, **({"cacheable": raw["cacheable"]} if "cacheable" in raw else {})}


def _defines(raw: Mapping[str, Any]) -> set[str]:
    return {str(k) for k in raw if k != "cacheable"}


def apply(ctx: TaskContext, args: SetFactArgs) -> Outcome:
    names = ", ".join(sorted(args.facts))
    return Outcome(False, f"set {names}", data={"ansible_facts": dict(args.facts)})


SPEC = ModuleSpec("set_fact", SetFactArgs, apply, free_form=_free_form, defines=_defines)
