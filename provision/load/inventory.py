"""Inventories: Ansible's YAML format, plus dynamic sources; and where variables come from.

::

    all:
      vars: {ansible_user: admin}
      hosts:
        sandbox1: {ansible_host: 127.0.0.1, ansible_port: 2201}
      children:
        cluster:
          hosts: {sandbox1: }
          vars: {network: shared-network}

A file with ``plugin: provision.aws_ec2`` (and ``cluster``, optional ``region``, ``group`` --
default ``cluster`` -- and ``vars`` for the hosts found) describes hosts found by their tags at
run time; loading only records it as a ``DynamicSource``, and its group exists, empty, until
the run adds hosts with ``Inventory.with_hosts``.

Variable precedence -- exactly three levels, later wins:

====  ===============  =============================================================
 1    inventory        group ``vars`` from ``all`` to the most specific group (by depth,
                       then name), then the host's own vars
 2    play             the play's ``vars`` (then its ``vars_files``, in order)
 3    extra vars       ``-e key=value`` / ``-e @file.yml`` on the command line
====  ===============  =============================================================

Registered results and facts are not variables of a level: they are names of their own.

>>> inv = load_inventory("inventory/sandbox.yml")            # doctest: +SKIP
>>> [h.name for h in inv.select("cluster:!sandbox2")]      # doctest: +SKIP
['sandbox1']
>>> parse_extra_vars(["port=6380", "debug=true", "name=web"])
{'port': 6380, 'debug': True, 'name': 'web'}
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from provision.cluster.layout import DEFAULTS
from provision.errors import ConfigError
from provision.load.yamlsource import Location, key_loc, load_file, loc_of, suggest, value_loc
from provision.models import HostSpec

__all__ = [
    "DynamicSource", "Inventory", "InventoryHost", "load_inventory", "parse_extra_vars",
    "resolve_vars", "to_host_spec",
]  # fmt: skip

NAME = re.compile(r"\A[A-Za-z0-9_.-]+\Z")
PLUGINS = {"provision.aws_ec2": ("cluster", "region", "group", "vars")}
# Connection variables: the short names are accepted in a host's own entry only (and renamed
# there), so that a group variable such as `port: 6379` for Redis is never taken for SSH's port.
CONNECTION_VARS = {"host": "ansible_host", "port": "ansible_port", "user": "ansible_user",
                   "key_file": "ansible_ssh_private_key_file"}  # fmt: skip


@dataclass(frozen=True)
class DynamicSource:
    """Hosts found at run time, e.g. ``provision.aws_ec2`` by the tags of ``cluster``."""

    plugin: str
    options: Mapping[str, Any]
    loc: Location | None


@dataclass(frozen=True)
class InventoryHost:
    """A host: ``vars`` are its inventory-level variables (precedence level 1, merged);
    ``groups`` go from ``all`` to the most specific; ``host_vars`` are only its own."""

    name: str
    vars: Mapping[str, Any]
    groups: tuple[str, ...]
    host_vars: Mapping[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Inventory:
    """Hosts, groups (each with all its hosts, children's included) and group vars."""

    path: Path
    hosts: Mapping[str, InventoryHost]
    groups: Mapping[str, tuple[str, ...]]
    group_vars: Mapping[str, Mapping[str, Any]]
    sources: tuple[DynamicSource, ...] = ()
    parents: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def host(self, name: str) -> InventoryHost:
        """A host by name; ``localhost`` always exists (with ``all``'s vars, in no group)."""
        if name in self.hosts:
            return self.hosts[name]
        if name == "localhost":
            variables = {**self.group_vars.get("all", {}), "ansible_connection": "local"}
            return InventoryHost("localhost", variables, (), {"ansible_connection": "local"})
        raise ConfigError(f"no host named {name!r} in the inventory", file=str(self.path))

    def select(self, pattern: str) -> list[InventoryHost]:
        """Hosts matching an Ansible pattern, in inventory order.

        ``all``, a group, a host, ``localhost``, shell-style wildcards (``web*``), joined by
        ``:`` or ``,`` (union); ``!x`` excludes, ``&x`` intersects. An unknown name matches no
        host: its hosts may be added at run time.
        """
        chosen: list[str] = []
        for term in filter(None, re.split(r"[:,]", pattern)):
            names = self._term(term.lstrip("!&"))
            if term.startswith("!"):
                chosen = [n for n in chosen if n not in names]
            elif term.startswith("&"):
                chosen = [n for n in chosen if n in names]
            else:
                chosen += [n for n in names if n not in chosen]
        return [self.host(name) for name in chosen]

    def _term(self, term: str) -> list[str]:
        if term in ("all", "*"):
            return list(self.hosts)
        if term in self.groups:
            return list(self.groups[term])
        if term in self.hosts or term == "localhost":
            return [term]
        if "*" in term or "?" in term:
            hits = [h for h in self.hosts if fnmatch.fnmatchcase(h, term)]
            for group in fnmatch.filter(self.groups, term):
                hits += [h for h in self.groups[group] if h not in hits]
            return hits
        return []

    def vars_of_group(self, group: str) -> dict[str, Any]:
        """The inventory variables a host added to ``group`` at run time gets."""
        parents = {**self.parents}
        parents.setdefault(group, () if group == "all" else ("all",))
        chain = _order(_ancestors(group, parents), parents)
        return _merge([self.group_vars.get(g, {}) for g in chain])

    def with_hosts(self, new_hosts: Iterable[InventoryHost], group: str) -> Inventory:
        """A new inventory with ``new_hosts`` (their ``vars`` taken as their own) in ``group``.

        >>> inv = Inventory(Path("x"), {}, {"all": ()}, {"all": {"u": 1}})
        >>> inv.with_hosts([InventoryHost("web1", {"ansible_host": "10.0.0.5"}, ())], "cluster"
        ...               ).select("cluster")[0].vars
        {'u': 1, 'ansible_host': '10.0.0.5'}
        """
        _check_name(group, "group", None, str(self.path), "group")
        parents = dict(self.parents)
        parents.setdefault(group, () if group == "all" else ("all",))
        groups = {name: list(members) for name, members in self.groups.items()}
        hosts = dict(self.hosts)
        for new in new_hosts:
            _check_name(new.name, "host", None, str(self.path), "hosts")
            old = hosts.get(new.name)
            own = {**(old.host_vars if old else {}), **_long_names(new.vars)}
            chain = _order({*(old.groups if old else ()), *_ancestors(group, parents)}, parents)
            merged = _merge([self.group_vars.get(g, {}) for g in chain] + [own])
            hosts[new.name] = InventoryHost(new.name, merged, chain, own)
            for name in chain:
                if new.name not in groups.setdefault(name, []):
                    groups[name].append(new.name)
            if group != "ungrouped" and new.name in groups.get("ungrouped", []):
                groups["ungrouped"].remove(new.name)
        return replace(
            self, hosts=hosts, groups={g: tuple(m) for g, m in groups.items()}, parents=parents
        )


def resolve_vars(
    inventory: Inventory,
    host_name: str,
    play_vars: Mapping[str, Any],
    extra_vars: Mapping[str, Any],
) -> dict[str, Any]:
    """The variables of one host in one play, later levels winning: the defaults of the
    cluster's layout (``provision.cluster.layout.DEFAULTS``, like an Ansible role's defaults),
    the inventory, the play's vars, the extra vars."""
    return {**DEFAULTS, **inventory.host(host_name).vars, **play_vars, **extra_vars}


def to_host_spec(host: InventoryHost, variables: Mapping[str, Any] | None = None) -> HostSpec:
    """How to reach ``host``; ``variables`` (e.g. from ``resolve_vars``) default to its own.

    >>> host = InventoryHost("web1", {"ansible_host": "10.0.0.5", "ansible_port": "2222"}, ())
    >>> to_host_spec(host).target
    'admin@10.0.0.5:2222'
    """
    values = dict(host.vars if variables is None else variables)
    port = values.get("ansible_port")
    if port is not None and _port(port) is None:
        raise ConfigError(
            f"port must be an integer from 1 to 65535, got {port!r}",
            field=f"{host.name}.ansible_port",
        )
    key_file = values.get("ansible_ssh_private_key_file")
    return HostSpec(
        name=host.name, address=str(values.get("ansible_host") or host.name),
        port=_port(port) or 22, user=str(values.get("ansible_user") or "admin"), vars=values,
        key_file=Path(str(key_file)).expanduser() if key_file else None,
    )  # fmt: skip


def parse_extra_vars(items: Sequence[str]) -> dict[str, Any]:
    """``-e`` items: ``key=value`` (the value read as a YAML scalar), ``@file.yml`` or a YAML
    mapping such as ``{"a": 1}``; later items win."""
    result: dict[str, Any] = {}
    for item in items:
        if item.startswith("@"):
            result.update(_vars_mapping(load_file(item[1:]), item[1:], "-e"))
        elif item.lstrip().startswith("{"):
            try:
                loaded = yaml.safe_load(item)
            except yaml.YAMLError as exc:
                problem = getattr(exc, "problem", None) or exc
                raise ConfigError(f"invalid YAML mapping {item!r}: {problem}", field="-e") from exc
            result.update(_vars_mapping(loaded, None, "-e"))
        else:
            key, sep, text = item.partition("=")
            if not sep or not key.isidentifier():
                raise ConfigError(
                    f"expected key=value, @file.yml or a mapping, got {item!r}", field="-e"
                )
            result[key] = _scalar(text)
    return result


def load_inventory(path: str | Path) -> Inventory:
    """Load a YAML inventory (static groups and hosts, and/or a ``plugin:`` source)."""
    data = load_file(path)
    if not isinstance(data, Mapping) or not data:
        where = loc_of(data)
        message = f"an inventory must be a mapping of groups, got {type(data).__name__}"
        raise where.error(message) if where else ConfigError(message, file=str(path))
    builder = _Builder(str(path))
    sources = (builder.source(data),) if "plugin" in data else ()
    for name, raw in data.items():
        if sources and name != "all":
            continue  # the other top-level keys of a plugin file are its options
        _check_name(name, "group", key_loc(data, name), builder.file, "")
        builder.group(name, raw, None if name == "all" else "all", name)
    for source in sources:
        builder.group(str(source.options.get("group", "cluster")), None, "all", "group")
    return builder.finish(Path(path), sources)


class _Builder:
    """Collects groups and hosts as the file mentions them; ``finish`` derives the rest."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.own: dict[str, dict[str, Any]] = {}  # host -> its own vars, in order of mention
        self.direct: dict[str, list[str]] = {"all": [], "ungrouped": []}
        self.parents: dict[str, list[str]] = {"all": [], "ungrouped": ["all"]}
        self.gvars: dict[str, dict[str, Any]] = {}
        # Where each parent -> child edge is written, to point at a cycle.
        self.edges: dict[tuple[str, str], tuple[Location, str]] = {}

    def fail(self, container: Any, key: Any, field: str, message: str) -> ConfigError:
        loc = value_loc(container, key) if key is not None else loc_of(container)
        return (
            loc.error(message, field) if loc else ConfigError(message, file=self.file, field=field)
        )

    def mapping(self, container: Any, key: str, field: str, what: str) -> Mapping[Any, Any]:
        value = container.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            got = type(value).__name__
            raise self.fail(container, key, field, f"{what} must be a mapping, got {got}")
        return value

    def group(self, name: str, raw: Any, parent: str | None, field: str) -> None:
        self.direct.setdefault(name, [])
        self.parents.setdefault(name, [])
        if parent and parent not in self.parents[name]:
            self.parents[name].append(parent)
        if raw is None:
            return
        if not isinstance(raw, Mapping):
            raise self.fail(raw, None, field, "a group must be a mapping of hosts, vars, children")
        for key in raw:
            if key not in ("hosts", "vars", "children"):
                hint = suggest(str(key), ("hosts", "vars", "children"))
                raise self.fail(raw, None, f"{field}.{key}", f"unknown group key {key!r}{hint}")
        hosts = self.mapping(raw, "hosts", f"{field}.hosts", "hosts")
        for host in hosts:
            _check_name(host, "host", key_loc(hosts, host), self.file, f"{field}.hosts")
            own = self.variables(hosts, host, f"{field}.hosts.{host}", host_entry=True)
            self.own.setdefault(host, {}).update(own)
            if host not in self.direct[name]:
                self.direct[name].append(host)
        self.gvars.setdefault(name, {}).update(self.variables(raw, "vars", f"{field}.vars"))
        children = self.mapping(raw, "children", f"{field}.children", "children")
        for child, child_raw in children.items():
            where = key_loc(children, child) or Location(self.file, 1, 1)
            _check_name(child, "group", where, self.file, f"{field}.children")
            if child == "all":
                raise where.error("'all' is no one's child", f"{field}.children")
            self.edges.setdefault((name, child), (where, f"{field}.children.{child}"))
            self.group(child, child_raw, name, f"{field}.children.{child}")

    def variables(
        self, container: Any, key: Any, field: str, *, host_entry: bool = False
    ) -> dict[str, Any]:
        raw = self.mapping(container, key, field, "vars")
        for name, value in raw.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise self.fail(raw, None, field, f"invalid variable name {name!r}")
            problem = _connection_problem(
                CONNECTION_VARS.get(name, name) if host_entry else name, value
            )
            if problem:
                raise self.fail(raw, name, f"{field}.{name}", problem)
        return _long_names(raw) if host_entry else dict(raw)

    def source(self, data: Mapping[str, Any]) -> DynamicSource:
        plugin = data["plugin"]
        if plugin not in PLUGINS:
            hint = suggest(str(plugin), PLUGINS)
            raise self.fail(data, "plugin", "plugin", f"unknown inventory plugin {plugin!r}{hint}")
        options = {k: v for k, v in data.items() if k not in ("plugin", "all")}
        for key, value in options.items():
            if key not in PLUGINS[plugin]:
                hint = suggest(str(key), PLUGINS[plugin])
                raise self.fail(data, None, key, f"unknown option {key!r} of {plugin}{hint}")
            if key != "vars" and not (isinstance(value, str) and NAME.match(value)):
                raise self.fail(data, key, key, f"must be a name, got {value!r}")
        if "cluster" not in options:
            raise self.fail(data, None, "cluster", f"{plugin} needs 'cluster'")
        if "vars" in options:
            options["vars"] = self.variables(data, "vars", "vars", host_entry=True)
        return DynamicSource(str(plugin), options, loc_of(data))

    def finish(self, path: Path, sources: tuple[DynamicSource, ...]) -> Inventory:
        for group in self.parents:
            _check_cycle(group, self.parents, [], self.edges)
        for host in self.own:
            if not any(host in members for g, members in self.direct.items() if g != "all"):
                self.direct["ungrouped"].append(host)
        hosts: dict[str, InventoryHost] = {}
        for host, own in self.own.items():
            listed = [g for g, members in self.direct.items() if host in members]
            chain = _order(
                set().union(*(_ancestors(g, self.parents) for g in listed)), self.parents
            )
            merged = _merge([self.gvars.get(g, {}) for g in chain] + [own])
            hosts[host] = InventoryHost(host, merged, chain, own)
        groups = {g: tuple(h for h in hosts if g in hosts[h].groups) for g in self.parents}
        return Inventory(
            path, hosts, groups, self.gvars, sources, {g: tuple(p) for g, p in self.parents.items()}
        )


# ---------------------------------------------------------------- helpers


def _scalar(text: str) -> Any:
    if text == "":
        return ""  # as Ansible: `-e name=` is an empty string, not null
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, (str, int, float, bool)) else text


def _vars_mapping(data: Any, file: str | None, field: str) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        loc = loc_of(data)
        raise ConfigError(
            "extra vars must be a mapping",
            file=file,
            line=loc.line if loc else None,
            column=loc.column if loc else None,
            field=field,
        )
    for key in data:
        if not isinstance(key, str) or not key.isidentifier():
            raise ConfigError(f"invalid variable name {key!r}", file=file, field=field)
    return dict(data)


def _connection_problem(name: str, value: Any) -> str | None:
    if value is None or (isinstance(value, str) and "{{" in value):
        return None  # a template is checked once rendered
    if name == "ansible_port" and _port(value) is None:
        return f"must be an integer port from 1 to 65535, got {value!r}"
    if name in CONNECTION_VARS.values() and name != "ansible_port" and not isinstance(value, str):
        return f"must be a string, got {value!r}"
    return None


def _long_names(own: Mapping[str, Any]) -> dict[str, Any]:
    """A host's own vars with the short connection names renamed (``port`` -> ``ansible_port``);
    the Ansible name wins when both are given."""
    renamed = {CONNECTION_VARS.get(k, k): v for k, v in own.items() if k not in CONNECTION_VARS}
    short = {CONNECTION_VARS[k]: v for k, v in own.items() if k in CONNECTION_VARS}
    return {**short, **renamed}


def _port(value: Any) -> int | None:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535:
        return value
    return None


def _check_name(name: Any, what: str, loc: Location | None, file: str, field: str) -> None:
    if isinstance(name, str) and NAME.match(name):
        return
    message = f"invalid {what} name {name!r} (use letters, digits, '_', '.', '-')"
    if loc is None:
        raise ConfigError(message, file=file, field=field)
    raise loc.error(message, field)


def _check_cycle(
    group: str,
    parents: Mapping[str, Sequence[str]],
    path: list[str],
    edges: Mapping[tuple[str, str], tuple[Location, str]],
) -> None:
    if group in path:
        cycle = [*path[path.index(group) :], group]
        loc, field = edges[(group, path[-1])]
        raise loc.error(f"groups are each other's children: {' -> '.join(reversed(cycle))}", field)
    for parent in parents.get(group, ()):
        _check_cycle(parent, parents, [*path, group], edges)


def _ancestors(group: str, parents: Mapping[str, Sequence[str]]) -> set[str]:
    found = {group, "all"}
    for parent in parents.get(group, ()):
        found |= _ancestors(parent, parents)
    return found


def _depth(group: str, parents: Mapping[str, Sequence[str]]) -> int:
    if group == "all":
        return 0
    return 1 + max((_depth(p, parents) for p in parents.get(group, ())), default=0)


def _order(groups: Iterable[str], parents: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """Groups in precedence order: ``all`` first, then by depth, then by name (as Ansible)."""
    return tuple(sorted(set(groups), key=lambda g: (_depth(g, parents), g)))


def _merge(layers: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update(layer)
    return merged
