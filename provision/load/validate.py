"""Check a loaded playbook against an inventory before any host or cloud call.

Each task's module and arguments, and every variable a template or ``when:``/``until:`` needs.
A variable is known when it is, for every host the play targets, one of:

- the host's variables (``resolve_vars``: inventory, play vars, extra vars); for a play whose
  hosts are only added at run time, the group vars of the groups it names, play and extra vars;
- a magic name (``MAGIC``), or one in ``extra_names`` (names modules publish);
- the ``register`` name of an earlier task, in any play (a task's own, in its ``until``).

>>> validate(load_playbook("up.yml"), load_inventory("inventory/sandbox.yml"), {})  # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Set
from typing import Any

from provision.cluster.layout import DEFAULTS, layout_from_vars
from provision.errors import ConfigError
from provision.load.inventory import Inventory, resolve_vars
from provision.load.playbook import Play, Playbook, TaskDef, check_task_args
from provision.load.templating import is_template, undeclared
from provision.load.yamlsource import Location, suggest, value_loc
from provision.tasks.base import ModuleSpec

__all__ = ["MAGIC", "validate"]

# What the runner defines for every task (``layout``: the cluster's layout, from the variables).
# No loops and no ``hostvars``: a template that names ``item`` or ``hostvars`` is refused here.
MAGIC = frozenset({"inventory_hostname", "groups", "play_hosts", "facts", "playbook_dir",
                   "layout"})  # fmt: skip

# One set of variable names per host a play targets (host None: hosts added at run time).
_Scopes = list[tuple[str | None, set[str]]]


def validate(
    playbook: Playbook,
    inventory: Inventory,
    extra_vars: Mapping[str, Any],
    *,
    modules: Mapping[str, ModuleSpec] | None = None,
    extra_names: Set[str] = frozenset(),
) -> None:
    """Raise the first ``ConfigError`` found (file:line:column, field, the variable's name)."""
    if modules is None:
        from provision.tasks import registry

        modules = registry()
    registered: set[str] = set()
    for p, play in enumerate(playbook.plays):
        field = f"plays[{p}]"
        scopes = _scopes(play, inventory, extra_vars)
        _check_layout(play, inventory, extra_vars)
        for name, value in play.vars.items():
            loc = value_loc(play.vars, name) or play.loc
            _check(value, scopes, MAGIC | extra_names | registered, loc, f"{field}.vars.{name}")
        for key, tasks in (("tasks", play.tasks), ("handlers", play.handlers)):
            for i, task in enumerate(tasks):
                known = MAGIC | extra_names | registered
                _check_task(task, modules, scopes, known, f"{field}.{key}[{i}]")
                if task.register:
                    registered.add(task.register)


def _check_task(
    task: TaskDef, modules: Mapping[str, ModuleSpec], scopes: _Scopes, known: Set[str], field: str
) -> None:
    module_loc = task.field_locs.get("module", task.loc)
    spec = modules.get(task.module)
    if spec is None:
        raise module_loc.error(
            f"unknown module {task.module!r}{suggest(task.module, modules)}",
            f"{field}.{task.module}",
        )
    check_task_args(spec, task.args, f"{field}.{task.module}", module_loc)
    if task.when is not None:
        loc = task.field_locs.get("when", task.loc)
        _check(task.when, scopes, known, loc, f"{field}.when", expression=True)
    for value, loc, where in _templates(task.args, f"{field}.{task.module}", module_loc):
        _check(value, scopes, known, loc, where)
    if task.until is not None:
        own = {task.register} if task.register else set()
        loc = task.field_locs.get("until", task.loc)
        _check(task.until, scopes, known | own, loc, f"{field}.until", expression=True)


def _templates(value: Any, field: str, loc: Location) -> Iterator[tuple[str, Location, str]]:
    """Every templated string in ``value``, with where it is written."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _templates(item, f"{field}.{key}", value_loc(value, key) or loc)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _templates(item, f"{field}[{i}]", value_loc(value, i) or loc)
    elif is_template(value):
        yield value, loc, field


def _check(
    value: Any,
    scopes: _Scopes,
    known: Set[str],
    loc: Location,
    field: str,
    *,
    expression: bool = False,
) -> None:
    try:
        needed = undeclared(value, expression=expression)
    except ConfigError as exc:
        raise loc.error(exc.message, field) from exc
    for host, names in scopes:
        missing = sorted(needed - names - known)
        if not missing:
            continue
        elsewhere = any(missing[0] in other for _, other in scopes)
        suffix = f" for host {host!r}" if host and elsewhere else ""
        hint = suggest(missing[0], names | known)
        raise loc.error(f"undefined variable {missing[0]!r}{suffix}{hint}", field)


def _scopes(play: Play, inventory: Inventory, extra_vars: Mapping[str, Any]) -> _Scopes:
    hosts = inventory.select(play.hosts)
    if hosts:
        return [
            (h.name, set(resolve_vars(inventory, h.name, play.vars, extra_vars))) for h in hosts
        ]
    # Hosts added at run time (by a provisioning play or a dynamic source): what any host of
    # the groups named would get.
    names = set(play.vars) | set(extra_vars)
    for term in filter(None, re.split(r"[:,]", play.hosts)):
        if not term.startswith("!"):
            names |= set(inventory.vars_of_group(term.lstrip("&")))
    for source in inventory.sources:
        if source.options.get("group", "cluster") in play.hosts:
            names |= set(source.options.get("vars") or {})
    return [(None, names)]


def _check_layout(play: Play, inventory: Inventory, extra_vars: Mapping[str, Any]) -> None:
    """The cluster's layout, as every host of the play will see it, is valid (a bad strategy,
    network, path or port is refused here, naming where the value was given)."""
    hosts = inventory.select(play.hosts)
    if hosts:
        scopes = [resolve_vars(inventory, h.name, play.vars, extra_vars) for h in hosts]
    else:
        scopes = [{**inventory.vars_of_group("all"), **play.vars, **extra_vars}]
    for variables in scopes:
        if any(is_template(variables.get(name)) for name in DEFAULTS):
            continue  # known once rendered; the runner builds the layout again then
        try:
            layout_from_vars(variables)
        except ConfigError as exc:
            name = exc.field or ""
            if name in extra_vars:
                raise ConfigError(exc.message, field=f"-e {name}") from exc
            loc = value_loc(play.vars, name) if name in play.vars else None
            if loc is not None:
                raise loc.error(exc.message, f"vars.{name}") from exc
            raise ConfigError(exc.message, file=str(inventory.path), field=f"vars.{name}") from exc
