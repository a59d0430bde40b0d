"""Check a loaded playbook against an inventory before any host or cloud call.

Each task's module and arguments, and every variable a template or ``when:``/``until:`` needs.
A variable is known when it is, for every host the play targets, one of:

- the host's variables (``RunVars.host``: inventory, play vars, extra vars); for a play whose
  hosts are only added at run time, the group vars of the groups it names, play and extra vars;
- a magic name (``MAGIC``), or one in ``extra_names`` (names modules publish);
- the ``register`` name of an earlier task, in any play (a task's own, in its ``until``).

>>> validate(load_playbook("up.yml"), load_inventory("inventory/sandbox.yml"), {})  # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Set
from pathlib import Path
from typing import Any

from provision.cluster.layout import DEFAULTS, layout_from_vars
from provision.connection.keys import key_file_problem
from provision.errors import ConfigError
from provision.load.inventory import Inventory
from provision.load.playbook import Play, Playbook, TaskDef, check_task_args
from provision.load.templating import evaluate, is_template, render, undeclared
from provision.load.variables import RunVars
from provision.load.yamlsource import Location, suggest, value_loc
from provision.models.names import check_address, check_name, check_port
from provision.tasks.base import ModuleSpec, build_args

__all__ = ["MAGIC", "validate"]

# What the runner defines for every task (``layout``: the cluster's layout, from the variables).
# No ``hostvars``: a template that names it is refused here; ``item`` (or a loop's own
# ``loop_var``) only in a task with a ``loop``.
MAGIC = frozenset({"inventory_hostname", "groups", "play_hosts", "facts", "playbook_dir",
                   "layout"})  # fmt: skip
# What the runner defines for the tasks of a ``rescue``: the failed task and its result.
RESCUE_NAMES = frozenset({"ansible_failed_task", "ansible_failed_result"})

# One set of variable names per host a play targets (host None: hosts added at run time).
_Scopes = list[tuple[str | None, set[str]]]


def validate(
    playbook: Playbook,
    inventory: Inventory,
    extra_vars: Mapping[str, Any],
    *,
    modules: Mapping[str, ModuleSpec] | None = None,
    extra_names: Set[str] = frozenset(),
    runtime: Mapping[str, Any] | None = None,
    variables: RunVars | None = None,
) -> None:
    """Raise the first ``ConfigError`` found (file:line:column, field, the variable's name).

    ``variables``: the run's, resolved once (the API's; without it, resolved here from
    ``extra_vars`` and ``runtime``); ``runtime``: the variables the run's options define
    (``state_dir``...), known by name and value; ``extra_names``: names defined at run time
    whose value is not known yet."""
    if variables is None:
        variables = RunVars(inventory, extra_vars, runtime)
    extra_names = set(extra_names) | set(variables.runtime)
    if modules is None:
        from provision.tasks import registry

        modules = registry()
    registered: set[str] = set()
    for p, play in enumerate(playbook.plays):
        field = f"plays[{p}]"
        scopes = _scopes(play, inventory, variables)
        static = _static_scopes(play, inventory, variables, str(playbook.path.parent))
        if play.when is not None:  # a play its condition skips is not checked for that host
            static = [v for v in static if _may_run(play.when, v, play.loc)]
        for name, value in play.vars.items():
            loc = value_loc(play.vars, name) or play.loc
            _check(value, scopes, MAGIC | extra_names | registered, loc, f"{field}.vars.{name}")
        if play.when is not None:
            known = MAGIC | extra_names | registered
            _check(play.when, scopes, known, play.loc, f"{field}.when", expression=True)
        for key, tasks in (("tasks", play.tasks), ("handlers", play.handlers)):
            for i, task in enumerate(tasks):
                known = MAGIC | extra_names | registered
                if any(pos.section == "rescue" for pos in task.blocks):
                    known |= RESCUE_NAMES
                where = task.path or f"{field}.{key}[{i}]"
                _check_task(task, modules, scopes, known, where)
                _check_rendered(task, modules[task.module], static, f"{where}.{task.module}")
                if task.register:
                    registered.add(task.register)
                spec = modules[task.module]
                if spec.defines is not None:  # set_fact's names, known from here on
                    registered |= spec.defines(task.args)


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
    if task.loop is not None:  # the loop's own templates, then its variables are known
        loop_loc = task.field_locs.get("loop", task.loc)
        for value, loc, where in _templates(task.loop, f"{field}.loop", loop_loc):
            _check(value, scopes, known, loc, where)
        known = known | _loop_names(task)
        if task.label is not None:
            _check(task.label, scopes, known, loop_loc, f"{field}.loop_control.label")
    if task.when is not None:
        loc = task.field_locs.get("when", task.loc)
        _check(task.when, scopes, known, loc, f"{field}.when", expression=True)
    for value, loc, where in _templates(task.args, f"{field}.{task.module}", module_loc):
        _check(value, scopes, known, loc, where)
    own = {task.register} if task.register else set()  # its own result, as Ansible gives it
    for key in ("until", "changed_when", "failed_when"):
        expression = getattr(task, key)
        if expression is not None:
            loc = task.field_locs.get(key, task.loc)
            _check(expression, scopes, known | own, loc, f"{field}.{key}", expression=True)


def _loop_names(task: TaskDef) -> set[str]:
    """The names a loop gives its task: the item (``loop_var``) and its index."""
    return {task.loop_var, *([task.index_var] if task.index_var else [])}


def _loop_scopes(task: TaskDef, variables: dict[str, Any]) -> list[dict[str, Any]]:
    """``variables`` once per item of the task's loop when the loop is known now (a list, or
    a template of known names), so that each item's arguments are checked at load; else once,
    as they are (what needs the item is then checked at run time)."""
    if task.loop is None:
        return [variables]
    if is_template(task.loop) and not undeclared(task.loop) <= set(variables):
        return [variables]
    return [
        task.item_scope(variables, i, item) for i, item in enumerate(task.loop_items(variables))
    ]


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


def _scopes(play: Play, inventory: Inventory, variables: RunVars) -> _Scopes:
    hosts = inventory.select(play.hosts)
    extra_vars = variables.extra_vars
    if hosts:
        return [(h.name, set(variables.host(inventory, h.name, play))) for h in hosts]
    # Hosts added at run time (by a provisioning play or a dynamic source): what any host of
    # the groups named would get.
    names = set(DEFAULTS) | set(play.vars) | set(extra_vars)
    for term in filter(None, re.split(r"[:,]", play.hosts)):
        if not term.startswith("!"):
            names |= set(inventory.vars_of_group(term.lstrip("&")))
    for source in inventory.sources:
        if source.options.get("group", "cluster") in play.hosts:
            names |= set(source.options.get("vars") or {})
    return [(None, names)]


def _static_scopes(
    play: Play,
    inventory: Inventory,
    resolved: RunVars,
    playbook_dir: str,
) -> list[dict[str, Any]]:
    """The variables each host of the play will have that are known before any call, rendered
    (play vars may be templates of others), with the magic names the runner defines. A value
    that needs a registered result or a fact is left out: it is checked at its task's turn."""
    hosts = inventory.select(play.hosts)
    extra_vars, runtime = resolved.extra_vars, resolved.runtime
    if hosts:
        raw = [(h.name, resolved.host(inventory, h.name, play)) for h in hosts]
    else:  # hosts added at run time: what every host of the groups named will get
        raw = [("", resolved.before_added(inventory, play))]
    scopes = []
    for host, variables in raw:
        values: dict[str, Any] = {
            "inventory_hostname": host, "playbook_dir": playbook_dir,
            "groups": {g: list(m) for g, m in inventory.groups.items()},
            "play_hosts": [h.name for h in hosts], **runtime,
        }  # fmt: skip
        _render_known(variables, values, extra_vars)
        if hosts:
            _check_connection(host, values, inventory)
        else:  # the hosts' names are not known before the run
            del values["inventory_hostname"], values["play_hosts"]
        _check_layout(values, play, inventory, extra_vars)
        values["layout"] = layout_from_vars(values).as_vars()
        scopes.append(values)
    return scopes


