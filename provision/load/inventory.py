"""Inventories: Ansible's YAML and INI formats, plus dynamic sources; and where variables
come from.

::

    all:
      vars: {ansible_user: admin}
      hosts:
        sandbox1: {ansible_host: 127.0.0.1, ansible_port: 2201}
      children:
        cluster:
          hosts: {sandbox1: , "web[01:03]": }
          vars: {network: shared-network}

The INI format (``provision.load.ini``) says the same with ``[group]``, ``[group:vars]`` and
``[group:children]`` sections. In both, a host name may be a range (``web[01:03]``,
``db-[a:c]``, ``n[1:9:2]``: ``provision.load.hostrange``) and end in ``:port``. The
``group_vars/`` and ``host_vars/`` folders beside the inventory (and beside the playbook) add
variables, as Ansible's (``VarsFolder``).

A file with ``plugin: provision.aws_ec2`` (and ``cluster``, optional ``region``, ``group`` --
default ``cluster`` -- and ``vars`` for the hosts found) describes hosts found by their tags at
run time; loading only records it as a ``DynamicSource``, and its group exists, empty, until
the run adds hosts with ``Inventory.with_hosts``.

Variable precedence -- three levels, later wins:

====  ===============  =============================================================
 1    inventory        Ansible's order (``Inventory.resolve``): group ``vars`` of the
                       inventory file, ``all`` first, then its groups from the least to
                       the most specific (by depth, then name); ``group_vars/all`` beside
                       the inventory, then beside the playbook; the other ``group_vars/``
                       beside the inventory, then beside the playbook; the host's own
                       vars; ``host_vars/`` beside the inventory, then beside the playbook
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

import codecs
import fnmatch
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from provision.cluster.layout import DEFAULTS
from provision.errors import ConfigError
from provision.load.hostrange import HostPatternError, expand_host_pattern
from provision.load.ini import IniStatement, parse_ini
from provision.load.yamlsource import (
    Location,
    key_loc,
    load_file,
    load_text,
    loc_of,
    read_text_file,
    suggest,
    value_loc,
)
from provision.models import HostSpec
from provision.models.names import check_address, check_name, check_region, shown, whole_number

__all__ = [
    "DynamicSource", "Inventory", "InventoryHost", "VarsFolder", "load_inventory",
    "parse_extra_vars", "resolve_vars", "to_host_spec",
]  # fmt: skip

NAME = re.compile(r"\A[A-Za-z0-9_.-]+\Z")
YAML_EXTENSIONS = (".yml", ".yaml", ".json")
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
class VarsFolder:
    """The ``group_vars/`` and ``host_vars/`` of one folder (beside the inventory or beside the
    playbook), read as Ansible's ``host_group_vars`` reads them.

    For a group or host ``x``: the first of ``x``, ``x.yml``, ``x.yaml``, ``x.json`` that exists;
    a file, or a folder whose files (``.yml``, ``.yaml``, ``.json`` or no extension; neither
    hidden nor ending in ``~``; in subfolders too) are merged in lexical order, later winning.
    ``groups`` and ``hosts`` hold the variables found, by name.
    """

    path: Path
    groups: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    hosts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def covering(self, groups: Iterable[str], hosts: Iterable[str]) -> VarsFolder:
        """This folder with the files of these groups and hosts read too."""
        new_groups = _folder_vars(
            self.path / "group_vars", [g for g in groups if g not in self.groups]
        )
        new_hosts = _folder_vars(self.path / "host_vars", [h for h in hosts if h not in self.hosts])
        if not new_groups and not new_hosts:
            return self
        return replace(
            self, groups={**self.groups, **new_groups}, hosts={**self.hosts, **new_hosts}
        )


@dataclass(frozen=True)
class Inventory:
    """Hosts, groups (each with all its hosts, children's included) and group vars.

    ``members`` are the hosts listed in each group itself, ``parents`` and ``children`` the
    groups' edges, in the order written; ``inventory_folder`` and ``playbook_folder`` the
    ``group_vars/`` and ``host_vars/`` beside the inventory and beside the playbook.
    """

    path: Path
    hosts: Mapping[str, InventoryHost]
    groups: Mapping[str, tuple[str, ...]]
    group_vars: Mapping[str, Mapping[str, Any]]
    sources: tuple[DynamicSource, ...] = ()
    parents: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    members: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    children: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    inventory_folder: VarsFolder | None = None
    playbook_folder: VarsFolder | None = None

    @property
    def folders(self) -> tuple[VarsFolder, ...]:
        return tuple(f for f in (self.inventory_folder, self.playbook_folder) if f is not None)

    def host(self, name: str) -> InventoryHost:
        """A host by name; ``localhost`` always exists (with ``all``'s vars, in no group)."""
        if name in self.hosts:
            return self.hosts[name]
        if name == "localhost":
            own = {"ansible_connection": "local"}
            return InventoryHost("localhost", self.resolve(("all",), own, "localhost"), (), own)
        raise ConfigError(f"no host named {name!r} in the inventory", file=str(self.path))

    def resolve(
        self, chain: Sequence[str], own: Mapping[str, Any], host: str | None
    ) -> dict[str, Any]:
        """The inventory's variables (level 1) of a host in the groups ``chain`` (from ``all``
        to the most specific) whose own vars are ``own``; later wins, as Ansible's default
        precedence: the inventory's ``all`` vars, its other groups' vars, ``group_vars/all``
        beside the inventory then beside the playbook, the other ``group_vars/`` beside the
        inventory then beside the playbook, the host's own vars, ``host_vars/`` beside the
        inventory then beside the playbook."""
        groups = [g for g in chain if g != "all"]
        folders = self.folders
        layers = [self.group_vars.get("all", {}), *(self.group_vars.get(g, {}) for g in groups)]
        layers += [folder.groups.get("all", {}) for folder in folders]
        for folder in folders:
            layers += [folder.groups.get(g, {}) for g in groups]
        layers.append(own)
        if host is not None:
            layers += [folder.hosts.get(host, {}) for folder in folders]
        return _merge(layers)

    def with_folders(
        self, inventory_folder: VarsFolder | None, playbook_folder: VarsFolder | None
    ) -> Inventory:
        """A new inventory reading these ``group_vars/`` and ``host_vars/`` folders."""
        new = replace(self, inventory_folder=inventory_folder, playbook_folder=playbook_folder)
        hosts = {
            name: replace(host, vars=new.resolve(host.groups, host.host_vars, name))
            for name, host in self.hosts.items()
        }
        return replace(new, hosts=hosts)

    def with_playbook_dir(self, directory: str | Path | None) -> Inventory:
        """A new inventory reading the ``group_vars/`` and ``host_vars/`` beside a playbook
        (the same inventory when there are none, or they are the inventory's own)."""
        if directory is None:
            return self
        folder = VarsFolder(Path(directory))
        mine = self.inventory_folder
        if mine is not None and _same_dir(mine.path, folder.path):
            return self
        folder = folder.covering([*self.parents, *self.groups, "all"], [*self.hosts, "localhost"])
        if not folder.groups and not folder.hosts and self.playbook_folder is None:
            return self
        return self.with_folders(mine, folder)

    def select(self, pattern: str) -> list[InventoryHost]:
        """Hosts matching an Ansible pattern, in inventory order.

        ``all``, a group, a host, ``localhost``, shell-style wildcards (``web*``), joined by
        ``:`` or ``,`` (union); ``&x`` intersects, ``!x`` excludes, in Ansible's order
        whatever the order written (the unions, then the intersections, then the exclusions;
        only exclusions: from ``all``). An unknown name matches no host: its hosts may be
        added at run time.
        """
        terms = [t for t in re.split(r"[:,]", pattern) if t]
        plain = [t for t in terms if not t.startswith(("!", "&"))]
        chosen: list[str] = [] if plain or not terms else list(self.hosts)
        for term in plain:
            chosen += [n for n in self._term(term) if n not in chosen]
        for term in (t for t in terms if t.startswith("&")):
            names = self._term(term[1:])
            chosen = [n for n in chosen if n in names]
        for term in (t for t in terms if t.startswith("!")):
            names = self._term(term[1:])
            chosen = [n for n in chosen if n not in names]
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

    def _covering(self, groups: Iterable[str], hosts: Iterable[str]) -> Inventory:
        """This inventory with the vars files of these groups and hosts read too."""
        groups, hosts = list(groups), list(hosts)
        mine, play = self.inventory_folder, self.playbook_folder
        return replace(
            self,
            inventory_folder=mine.covering(groups, hosts) if mine else None,
            playbook_folder=play.covering(groups, hosts) if play else None,
        )

    def vars_of_group(self, group: str) -> dict[str, Any]:
        """The inventory variables a host added to ``group`` at run time gets."""
        parents = {**self.parents}
        parents.setdefault(group, () if group == "all" else ("all",))
        chain = _order(_ancestors([group], parents), _depths(parents))
        return self._covering(chain, ()).resolve(chain, {}, None)

    def with_hosts(self, new_hosts: Iterable[InventoryHost], group: str) -> Inventory:
        """A new inventory with ``new_hosts`` (their ``vars`` taken as their own) in ``group``.

        >>> inv = Inventory(Path("x"), {}, {"all": ()}, {"all": {"u": 1}})
        >>> inv.with_hosts([InventoryHost("web1", {"ansible_host": "10.0.0.5"}, ())], "cluster"
        ...               ).select("cluster")[0].vars
        {'u': 1, 'ansible_host': '10.0.0.5'}
        """
        _check_name(group, "group", None, str(self.path), "group")
        new_hosts = list(new_hosts)
        parents = dict(self.parents)
        children = {name: list(below) for name, below in self.children.items()}
        if group not in parents and group != "all":
            children.setdefault("all", []).append(group)
        parents.setdefault(group, () if group == "all" else ("all",))
        depths = _depths(parents)
        above = _ancestors([group], parents)
        base = replace(self, parents=parents)._covering(above, [h.name for h in new_hosts])
        groups = {name: list(members) for name, members in self.groups.items()}
        members = {name: list(listed) for name, listed in self.members.items()}
        hosts = dict(self.hosts)
        for new in new_hosts:
            _check_name(new.name, "host", None, str(self.path), "hosts")
            old = hosts.get(new.name)
            own = {**(old.host_vars if old else {}), **_long_names(new.vars)}
            chain = _order({*(old.groups if old else ()), *above}, depths)
            hosts[new.name] = InventoryHost(
                new.name, base.resolve(chain, own, new.name), chain, own
            )
            for name in chain:
                if new.name not in groups.setdefault(name, []):
                    groups[name].append(new.name)
            if new.name not in members.setdefault(group, []):
                members[group].append(new.name)
            if group != "ungrouped":
                for listing in (groups, members):
                    if new.name in listing.get("ungrouped", []):
                        listing["ungrouped"].remove(new.name)
        return replace(
            base, hosts=hosts, groups={g: tuple(m) for g, m in groups.items()},
            members={g: tuple(m) for g, m in members.items()},
            children={g: tuple(c) for g, c in children.items()},
        )  # fmt: skip

    def to_ansible_list(self) -> dict[str, Any]:
        """The inventory as ``ansible-inventory --list`` prints it: ``_meta.hostvars`` (each
        host's inventory variables, hosts with none left out), then each group with its own
        ``hosts`` and its ``children`` (empty keys, and groups with neither, left out; ``all``
        has no hosts)."""
        children = self.children or _children_of(self.parents)
        hostvars = {name: dict(host.vars) for name, host in self.hosts.items() if host.vars}
        result: dict[str, Any] = {"_meta": {"hostvars": hostvars}}
        for group in self.parents or self.groups:
            entry: dict[str, list[str]] = {}
            listed = self.members.get(group, ()) if self.members else self.groups.get(group, ())
            if group != "all" and listed:
                entry["hosts"] = list(listed)
            if children.get(group):
                entry["children"] = list(children[group])
            if entry:
                result[group] = entry
        return result


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
    """``-e`` items, as Ansible reads them: ``@file.yml`` (a YAML mapping in a file), a YAML or
    JSON mapping (``{"a": 1}``, typed), or ``key=value`` pairs separated by spaces, quotes
    keeping a value's spaces (``a=1 b='x y'``), each value a string; later items win.

    >>> parse_extra_vars(["a=1 b=2", "c='x y'"])
    {'a': '1', 'b': '2', 'c': 'x y'}
    """
    result: dict[str, Any] = {}
    for item in items:
        if item.startswith("@"):
            result.update(_vars_mapping(load_file(item[1:]), item[1:], "-e"))
        elif item.lstrip().startswith("{"):
            try:
                loaded = yaml.safe_load(item)
            except yaml.YAMLError as exc:
                problem = getattr(exc, "problem", None) or exc
                raise ConfigError(
                    f"invalid YAML mapping {shown(item, 60)}: {problem}", field="-e"
                ) from exc
            except RecursionError as exc:
                raise ConfigError(f"nested too deep: {shown(item, 60)}", field="-e") from exc
            result.update(_vars_mapping(loaded, None, "-e"))
        else:
            result.update(_key_values(item))
    return result


def _key_values(item: str) -> dict[str, str]:
    """``a=1 b='x y'`` -> ``{'a': '1', 'b': 'x y'}``, as Ansible's ``parse_kv`` reads it:
    values are strings, a quoted value loses its quotes, a template keeps its spaces
    (``x={{ a + b }}``). A word that is no ``key=value`` is refused here, where Ansible would
    keep it as ``_raw_params``."""
    pairs: dict[str, str] = {}
    for word in _split_args(item):
        try:
            word = _ESCAPE.sub(lambda m: codecs.decode(m.group(0), "unicode-escape"), word)
        except UnicodeDecodeError as exc:  # \N{no such name}, \U00110000
            raise ConfigError(f"bad escape in {shown(word, 60)}: {exc.reason}", field="-e") from exc
        equals = _UNESCAPED_EQUALS.search(word, 1)
        key = word[: equals.start()].strip() if equals else ""
        if not key.isidentifier():
            raise ConfigError(
                f"expected key=value, @file.yml or a mapping, got {shown(word, 60)}", field="-e"
            )
        text = word[equals.end() :].strip() if equals else ""
        quoted = len(text) > 1 and text[0] == text[-1] and text[0] in "'\"" and text[-2] != "\\"
        pairs[key] = text[1:-1] if quoted else text
    return pairs


# Ansible's _decode_escapes: \\, \', \", \n and the like, \xHH, \uHHHH, \UHHHHHHHH, \N{name}.
_ESCAPE = re.compile(
    r"\\U[0-9a-fA-F]{8}|\\u[0-9a-fA-F]{4}|\\x[0-9a-fA-F]{2}|\\N\{[^}]+\}|\\[\\'\"abfnrtv]"
)
_UNESCAPED_EQUALS = re.compile(r"(?<!\\)=")


_JINJA_OPEN = ("{{", "{%", "{#")
_JINJA_CLOSE = ("}}", "%}", "#}")


def _split_args(text: str) -> list[str]:
    """Words split at spaces outside quotes and outside Jinja blocks (Ansible's
    ``split_args``); an unclosed quote or block is refused."""
    words: list[str] = []
    current: list[str] = []
    quote, depth, i = "", 0, 0
    while i < len(text):
        pair, char = text[i : i + 2], text[i]
        escaped = i > 0 and text[i - 1] == "\\"  # Ansible: a quote after a backslash is text
        if not quote and pair in _JINJA_OPEN:
            depth, step = depth + 1, 2
        elif not quote and depth and pair in _JINJA_CLOSE:
            depth, step = depth - 1, 2
        elif char in "'\"" and not depth and (not quote or quote == char) and not escaped:
            quote, step = ("" if quote else char), 1
        elif char.isspace() and not quote and not depth:
            if current:
                words.append("".join(current))
                current = []
            i += 1
            continue
        else:
            step = 1
        current.append(text[i : i + step])
        i += step
    if quote or depth:
        raise ConfigError(f"unclosed quote or template in {shown(text, 60)}", field="-e")
    if current:
        words.append("".join(current))
    return words or [text]


def load_inventory(path: str | Path, *, playbook_dir: str | Path | None = None) -> Inventory:
    """Load an inventory: YAML (static groups and hosts, and/or a ``plugin:`` source) or INI,
    with the ``group_vars/`` and ``host_vars/`` beside it (and beside the playbook, when
    ``playbook_dir`` is given).

    The format goes by the name, as Ansible's: ``.yml``, ``.yaml`` and ``.json`` are YAML; no
    extension is YAML when it reads as a mapping, else INI; any other extension is INI.
    """
    try:
        return _load_inventory(path, playbook_dir)
    except RecursionError:  # hundreds of nested groups or mappings: refused, not a traceback
        raise ConfigError("nested too deep to be an inventory", file=str(path)) from None


def _load_inventory(path: str | Path, playbook_dir: str | Path | None) -> Inventory:
    file = str(path)
    builder = _Builder(file)
    sources: tuple[DynamicSource, ...] = ()
    ini = _ini_text(Path(path))
    if ini is not None:
        builder.ini(parse_ini(ini, file))
    else:
        data = load_file(path)
        if not isinstance(data, Mapping) or not data:
            where = loc_of(data)
            message = f"an inventory must be a mapping of groups, got {type(data).__name__}"
            raise where.error(message) if where else ConfigError(message, file=file)
        sources = (builder.source(data),) if "plugin" in data else ()
        for name, raw in data.items():
            if sources and name != "all":
                continue  # the other top-level keys of a plugin file are its options
            _check_name(name, "group", key_loc(data, name), builder.file, "")
            builder.walk(name, raw, name)
        for source in sources:
            builder.declare(str(source.options.get("group", "cluster")))
    inventory = builder.finish(Path(path), sources)
    return inventory.with_playbook_dir(playbook_dir)


def _ini_text(path: Path) -> str | None:
    """The file's text when it is an INI inventory, else ``None`` (it is YAML)."""
    suffix = path.suffix.lower()
    if suffix in YAML_EXTENSIONS:
        return None
    text = read_text_file(path)
    if suffix:
        return text
    try:
        data = load_text(text, str(path))
    except ConfigError:
        return text
    return None if isinstance(data, Mapping) and data else text


class _Builder:
    """Collects groups and hosts as the file mentions them; ``finish`` derives the rest."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.own: dict[str, dict[str, Any]] = {}  # host -> its own vars, in order of mention
        self.listed: dict[str, list[str]] = {}  # host -> the groups it is listed in
        self.members: dict[str, list[str]] = {"all": [], "ungrouped": []}
        self.parents: dict[str, list[str]] = {"all": [], "ungrouped": ["all"]}
        self.children: dict[str, list[str]] = {"all": ["ungrouped"], "ungrouped": []}
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

    def declare(self, name: str) -> None:
        self.members.setdefault(name, [])
        self.parents.setdefault(name, [])
        self.children.setdefault(name, [])

    def edge(self, parent: str, child: str, where: Location, field: str) -> None:
        if child == "all":
            raise where.error("'all' is no one's child", field)
        self.declare(parent)
        self.declare(child)
        if parent not in self.parents[child]:
            self.parents[child].append(parent)
            self.children[parent].append(child)
        self.edges.setdefault((parent, child), (where, f"{field}.{child}"))

    def walk(self, name: str, raw: Any, field: str) -> None:
        """A YAML group and, depth first, its children (with a stack: no recursion limit)."""
        stack = [(name, raw, field)]
        while stack:
            name, raw, field = stack.pop()
            self.declare(name)
            if raw is None:
                continue
            if not isinstance(raw, Mapping):
                message = "a group must be a mapping of hosts, vars, children"
                raise self.fail(raw, None, field, message)
            for key in raw:
                if key not in ("hosts", "vars", "children"):
                    hint = suggest(str(key), ("hosts", "vars", "children"))
                    raise self.fail(raw, None, f"{field}.{key}", f"unknown group key {key!r}{hint}")
            self.hosts(
                name, self.mapping(raw, "hosts", f"{field}.hosts", "hosts"), f"{field}.hosts"
            )
            variables = self.mapping(raw, "vars", f"{field}.vars", "vars")
            self.gvars.setdefault(name, {}).update(self.variables(variables, f"{field}.vars"))
            children = self.mapping(raw, "children", f"{field}.children", "children")
            below = []
            for child, child_raw in children.items():
                where = key_loc(children, child) or Location(self.file, 1, 1)
                _check_name(child, "group", where, self.file, f"{field}.children")
                self.edge(name, child, where, f"{field}.children")
                below.append((child, child_raw, f"{field}.children.{child}"))
            stack.extend(reversed(below))

    def ini(self, statements: Iterable[IniStatement]) -> None:
        for line in statements:
            if line.kind == "group":
                _check_name(line.group, "group", line.loc, self.file, f"[{line.group}]")
                self.declare(line.group)
            elif line.kind == "hosts":
                self.hosts(line.group, line.data, f"{line.group}.hosts")
            elif line.kind == "vars":
                variables = self.variables(line.data, f"{line.group}.vars")
                self.gvars.setdefault(line.group, {}).update(variables)
            else:
                field = f"{line.group}.children"
                _check_name(line.data, "group", line.loc, self.file, field)
                self.edge(line.group, line.data, line.loc, field)

    def hosts(self, group: str, hosts: Mapping[Any, Any], field: str) -> None:
        """The hosts (or host patterns) of ``group``, each with its own vars."""
        for pattern in hosts:
            where = key_loc(hosts, pattern)
            names, port = [pattern], None
            if isinstance(pattern, str) and ("[" in pattern or ":" in pattern):
                try:
                    names, port = expand_host_pattern(pattern)
                except HostPatternError as exc:
                    if where is None:
                        raise ConfigError(str(exc), file=self.file, field=field) from exc
                    raise where.error(str(exc), field) from exc
            for name in names:
                _check_name(name, "host", where, self.file, field)
            if port is not None and _port(port) is None:
                message = f"must be an integer port from 1 to 65535, got {port}"
                if where is None:
                    raise ConfigError(message, file=self.file, field=f"{field}.{pattern}")
                raise where.error(message, f"{field}.{pattern}")
            raw = self.mapping(hosts, pattern, f"{field}.{pattern}", "vars")
            own = self.variables(raw, f"{field}.{pattern}", host_entry=True)
            for name in names:
                if name not in self.own:  # as Ansible: `host:port` counts where first met
                    self.own[name] = {} if port is None else {"ansible_port": port}
                    self.listed[name] = []
                self.own[name].update(own)
                if group not in self.listed[name]:
                    self.listed[name].append(group)
                    self.members[group].append(name)

    def variables(
        self, raw: Mapping[Any, Any], field: str, *, host_entry: bool = False
    ) -> dict[str, Any]:
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
            if key == "region":
                try:
                    check_region(value, key)
                except ConfigError as exc:
                    raise self.fail(data, key, key, exc.message) from exc
        if "cluster" not in options:
            raise self.fail(data, None, "cluster", f"{plugin} needs 'cluster'")
        if "vars" in options:
            raw = self.mapping(data, "vars", "vars", "vars")
            options["vars"] = self.variables(raw, "vars", host_entry=True)
        return DynamicSource(str(plugin), options, loc_of(data))

    def finish(self, path: Path, sources: tuple[DynamicSource, ...]) -> Inventory:
        _check_cycles(self.parents, self.edges)
        for group, parents in self.parents.items():
            if group != "all" and not parents:  # as Ansible: a group no one holds is all's
                parents.append("all")
                self.children["all"].append(group)
        for host, listed in self.listed.items():  # Ansible's rules for `ungrouped`
            grouped = any(g not in ("all", "ungrouped") for g in listed)
            if grouped and "ungrouped" in listed:
                listed.remove("ungrouped")
                self.members["ungrouped"].remove(host)
            elif not grouped and "ungrouped" not in listed:
                listed.append("ungrouped")
                self.members["ungrouped"].append(host)
        depths = _depths(self.parents)
        hosts: dict[str, InventoryHost] = {}
        for host, own in self.own.items():
            chain = _order(_ancestors(self.listed[host], self.parents), depths)
            hosts[host] = InventoryHost(host, {}, chain, own)  # vars: by with_folders
        chains = {name: set(h.groups) for name, h in hosts.items()}
        groups = {g: tuple(h for h in hosts if g in chains[h]) for g in self.parents}
        folder = VarsFolder(path.parent).covering([*self.parents], [*hosts, "localhost"])
        inventory = Inventory(
            path, hosts, groups, self.gvars, sources,
            parents={g: tuple(p) for g, p in self.parents.items()},
            members={g: tuple(m) for g, m in self.members.items()},
            children={g: tuple(c) for g, c in self.children.items()},
        )  # fmt: skip
        return inventory.with_folders(folder, None)


# ---------------------------------------------------------------- helpers


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
    if name in ("ansible_host", "ansible_user"):  # given to ssh and to shells: no metacharacters
        try:
            (check_address if name == "ansible_host" else check_name)(value, name)
        except ConfigError as exc:
            return exc.message
    return None


def _long_names(own: Mapping[str, Any]) -> dict[str, Any]:
    """A host's own vars with the short connection names renamed (``port`` -> ``ansible_port``);
    the Ansible name wins when both are given."""
    renamed = {CONNECTION_VARS.get(k, k): v for k, v in own.items() if k not in CONNECTION_VARS}
    short = {CONNECTION_VARS[k]: v for k, v in own.items() if k in CONNECTION_VARS}
    return {**short, **renamed}


def _port(value: Any) -> int | None:
    number = whole_number(value)
    return number if number is not None and 1 <= number <= 65535 else None


def _check_name(name: Any, what: str, loc: Location | None, file: str, field: str) -> None:
    if isinstance(name, str) and NAME.match(name):
        return
    message = f"invalid {what} name {name!r} (use letters, digits, '_', '.', '-')"
    if loc is None:
        raise ConfigError(message, file=file, field=field)
    raise loc.error(message, field)


def _check_cycles(
    parents: Mapping[str, Sequence[str]], edges: Mapping[tuple[str, str], tuple[Location, str]]
) -> None:
    """Refuse groups that are each other's children: a depth-first walk up the parent edges
    with colours (on the path, done), so each group and edge is walked once."""
    done: set[str] = set()
    for start in parents:
        if start in done:
            continue
        path, on_path = [start], {start}
        todo = [iter(parents.get(start, ()))]
        while todo:
            parent = next(todo[-1], None)
            if parent is None:
                done.add(path[-1])
                on_path.discard(path.pop())
                todo.pop()
            elif parent in on_path:
                cycle = [*path[path.index(parent) :], parent]
                loc, field = edges[(parent, path[-1])]
                message = f"groups are each other's children: {' -> '.join(reversed(cycle))}"
                raise loc.error(message, field)
            elif parent not in done:
                path.append(parent)
                on_path.add(parent)
                todo.append(iter(parents.get(parent, ())))


def _ancestors(groups: Iterable[str], parents: Mapping[str, Sequence[str]]) -> set[str]:
    """``groups``, every group above them, and ``all``."""
    found = {"all"}
    todo = list(groups)
    while todo:
        group = todo.pop()
        if group not in found:
            found.add(group)
            todo += parents.get(group, ())
    return found | set(groups)


def _depths(parents: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Each group's depth, as Ansible's: ``all`` 0, else one more than its deepest parent (a
    group with no parent is all's child). Memoised: each group and edge is looked at once."""
    depth = {"all": 0}
    for start in parents:
        stack, on_stack = [start], {start}
        while stack:
            group = stack[-1]
            if group in depth:
                on_stack.discard(stack.pop())
                continue
            above = parents.get(group, ())
            waiting = [p for p in above if p not in depth]
            if not waiting:
                depth[group] = 1 + max((depth[p] for p in above), default=0)
                on_stack.discard(stack.pop())
                continue
            if on_stack.intersection(waiting):
                raise ConfigError(f"groups are each other's children: {group}")
            stack += waiting
            on_stack.update(waiting)
    return depth


def _order(groups: Iterable[str], depths: Mapping[str, int]) -> tuple[str, ...]:
    """Groups in precedence order: ``all`` first, then by depth, then by name (as Ansible)."""
    return tuple(sorted(set(groups), key=lambda g: (depths.get(g, 1), g)))


def _children_of(parents: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    children: dict[str, list[str]] = {}
    for group, above in parents.items():
        for parent in above:
            children.setdefault(parent, []).append(group)
    return children


def _merge(layers: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update(layer)
    return merged


# ---------------------------------------------------------------- group_vars/, host_vars/


def _same_dir(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _folder_vars(folder: Path, names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The variables of each of ``names`` that has files in ``folder``."""
    if not names or not folder.is_dir():
        return {}
    found: dict[str, dict[str, Any]] = {}
    for name in names:
        files = _entity_files(folder, name)
        if files:
            found[name] = _merge(_vars_file(path) for path in files)
    return found


def _entity_files(folder: Path, name: str) -> list[Path]:
    if name in ("", ".", "..") or "/" in name or "\\" in name:
        return []
    for extension in ("", *YAML_EXTENSIONS):
        candidate = folder / f"{name}{extension}"
        if candidate.is_dir():
            return _folder_files(candidate)
        if candidate.is_file():
            return [candidate]
    return []


def _folder_files(top: Path) -> list[Path]:
    """The vars files of a folder, subfolders' included where they sort, in lexical order; a
    folder already on the way down (a symlink loop) is not read again."""
    found: list[Path] = []
    stack = [(iter(_listing(top)), top, frozenset({top.resolve()}))]
    while stack:
        entries, folder, above = stack[-1]
        entry = next(entries, None)
        if entry is None:
            stack.pop()
            continue
        if entry.startswith(".") or entry.endswith("~"):
            continue  # hidden files and backups, as Ansible
        path, extension = folder / entry, os.path.splitext(entry)[1]
        if path.is_dir():
            real = path.resolve()
            if not extension and real not in above:
                stack.append((iter(_listing(path)), path, above | {real}))
        elif path.is_file() and (not extension or extension in YAML_EXTENSIONS):
            found.append(path)
    return found


def _listing(folder: Path) -> list[str]:
    try:
        return sorted(os.listdir(folder))
    except OSError as exc:
        raise ConfigError(f"cannot read folder: {exc}", file=str(folder)) from exc


def _vars_file(path: Path) -> dict[str, Any]:
    data = load_file(path)
    if data is None:
        return {}  # an empty file, as Ansible
    if not isinstance(data, Mapping):
        where = loc_of(data)
        message = f"a vars file must be a mapping of variables, got {type(data).__name__}"
        raise where.error(message) if where else ConfigError(message, file=str(path))
    for name, value in data.items():
        if not isinstance(name, str) or not name.isidentifier():
            message = f"invalid variable name {name!r}"
            where = key_loc(data, name)
            raise where.error(message) if where else ConfigError(message, file=str(path))
        problem = _connection_problem(name, value)
        if problem:
            where = value_loc(data, name)
            raise where.error(problem, name) if where else ConfigError(problem, file=str(path))
    return dict(data)
