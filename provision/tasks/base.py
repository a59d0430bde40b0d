"""What every module shares: its context, its outcome, and how its arguments are checked.

A module is "look, then act": it reads a fact through ``ctx``, returns ``ctx.ok()`` when the
host is already as asked, and otherwise runs its commands at once with ``ctx.run`` (which, in
check mode, records the command instead of running it) and returns ``ctx.changed(...)``.

What a module reads is declared once, as pyinfra declares facts: its ``reads`` (name ->
read-only argv, for given arguments and variables). The runner sends every task's declared
reads to a host in one round trip at the start of a play; ``apply`` gets them with
``ctx.looked(reads(args, ctx.vars))``, answered from that batch while nothing has changed.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

from provision.connection.base import Remote
from provision.errors import ConfigError
from provision.models import CheckResult, HostSpec, Result
from provision.models.names import truth, whole_number

__all__ = [
    "Looked",
    "ModuleSpec",
    "Outcome",
    "Reads",
    "TaskContext",
    "build_args",
    "check_arg_names",
]


@dataclass(frozen=True)
class Outcome:
    """What a module reports: changed or not, a message, a diff, data for ``register``."""

    changed: bool
    msg: str = ""
    diff: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    checks: tuple[CheckResult, ...] = ()
    failed: bool = False
    skipped: bool = False  # the module chose not to run (e.g. verify in check mode)


Progress = Callable[[str, int, int], None]
#: A module's declared reads: a name -> the read-only command (argv) ``apply`` looks at.
Reads = Mapping[str, Sequence[str]]


def _no_progress(label: str, done: int, total: int) -> None:
    return None


@dataclass
class TaskContext:
    """Everything a module sees of the run, for one host and one task."""

    conn: Remote
    check: bool = False
    diff: bool = False
    become: bool = False
    vars: Mapping[str, Any] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    progress: Progress = _no_progress
    executed: list[str] = field(default_factory=list)
    # Results of read commands fetched ahead in one round trip (see ``Runner._prefetch``),
    # keyed by (sudo, argv). Valid only while the host is as it was: any change clears it.
    reads: dict[tuple[bool, tuple[str, ...]], Result] = field(default_factory=dict)
    # The connection of another host of the inventory, by name (the runner's, shared): for
    # the few modules that span hosts (a swarm join reads its token on the manager).
    peers: Callable[[str], Remote] | None = None
    # Renders a template with this task's variables (the runner's templating: ``template``).
    render: Callable[[str], str] | None = None
    # Evaluates a bare expression with this task's variables, as ``when:`` does (``assert``).
    evaluate: Callable[[str], Any] | None = None

    @property
    def host(self) -> HostSpec:
        return self.conn.host

    def read(self, argv: Sequence[str], *, sudo: bool | None = None) -> Result:
        """Run a read-only command (a fact): it runs in check mode too; never raises on exit."""
        as_root = self.become if sudo is None else sudo
        cached = self.reads.get((as_root, tuple(argv)))
        if cached is not None:
            return cached
        return self.conn.run(argv, sudo=as_root, warn=True)

    def read_sh(self, script: str, *args: str, sudo: bool | None = None) -> Result:
        return self.read(["sh", "-c", script, "sh", *args], sudo=sudo)

    def looked(self, reads: Reads) -> Looked:
        """A module's declared reads (see ``ModuleSpec.reads``), each read when asked for by
        name: from the play's batch while nothing has changed, else on the host."""
        return Looked(self, reads)

    def peer(self, name: str) -> Remote:
        """The connection to host ``name`` of the inventory (``ConfigError`` if none)."""
        if name == self.host.name:
            return self.conn
        if self.peers is None:
            raise ConfigError(f"host {name!r} cannot be reached from this run", field="peer")
        return self.peers(name)

    def changing(self) -> None:
        """The host is about to change: what was read ahead is no longer true."""
        self.reads.clear()

    def run(
        self,
        argv: Sequence[str],
        *,
        sudo: bool | None = None,
        stdin: bytes | None = None,
        timeout: float | None = None,
        warn: bool = False,
    ) -> Result | None:
        """Run a command that changes the host, or only record it in check mode; a non-zero
        exit raises ``CommandError`` unless ``warn``."""
        self.executed.append(" ".join(argv))
        if self.check:
            return None
        self.changing()
        return self.conn.run(
            argv, sudo=self.become if sudo is None else sudo, stdin=stdin, timeout=timeout,
            warn=warn,
        )  # fmt: skip

    def ok(self, msg: str = "", **data: Any) -> Outcome:
        return Outcome(False, msg, data=data)

    def changed(self, msg: str, *, diff: str = "", **data: Any) -> Outcome:
        return Outcome(True, msg, diff=diff, data=data)


class Looked(Mapping[str, Result]):
    """A module's declared reads by name, each read (``TaskContext.read``) when looked up."""

    def __init__(self, ctx: TaskContext, reads: Reads) -> None:
        self._ctx, self._reads = ctx, reads

    def __getitem__(self, name: str) -> Result:
        return self._ctx.read(self._reads[name])

    def __iter__(self) -> typing.Iterator[str]:
        return iter(self._reads)

    def __len__(self) -> int:
        return len(self._reads)