def _check_connection(host: str, values: Mapping[str, Any], inventory: Inventory) -> None:
    """How ``host`` is reached, as rendered now: its address, user, port and key file, checked
    before any call (a template in the inventory is checked here, once rendered; a key file
    that is missing, readable by others, encrypted or not a key is named now, not as an
    authentication failure after the connect deadline)."""
    if values.get("ansible_connection") == "local":
        return
    checks = {"ansible_host": check_address, "ansible_user": check_name,
              "ansible_port": check_port}  # fmt: skip
    try:
        for name, check in checks.items():
            value = values.get(name)
            if value is not None and not is_template(value):
                check(value, f"{host}.{name}")
    except ConfigError as exc:
        raise ConfigError(exc.message, file=str(inventory.path), field=exc.field) from exc
    key = values.get("ansible_ssh_private_key_file")
    if key and not is_template(key):
        problem = key_file_problem(Path(str(key)).expanduser())
        if problem:
            raise ConfigError(
                problem, file=str(inventory.path), field=f"{host}.ansible_ssh_private_key_file"
            )


def _render_known(
    variables: Mapping[str, Any], values: dict[str, Any], extra_vars: Mapping[str, Any]
) -> None:
    """Into ``values``: each variable whose templates need only names known now, rendered in
    the order they need each other (``b: "{{ a }}"`` before or after ``a``). Variables that
    need each other in a circle are refused, as Ansible refuses them ("recursive loop"): a
    task would have been given the literal text ``{{ a }}``."""

    def field(name: str) -> str:
        return f"-e {name}" if name in extra_vars else f"vars.{name}"

    pending: dict[str, Any] = {}
    for name, value in variables.items():
        if is_template(value):
            pending[name] = value
        else:
            values[name] = value
    needs: dict[str, set[str]] = {}
    for name, value in pending.items():
        try:
            needs[name] = undeclared(value)
        except ConfigError as exc:  # a syntax error, or too deep: without a place
            raise ConfigError(exc.message, field=field(name)) from exc
    progress = True
    while progress:
        progress = False
        for name in [n for n in pending if needs[n] <= set(values)]:
            values[name] = render(pending.pop(name), values, field=field(name))
            progress = True
    for name in pending:  # left: waiting for a run-time name, or for each other
        circle = _circle(name, {n: needs[n] & set(pending) for n in pending})
        if circle:
            raise ConfigError(
                "recursive loop detected in template: " + " -> ".join(circle), field=field(name)
            )


