"""A run's variables, resolved once (``RunVars``): the cluster's, and each host's in each play.

Built once per run, where the run starts (``provision.api``), from the inventory, the extra
variables and the run-time names; then handed down. Validation, the run lock, the runner and
the API's host lookups read this one object: nothing below the API merges the layers again.

The layers, later winning (Ansible's order for the levels we accept): the cluster layout's
defaults, the inventory, the play's ``vars``, the extra variables.

>>> from pathlib import Path
>>> inv = Inventory(Path("x"), {}, {"all": ()}, {"all": {"cluster_name": "demo"}})
>>> RunVars(inv, {"region": "eu-west-1"}).cluster["cluster_name"]
'demo'
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from provision.cluster.layout import DEFAULTS
from provision.load.inventory import Inventory, InventoryHost, resolve_vars

if TYPE_CHECKING:
    from provision.load.playbook import Play

__all__ = ["RunVars"]


class RunVars:
    """The variables of one run. ``cluster``: the cluster's as a whole (``all``'s, extra
    variables on top), what the run lock, the cloud target and the commands that find a
    cluster read. ``host()``: one host's in one play, merged once and kept (a host added at
    run time, by ``add_host`` or a dynamic source, is merged at its first use)."""

    def __init__(
        self,
        inventory: Inventory,
        extra_vars: Mapping[str, Any],
        runtime: Mapping[str, Any] | None = None,
    ) -> None:
        self.extra_vars: Mapping[str, Any] = MappingProxyType(dict(extra_vars))
        self.runtime: Mapping[str, Any] = MappingProxyType(dict(runtime or {}))
        self.cluster: Mapping[str, Any] = MappingProxyType(
            resolve_vars(inventory, "localhost", {}, self.extra_vars)
        )
        self._hosts: dict[tuple[int, str], tuple[InventoryHost, Play | None, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def host(self, inventory: Inventory, name: str, play: Play | None = None) -> dict[str, Any]:
        """``name``'s variables in ``play`` (none: outside any play), a copy the caller may
        layer its own names on. Kept per play and host; merged again only when the inventory
        holds another entry for the host (``add_host`` gave it new variables)."""
        entry = inventory.host(name)
        key = (id(play), name)
        with self._lock:
            kept = self._hosts.get(key)
            if kept is None or kept[0] is not entry or kept[1] is not play:
                play_vars = play.vars if play is not None else {}
                kept = (entry, play, resolve_vars(inventory, name, play_vars, self.extra_vars))
                self._hosts[key] = kept
        return dict(kept[2])

    def before_added(self, inventory: Inventory, play: Play) -> dict[str, Any]:
        """What a host that ``play`` targets but that is added only at run time (by a
        provisioning play or a dynamic source) will have, known before it exists: the layout's
        defaults, ``all``'s variables, the play's, the extra variables."""
        return {**DEFAULTS, **inventory.vars_of_group("all"), **play.vars, **self.extra_vars}
