"""Ansible's INI inventory format, read into statements that ``inventory`` builds groups from.

::

    solo ansible_host=10.0.0.9       # before any section: an ungrouped host

    [web]
    web[01:03] ansible_user=debian   # a host line: a host pattern, then key=value vars
    [web:vars]
    http_port=8080                   # one key=value a line
    [prod:children]
    web                              # a group, declared by its own [web] or [web:children]

As in Ansible, every value (on a host line or in a ``:vars`` section) is read as a Python
literal when it is one (``8080`` an int, ``True`` a bool, ``[1, 2]`` a list, ``'x'`` a string)
and is a string otherwise; host lines are split like a shell's words (quotes keep spaces).
Mappings come back as ``YMap`` with the location of every key and value, so the inventory's
checks point at ``file:line:column`` as they do for YAML.

>>> [(s.kind, s.group) for s in parse_ini("h1\\n[web]\\nw1 a=1\\n[web:vars]\\nb=x\\n", "i")]
[('hosts', 'ungrouped'), ('group', 'web'), ('hosts', 'web'), ('group', 'web'), ('vars', 'web')]
"""

from __future__ import annotations

import ast
import re
import shlex
import warnings
from dataclasses import dataclass
from typing import Any

from provision.load.yamlsource import Location, YMap

__all__ = ["IniStatement", "parse_ini", "parse_value"]

_SECTION = re.compile(r"\A\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?\Z")
_GROUP_NAME = re.compile(r"\A([^:\]\s]+)\s*(?:#.*)?\Z")
_KINDS = ("hosts", "vars", "children")


@dataclass(frozen=True)
class IniStatement:
    """One thing a line says.

    ``group``: a section header names ``group``; ``hosts``: ``data`` maps one host pattern to
    its vars; ``vars``: ``data`` maps one variable to its value; ``child``: ``data`` is a group
    name, a child of ``group``.
    """

    kind: str
    group: str
    data: Any
    loc: Location


def parse_ini(text: str, file: str) -> list[IniStatement]:
    """The statements of an INI inventory, in order; syntax errors are ``ConfigError``."""
    statements: list[IniStatement] = []
    group, kind = "ungrouped", "hosts"
    declared = {"all", "ungrouped"}
    # A group named as a child or given :vars must be declared somewhere by [g] or
    # [g:children]; the first such mention of each group, to point at when it is not.
    mentioned: dict[str, tuple[Location, str]] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        loc = Location(file, number, len(raw) - len(raw.lstrip()) + 1)
        section = _SECTION.match(line)
        if section:
            group, kind = section.group(1), section.group(2) or "hosts"
            if kind not in _KINDS:
                raise loc.error(
                    f"section [{group}:{kind}] has an unknown type {kind!r} "
                    "(use [group], [group:vars] or [group:children])"
                )
            if kind == "vars":
                mentioned.setdefault(
                    group, (loc, f"[{group}:vars] is for group {group!r}, which no [{group}] "
                                 f"or [{group}:children] section declares")
                )  # fmt: skip
            else:
                declared.add(group)
            statements.append(IniStatement("group", group, None, loc))
        elif line.startswith("["):
            raise loc.error(f"invalid section {line!r} (no spaces; [group], [group:vars] or "
                            "[group:children])")  # fmt: skip
        elif kind == "hosts":
            statements.append(IniStatement("hosts", group, _host_line(raw, loc), loc))
        elif kind == "vars":
            statements.append(IniStatement("vars", group, _vars_line(raw, loc), loc))
        else:
            match = _GROUP_NAME.match(line)
            if not match:
                raise loc.error(f"expected a group name, got {line!r}", f"{group}.children")
            child = match.group(1)
            mentioned.setdefault(
                child, (loc, f"[{group}:children] names group {child!r}, which no [{child}] "
                             f"or [{child}:children] section declares")
            )  # fmt: skip
            statements.append(IniStatement("child", group, child, loc))
    for name, (loc, message) in mentioned.items():
        if name not in declared:
            raise loc.error(message)
    return statements


def _host_line(raw: str, loc: Location) -> YMap:
    try:
        tokens = shlex.split(raw, comments=True)
    except ValueError as exc:
        raise loc.error(f"cannot split the host line: {exc}") from exc
    hosts, variables = YMap(), YMap()
    pattern, *assignments = tokens
    hosts[pattern] = variables
    hosts.loc = variables.loc = loc
    at = raw.find(pattern)
    hosts.key_locs[pattern] = hosts.value_locs[pattern] = _at(loc, raw, at)
    for token in assignments:
        key, sep, text = token.partition("=")
        found = raw.find(token, at)
        here = _at(loc, raw, found)
        if not sep:
            raise here.error(f"expected key=value after the host, got {token!r}", pattern)
        variables[key] = parse_value(text)
        variables.key_locs[key] = here
        variables.value_locs[key] = _at(loc, raw, found + len(key) + 1 if found >= 0 else -1)
        at = found if found >= 0 else at
    return hosts


def _vars_line(raw: str, loc: Location) -> YMap:
    key, sep, text = raw.strip().partition("=")
    if not sep:
        raise loc.error(f"expected key=value, got {raw.strip()!r}")
    key = key.strip()
    variables = YMap({key: parse_value(text.strip())})
    variables.loc = variables.key_locs[key] = loc
    variables.value_locs[key] = _at(loc, raw, raw.find("=") + 1 + len(text) - len(text.lstrip()))
    return variables


def _at(loc: Location, raw: str, index: int) -> Location:
    return Location(loc.file, loc.line, index + 1) if index >= 0 else loc


def parse_value(text: str) -> Any:
    """An INI value as Ansible reads it: a Python literal when it is one, else the string.

    >>> [parse_value(v) for v in ("8080", "True", "true", "[1, (2, 3)]", "'01'", "a b # c")]
    [8080, True, 'true', [1, [2, 3]], '01', 'a b # c']
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text
    return _plain(value)


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {_plain(k) if isinstance(k, bytes) else k: _plain(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if value is Ellipsis or isinstance(value, complex):
        return str(value) if value is not Ellipsis else "..."
    return value