def _circle(start: str, needs: Mapping[str, set[str]]) -> list[str]:
    """A path of names from ``start`` back to itself through ``needs``, or []."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        name, path = stack.pop()
        for nxt in sorted(needs.get(name, ())):
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return []


def _may_run(when: str, variables: Mapping[str, Any], loc: Location) -> bool:
    """False only when the condition is known now and false for these variables."""
    if not undeclared(when, expression=True) <= set(variables):
        return True
    return bool(evaluate(when, variables, loc=loc))


def _check_layout(
    variables: Mapping[str, Any], play: Play, inventory: Inventory, extra_vars: Mapping[str, Any]
) -> None:
    """The cluster's layout, as this host will see it, is valid (a bad strategy, network, path
    or port is refused here, naming where the value was given)."""
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


def _check_rendered(
    task: TaskDef, spec: ModuleSpec, scopes: list[dict[str, Any]], field: str
) -> None:
    """The task's arguments as each host will get them, where they can be rendered now, pass
    the module's own checks (types, names, paths): a shell character given by ``-e`` is
    refused here, not after earlier tasks changed the host."""
    module_loc = task.field_locs.get("module", task.loc)
    for variables in [each for scope in scopes for each in _loop_scopes(task, scope)]:
        known = set(variables)
        # A task its condition skips on this host is not checked for it (a cloud task on
        # `cloud: none`); a condition that needs a run-time value: checked at its turn.
        when_loc = task.field_locs.get("when", task.loc)
        if task.when is not None and not _may_run(task.when, variables, when_loc):
            continue
        values: dict[str, Any] = {}
        for name, value in task.args.items():
            if undeclared(value) <= known:
                where = value_loc(task.args, name) or module_loc
                values[name] = render(value, variables, loc=where, field=f"{field}.{name}")
                _no_nul(values[name], where, f"{field}.{name}")
            else:
                values[name] = value  # needs a registered value: checked at its turn
        check_task_args(spec, task.args, field, module_loc, values=values)
        if spec.sources is not None and not any(is_template(v) for v in values.values()):
            try:
                spec.sources(build_args(spec, values), variables)
            except ConfigError as exc:
                name = (exc.field or "").partition(".")[2]
                at = (value_loc(task.args, name) if name in task.args else None) or module_loc
                raise at.error(exc.message, f"{field}.{name}") from exc


def _no_nul(value: Any, loc: Location, field: str) -> None:
    if isinstance(value, Mapping):
        for v in value.values():
            _no_nul(v, loc, field)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _no_nul(v, loc, field)
    elif isinstance(value, str) and "\x00" in value:
        raise loc.error(f"a NUL byte in {value!r}: no command can carry it", field)