A = TypeVar("A")
# A decimal number as text ("1.5", "-3", "2e3"): what a float argument takes from a template.
_DECIMAL = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


@dataclass(frozen=True)
class ModuleSpec:
    """A module: its name, its arguments (a dataclass) and the function that applies it."""

    name: str
    args: type[Any]
    apply: Callable[[TaskContext, Any], Outcome]
    # What ``apply`` reads, declared once (see the module docstring): for these arguments and
    # variables, each read by name; the runner fetches them ahead in one round trip.
    reads: Callable[[Any, Mapping[str, Any]], Reads] | None = None
    # Checks the controller's own files the arguments name (a ``copy``/``template`` ``src``),
    # given the variables (``playbook_dir``): run at load, so a missing source fails before
    # the first task, not after earlier tasks changed the host.
    sources: Callable[[Any, Mapping[str, Any]], None] | None = None
    # A module whose arguments are free-form names (``set_fact: {a: 1}``): maps them to its
    # dataclass's fields (``{"facts": {"a": 1}}``), before any check.
    free_form: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None
    # The variables a task of this module defines for the tasks after it (``set_fact``'s
    # names), from its arguments as written: validation then knows them, as ``register``.
    defines: Callable[[Mapping[str, Any]], set[str]] | None = None
    # A module that may be given one string instead of a mapping (``shell: echo hi``): the
    # argument the string is.
    text_arg: str | None = None
    # A module whose commands print a secret (``secret`` reads the Redis password from a peer
    # to copy it): their output is never shown, whatever the verbosity.
    secret_output: bool = False

    def look(self, args: Any, variables: Mapping[str, Any]) -> list[list[str]]:
        """The commands of ``reads`` for these arguments, as the runner sends them."""
        return [list(argv) for argv in self.reads(args, variables).values()] if self.reads else []

    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self.args))

    def required(self) -> tuple[str, ...]:
        return tuple(
            f.name
            for f in dataclasses.fields(self.args)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        )


def check_arg_names(spec: ModuleSpec, raw: Mapping[str, Any]) -> None:
    """The part of argument checking that holds before templating: names, required ones."""
    raw = spec.free_form(raw) if spec.free_form else raw
    known = spec.field_names()
    for name in raw:
        if name not in known:
            raise ConfigError(
                f"unknown argument {name!r} for module {spec.name!r} (known: {', '.join(known)})",
                field=name,
            )
    for name in spec.required():
        if name not in raw:
            raise ConfigError(
                f"missing required argument {name!r} for module {spec.name!r}", field=name
            )


def build_args(spec: ModuleSpec, raw: Mapping[str, Any], *, templated_ok: bool = False) -> Any:
    """Check ``raw`` against the module's dataclass and build it.

    With ``templated_ok`` (load time), a string holding ``{{`` passes any type check: it is
    only known once rendered, when this is called again without the flag.
    """
    check_arg_names(spec, raw)
    raw = spec.free_form(raw) if spec.free_form else raw
    hints = get_type_hints(spec.args)
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if templated_ok and _templated(value):
            continue
        values[name] = _coerce(hints[name], value, f"{spec.name}.{name}")
    if len(values) < len(raw):
        return None  # some values are only known at run time; checked again then
    return spec.args(**values)


def _templated(value: Any) -> bool:
    if isinstance(value, str):
        return "{{" in value
    if isinstance(value, Mapping):
        return any(_templated(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_templated(v) for v in value)
    return False


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = get_origin(hint)
    if hint is Any:
        return value
    if origin is Literal:
        choices = get_args(hint)
        if value not in choices:
            raise ConfigError(
                f"must be one of {', '.join(map(str, choices))}, got {value!r}", field=where
            )
        return value
    if origin in (typing.Union, types.UnionType):
        errors: list[str] = []
        for option in get_args(hint):
            if option is type(None) and value is None:
                return None
            try:
                return _coerce(option, value, where)
            except ConfigError as exc:
                errors.append(exc.message)
        raise ConfigError("; ".join(errors), field=where)
    if origin in (tuple, list) or hint in (tuple, list):
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"must be a list, got {type(value).__name__}", field=where)
        item = (get_args(hint) or (Any,))[0]
        return tuple(_coerce(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (dict, Mapping) or hint is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"must be a mapping, got {type(value).__name__}", field=where)
        return dict(value)
    return _scalar(hint, value, where)


def _scalar(hint: Any, value: Any, where: str) -> Any:
    if hint is bool:
        flag = truth(value)
        if flag is not None:
            return flag
    elif hint is int:
        number = whole_number(value)
        if number is not None:
            return number
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
            return float(value)  # text, as a template or -e gives it
    elif hint is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    elif isinstance(hint, type) and isinstance(value, hint):
        return value
    name = getattr(hint, "__name__", str(hint))
    raise ConfigError(f"must be {name}, got {type(value).__name__} {value!r}", field=where)
