"""Playbooks: Ansible's YAML format, loaded into frozen dataclasses and checked on the way.

A playbook is a list of plays; a play has ``hosts`` and ``tasks``; a task names exactly one
module, whose value is the mapping of its arguments, next to task keywords::

    - name: network
      hosts: cluster
      become: true
      vars: {network: shared-network}
      tasks:
        - name: create the network
          docker_network: {name: "{{ network }}"}
          notify: restart openresty
      handlers:
        - name: restart openresty
          compose:
            project_src: /opt/provision/openresty
            project_name: openresty
            state: restarted

>>> load_playbook("playbooks/up.yml").plays[0].tasks[0].module      # doctest: +SKIP
'ec2_cluster'

Everything wrong is a ``ConfigError`` with ``file:line:column`` and a field path such as
``plays[0].tasks[2].docker_network.driver`` (indexes count from 0).
"""

from __future__ import annotations

import dataclasses
import keyword
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.errors import ConfigError
from provision.load.templating import is_template, render
from provision.load.yamlsource import Location, YMap, key_loc, load_file, loc_of, suggest, value_loc
from provision.tasks.base import ModuleSpec, build_args

__all__ = [
    "BlockPos", "Location", "Play", "Playbook", "TaskDef", "check_task_args", "load_playbook",
]  # fmt: skip

PLAY_KEYS = ("name", "hosts", "become", "vars", "vars_files", "tasks", "handlers", "gather_facts",
             "when")  # fmt: skip
TASK_KEYWORDS = ("name", "when", "register", "notify", "tags", "ignore_errors", "retries",
                 "delay", "until", "check_mode", "changed_when", "failed_when", "loop",
                 "loop_control")  # fmt: skip
LOOP_CONTROL = ("loop_var", "label", "index_var")
# A task list's entries that bring in the tasks of another file (read at load: see README).
INCLUDES = frozenset({"import_tasks", "include_tasks"})
MAX_INCLUDE_DEPTH = 20
HANDLER_KEYWORDS = (*TASK_KEYWORDS, "listen")
BLOCK_SECTIONS = ("block", "rescue", "always")
# What a block may say besides its sections; each applies to every task in them.
BLOCK_KEYWORDS = (*BLOCK_SECTIONS, "name", "when", "tags", "ignore_errors", "check_mode")
_HOST_PATTERN = re.compile(r"\A[A-Za-z0-9_.*:!&,-]+\Z")


@dataclass(frozen=True)
class BlockPos:
    """Where a task sits in one block around it: the block (where it is written) and the
    section (``block``, ``rescue`` or ``always``)."""

    block: Location
    section: str


@dataclass(frozen=True)
class TaskDef:
    """One task (or handler). ``field_locs`` maps a keyword (``"when"``, ``"notify[1]"``,
    ``"module"``...) to where it is written, for errors found later."""

    name: str
    module: str
    args: Mapping[str, Any]
    loc: Location
    when: str | None = None
    register: str | None = None
    notify: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    ignore_errors: bool = False
    retries: int = 0
    delay: float = 5.0
    until: str | None = None
    changed_when: str | None = None
    failed_when: str | None = None
    # ``loop``: a list, or a template that gives one; each item runs the task once with the
    # item as ``loop_var`` (and its index as ``index_var``); ``label`` names it in messages.
    loop: Any = None
    loop_var: str = "item"
    index_var: str | None = None
    label: str | None = None
    # The include_tasks entry this task came from (its head task's ``loc``): the task runs only
    # where that include ran, as Ansible's dynamic include brings its tasks in only then.
    included_by: Location | None = None
    listen: tuple[str, ...] = ()
    check_mode: bool | None = None
    # The blocks around the task, innermost first: ``blocks[i + 1]`` is where the block of
    # ``blocks[i]`` sits.
    blocks: tuple[BlockPos, ...] = ()
    # Its path in the file it is written in, for errors (``plays[0].tasks[1].rescue[0]``).
    path: str = field(default="", compare=False)
    field_locs: Mapping[str, Location] = field(default_factory=dict, compare=False, repr=False)

    def loop_items(self, variables: Mapping[str, Any]) -> list[Any]:
        """The items of this task's ``loop``, rendered with ``variables``; a ``ConfigError`` at
        the loop when it does not give a list."""
        where = self.field_locs.get("loop", self.loc)
        items = self.loop
        if is_template(items):
            items = render(items, variables, loc=where, field="loop")
        if not isinstance(items, list):
            raise where.error(f"must give a list, got {type(items).__name__}", "loop")
        return items

    def item_scope(self, variables: Mapping[str, Any], index: int, item: Any) -> dict[str, Any]:
        """``variables`` with one item of the loop (as ``loop_var``) and its index."""
        return {**variables, self.loop_var: item,
                **({self.index_var: index} if self.index_var else {})}  # fmt: skip


@dataclass(frozen=True)
class Play:
    name: str
    hosts: str
    become: bool
    vars: Mapping[str, Any]
    tasks: tuple[TaskDef, ...]
    handlers: tuple[TaskDef, ...]
    gather_facts: bool
    loc: Location
    # A condition on each host's variables (not Ansible's): a host for which it is false
    # skips the whole play, e.g. ``when: layout.topology == 'swarm'``.
    when: str | None = None


@dataclass(frozen=True)
class Playbook:
    path: Path
    plays: tuple[Play, ...]


def load_playbook(path: str | Path, *, modules: Mapping[str, ModuleSpec] | None = None) -> Playbook:
    """Load and check a playbook; ``modules`` defaults to ``provision.tasks.registry()``."""
    if modules is None:
        from provision.tasks import registry

        modules = registry()
    data = load_file(path)
    if not data:
        raise ConfigError("a playbook must be a non-empty list of plays", file=str(path))
    if not isinstance(data, list):
        raise _error(
            data, None, "plays", f"a playbook must be a list of plays, got {_kind(data)}", str(path)
        )
    loader = _Loader(Path(path), modules)
    plays = tuple(loader.play(data, i, f"plays[{i}]") for i in range(len(data)))
    return Playbook(Path(path), plays)


def check_task_args(
    spec: ModuleSpec,
    args: Mapping[str, Any],
    field: str,
    fallback: Location | None,
    *,
    values: Mapping[str, Any] | None = None,
) -> None:
    """Check names and types of a task's arguments; the error points at the argument.

    ``field`` is the task's path plus the module (``plays[0].tasks[1].docker_network``).
    ``values`` are the arguments as rendered for one host (default: as written); a value
    still templated is checked once rendered.
    """
    try:
        build_args(spec, _plain(args if values is None else values), templated_ok=True)
    except ConfigError as exc:
        rest = (exc.field or "").removeprefix(f"{spec.name}.")
        head = re.match(r"[^.\[]*", rest)
        name = head.group(0) if head else rest
        if name not in spec.field_names() and name in args:
            loc = key_loc(args, name)
        elif name in args:
            loc = value_loc(args, name)
            index = re.match(r"\[(\d+)\]", rest[len(name) :])
            if index:
                loc = value_loc(args[name], int(index.group(1)))
        else:
            loc = fallback
        where = f"{field}.{rest}" if rest else field
        file = loc.file if loc else None
        raise ConfigError(
            exc.message,
            file=file,
            line=loc.line if loc else None,
            column=loc.column if loc else None,
            field=where,
        ) from exc


def _plain(value: Any) -> Any:
    """Loaded data as builtin dicts and lists, so that messages say "list", not "YList"."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, (list, tuple)):
        return "list"
    return {bool: "bool", int: "int", float: "float", str: "string"}.get(type(value), "value")


def _error(
    container: Any, key: Any, field: str, message: str, file: str, *, at_key: bool = False
) -> ConfigError:
    """An error at ``container[key]`` (its key with ``at_key``), or at the container itself."""
    loc = (
        loc_of(container)
        if key is None
        else (key_loc(container, key) if at_key else value_loc(container, key))
    )
    if loc is None:
        return ConfigError(message, file=file, field=field)
    return loc.error(message, field)


def _both(first: str | None, second: str | None) -> str | None:
    """Two conditions, both to hold."""
    if first is None or second is None:
        return first or second
    return f"({first}) and ({second})"


class _Loader:
    """Turns loaded YAML into plays; holds only what every check needs (file, modules)."""

    def __init__(
        self, path: Path, modules: Mapping[str, ModuleSpec], *, chain: tuple[Path, ...] = ()
    ) -> None:
        self.path = path
        self.file = str(path)
        self.modules = modules
        self.chain = chain  # the files that included this one, for cycles

    def where(self, raw: YMap) -> Location:
        return raw.loc or Location(self.file, 1, 1)  # only hand-built data lacks a location

    def fail(
        self, container: Any, key: Any, field: str, message: str, *, at_key: bool = False
    ) -> ConfigError:
        return _error(container, key, field, message, self.file, at_key=at_key)

    def mapping(self, raw: Any, container: Any, key: Any, field: str, what: str) -> YMap:
        if isinstance(raw, YMap):
            return raw
        if raw is None:
            empty = YMap()
            empty.loc = value_loc(container, key)
            return empty
        raise self.fail(container, key, field, f"{what} must be a mapping, got {_kind(raw)}")

    def check_keys(self, raw: YMap, allowed: Sequence[str], field: str, what: str) -> None:
        for key in raw:
            if key not in allowed:
                raise self.fail(
                    raw,
                    key,
                    f"{field}.{key}",
                    f"unknown {what} {key!r}{suggest(str(key), allowed)}",
                    at_key=True,
                )

    def typed(self, raw: YMap, key: str, field: str, types: tuple[type, ...], what: str) -> Any:
        value = raw.get(key)
        if value is None or (isinstance(value, bool) and bool not in types):
            ok = value is None
        else:
            ok = isinstance(value, types)
        if not ok:
            raise self.fail(raw, key, f"{field}.{key}", f"must be {what}, got {_kind(value)}")
        return value

    def flag(self, raw: YMap, key: str, field: str, default: bool) -> bool:
        value = self.typed(raw, key, field, (bool,), "true or false")
        return default if value is None else bool(value)

    def play(self, plays: list[Any], index: int, field: str) -> Play:
        raw = self.mapping(plays[index], plays, index, field, "a play")
        self.check_keys(raw, PLAY_KEYS, field, "play key")
        if "hosts" not in raw:
            raise self.fail(raw, None, f"{field}.hosts", "a play needs 'hosts'")
        hosts = self.typed(raw, "hosts", field, (str,), "a string (a host pattern)")
        if not hosts or not _HOST_PATTERN.match(hosts):
            raise self.fail(raw, "hosts", f"{field}.hosts", f"invalid host pattern {hosts!r}")
        handlers = self.tasks(raw, "handlers", field)
        tasks = self.tasks(raw, "tasks", field)
        self.check_notify(tasks, handlers, field)
        name = self.typed(raw, "name", field, (str,), "a string")
        return Play(
            name=name or hosts, hosts=hosts, loc=self.where(raw), vars=self.play_vars(raw, field),
            become=self.flag(raw, "become", field, False),
            gather_facts=self.flag(raw, "gather_facts", field, True),
            tasks=tasks, handlers=handlers,
            when=self.typed(raw, "when", field, (str,), "a string (an expression)"),
        )  # fmt: skip

    def play_vars(self, raw: YMap, field: str) -> YMap:
        # As in Ansible, vars_files override vars; both are the "play vars" level.
        sources = [(self.mapping(raw.get("vars"), raw, "vars", f"{field}.vars", "vars"), "vars")]
        files = self.typed(raw, "vars_files", field, (list,), "a list of file names") or []
        for i, name in enumerate(files):
            where = f"vars_files[{i}]"
            if not isinstance(name, str):
                raise self.fail(files, i, f"{field}.{where}", "must be a file name")
            if not (self.path.parent / name).is_file():
                raise self.fail(files, i, f"{field}.{where}", f"no such file: {name}")
            loaded = load_file(self.path.parent / name)
            vars_file = self.mapping(loaded, files, i, f"{field}.{where}", "a vars file")
            sources.append((vars_file, where))
        merged = YMap()
        merged.loc = raw.loc
        for source, where in sources:
            for key, value in source.items():
                if not isinstance(key, str) or not _identifier(key):
                    raise self.fail(
                        source,
                        key,
                        f"{field}.{where}",
                        f"invalid variable name {key!r}",
                        at_key=True,
                    )
                merged[key] = value
                merged.key_locs[key] = source.key_locs[key]
                merged.value_locs[key] = source.value_locs[key]
        return merged

    def tasks(self, raw: YMap, key: str, field: str) -> tuple[TaskDef, ...]:
        items = self.typed(raw, key, field, (list,), "a list of tasks") or []
        return self.task_list(items, f"{field}.{key}", handler=key == "handlers")

    def task_list(self, items: Any, field: str, *, handler: bool) -> tuple[TaskDef, ...]:
        out: list[TaskDef] = []
        for i, item in enumerate(items):
            if isinstance(item, YMap) and set(BLOCK_SECTIONS) & set(item):
                out.extend(self.block(item, f"{field}[{i}]", handler=handler))
            elif isinstance(item, YMap) and not handler and INCLUDES & set(item):
                out.extend(self.included(item, f"{field}[{i}]"))
            else:
                out.append(self.task(item, items, i, f"{field}[{i}]", handler=handler))
        return tuple(out)

    def included(self, raw: YMap, field: str) -> tuple[TaskDef, ...]:
        """``import_tasks``/``include_tasks``: the tasks of another file (beside this one), read
        and checked now; the include's ``when`` and ``tags`` apply to each of them."""
        key = next(k for k in raw if k in INCLUDES)
        self.check_keys(raw, (key, "name", "when", "tags"), field, f"keyword of {key}")
        target = raw[key]
        if isinstance(target, YMap):
            self.check_keys(target, ("file",), f"{field}.{key}", f"argument of {key}")
            target = target.get("file")
        if not isinstance(target, str) or not target.strip():
            raise self.fail(raw, key, f"{field}.{key}", "must name a file of tasks")
        if "{{" in target or "{%" in target:
            raise self.fail(raw, key, f"{field}.{key}", "the file name must be written out "
                            "(tasks are read and checked before the run)")  # fmt: skip
        path = (self.path.parent / target).resolve()
        if path in self.chain or len(self.chain) >= MAX_INCLUDE_DEPTH:
            raise self.fail(raw, key, f"{field}.{key}", f"{target} includes itself, or "
                            f"includes are nested past {MAX_INCLUDE_DEPTH}")  # fmt: skip
        if not path.is_file():
            raise self.fail(raw, key, f"{field}.{key}", f"no file {target} beside {self.file}")
        data = load_file(path) or []
        if not isinstance(data, list):
            raise ConfigError(f"a file of tasks must be a list, got {_kind(data)}", file=str(path))
        inner = _Loader(path, self.modules, chain=(*self.chain, self.path.resolve()))
        when = self.condition(raw, "when", field)
        tags: dict[str, Location] = {}
        extra = self.strings(raw, "tags", field, tags)
        tasks = inner.task_list(data, "tasks", handler=False)
        tagged = [
            dataclasses.replace(t, tags=(*extra, *(x for x in t.tags if x not in extra)))
            for t in tasks
        ]
        if key == "import_tasks":  # static: its when applies to each task
            return tuple(dataclasses.replace(t, when=_both(when, t.when)) for t in tagged)
        # include_tasks: one task of its own (ok, or skipped by its when), then its tasks,
        # which run only where it ran
        head = TaskDef(
            name=f"include_tasks {target}", module="include_tasks", args={"file": target},
            loc=self.where(raw), when=when, tags=extra,
        )  # fmt: skip
        return (head, *(dataclasses.replace(t, included_by=head.loc) for t in tagged))

    def block(self, raw: YMap, field: str, *, handler: bool) -> tuple[TaskDef, ...]:
        """``block`` with ``rescue`` and ``always``: their tasks, in that order, each knowing
        its place (``TaskDef.blocks``); the block's ``when``, ``tags``, ``ignore_errors`` and
        ``check_mode`` apply to each of them, as in Ansible (a task's own setting wins)."""
        if handler:
            raise self.fail(raw, None, field, "a block among handlers is not supported; "
                            "write the handler's tasks one by one")  # fmt: skip
        if "block" not in raw:
            key = next(k for k in BLOCK_SECTIONS if k in raw)
            raise self.fail(raw, key, f"{field}.{key}", f"{key!r} belongs to a block: "
                            "write it beside 'block:'", at_key=True)  # fmt: skip
        self.check_keys(raw, BLOCK_KEYWORDS, field, "block keyword")
        self.typed(raw, "name", field, (str,), "a string")
        when = self.condition(raw, "when", field)
        locs: dict[str, Location] = {}
        tags = self.strings(raw, "tags", field, locs)
        inherited: dict[str, Any] = {}
        for key in ("ignore_errors", "check_mode"):
            value = self.typed(raw, key, field, (bool,), "true or false")
            if value is not None:
                inherited[key] = (value, value_loc(raw, key) or self.where(raw))
        out: list[TaskDef] = []
        for section in BLOCK_SECTIONS:
            items = self.typed(raw, section, field, (list,), "a list of tasks") or []
            here = BlockPos(self.where(raw), section)
            for task in self.task_list(items, f"{field}.{section}", handler=False):
                own = {k: v for k, (v, _) in inherited.items() if k not in task.field_locs}
                out.append(dataclasses.replace(
                    task, **own, when=_both(when, task.when),
                    tags=(*tags, *(t for t in task.tags if t not in tags)),
                    blocks=(*task.blocks, here) if task.blocks else (here,),
                    field_locs={**{k: loc for k, (_, loc) in inherited.items()},
                                **task.field_locs},
                ))  # fmt: skip
        return tuple(out)

    def task(self, raw: Any, items: Any, index: int, field: str, *, handler: bool) -> TaskDef:
        raw = self.mapping(raw, items, index, field, "a task")
        keywords = HANDLER_KEYWORDS if handler else TASK_KEYWORDS
        module = self.pick_module(raw, keywords, field)
        spec = self.modules[module]
        if isinstance(raw[module], str) and spec.text_arg:  # `shell: echo hi`, as in Ansible
            args = YMap({spec.text_arg: raw[module]})
            args.loc = value_loc(raw, module)
            if args.loc is not None:
                args.value_locs[spec.text_arg] = args.loc
        else:
            args = self.mapping(
                raw[module], raw, module, f"{field}.{module}", f"the arguments of {module!r}"
            )
        check_task_args(spec, args, f"{field}.{module}", key_loc(raw, module))
        values, locs = self.keywords(raw, field)
        module_loc = key_loc(raw, module)
        if module_loc:
            locs["module"] = module_loc
        return TaskDef(
            name=values.pop("name") or module,
            module=module,
            args=args,
            loc=self.where(raw),
            field_locs=locs,
            path=field,
            **values,
        )

    def keywords(self, raw: YMap, field: str) -> tuple[dict[str, Any], dict[str, Location]]:
        locs = {k: loc for k in raw if k in HANDLER_KEYWORDS and (loc := value_loc(raw, k))}
        values: dict[str, Any] = {"name": self.typed(raw, "name", field, (str,), "a string")}
        values.update(
            {key: self.condition(raw, key, field)
             for key in ("when", "until", "changed_when", "failed_when")}
        )  # fmt: skip
        register = self.typed(raw, "register", field, (str,), "a string (a variable name)")
        if register is not None and not _identifier(register):
            raise self.fail(
                raw, "register", f"{field}.register", f"{register!r} is not a valid variable name"
            )
        values["register"] = register
        for key in ("notify", "tags", "listen"):
            values[key] = self.strings(raw, key, field, locs)
        values["ignore_errors"] = self.flag(raw, "ignore_errors", field, False)
        values["check_mode"] = self.typed(raw, "check_mode", field, (bool,), "true or false")
        retries = self.typed(raw, "retries", field, (int,), "a whole number")
        delay = self.typed(raw, "delay", field, (int, float), "a number of seconds")
        for key, number, limit in (("retries", retries, 1000), ("delay", delay, 3600)):
            # nan and inf pass a `< 0` test: they would make a wait that never ends
            if number is not None and not (0 <= number <= limit):
                raise self.fail(
                    raw, key, f"{field}.{key}", f"must be from 0 to {limit}, got {number}"
                )
        values.update(self.loop(raw, field))
        # As in Ansible: a task with `until` retries 3 times unless told otherwise.
        values["retries"] = retries if retries is not None else (3 if values["until"] else 0)
        values["delay"] = 5.0 if delay is None else float(delay)
        return values, locs

    def loop(self, raw: YMap, field: str) -> dict[str, Any]:
        """``loop`` (a list, or a string that renders to one) and ``loop_control``."""
        if "loop" not in raw:
            if "loop_control" in raw:
                raise self.fail(raw, "loop_control", f"{field}.loop_control",
                                "loop_control needs a loop")  # fmt: skip
            return {}
        loop = self.typed(raw, "loop", field, (list, str), "a list or a template giving one")
        if loop is None:
            raise self.fail(raw, "loop", f"{field}.loop", "must be a list, got nothing")
        control = self.mapping(raw.get("loop_control"), raw, "loop_control",
                               f"{field}.loop_control", "loop_control")  # fmt: skip
        self.check_keys(control, LOOP_CONTROL, f"{field}.loop_control", "loop_control key")
        names: dict[str, Any] = {"loop": _plain(loop)}
        for key in ("loop_var", "index_var"):
            name = self.typed(control, key, f"{field}.loop_control", (str,), "a variable name")
            if name is not None and not _identifier(name):
                raise self.fail(control, key, f"{field}.loop_control.{key}",
                                f"{name!r} is not a valid variable name")  # fmt: skip
            if name is not None:
                names[key] = name
        label = self.typed(control, "label", f"{field}.loop_control", (str,), "a string")
        if label is not None:
            names["label"] = label
        return names

    def condition(self, raw: YMap, key: str, field: str) -> str | None:
        value = raw.get(key)
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, list) and value and all(isinstance(v, (str, bool)) for v in value):
            # Ansible: a list means all of them
            return " and ".join(f"({str(v).lower() if isinstance(v, bool) else v})" for v in value)
        return self.typed(raw, key, field, (str,), "an expression (a string)")  # type: ignore[no-any-return]

    def strings(
        self, raw: YMap, key: str, field: str, locs: dict[str, Location]
    ) -> tuple[str, ...]:
        value = raw.get(key)
        items = [value] if isinstance(value, str) else value
        if value is None:
            return ()
        if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
            raise self.fail(
                raw,
                key,
                f"{field}.{key}",
                f"must be a string or a list of strings, got {_kind(value)}",
            )
        for i in range(len(items)):
            loc = value_loc(value, i) if isinstance(value, list) else value_loc(raw, key)
            if loc:
                locs[f"{key}[{i}]"] = loc
        return tuple(items)

    def pick_module(self, raw: YMap, keywords: Sequence[str], field: str) -> str:
        candidates = [key for key in raw if key not in keywords]
        known = [key for key in candidates if key in self.modules]
        if len(known) > 1:
            raise self.fail(
                raw,
                known[1],
                field,
                f"a task names exactly one module, found {known[0]!r} and {known[1]!r}",
                at_key=True,
            )
        for key in candidates:
            if key in known:
                continue
            if known or suggest(str(key), keywords):
                message = f"unknown task keyword {key!r}{suggest(str(key), keywords)}"
            else:
                message = f"unknown module {key!r}{suggest(str(key), self.modules)}"
            raise self.fail(raw, key, f"{field}.{key}", message, at_key=True)
        if not known:
            raise self.fail(raw, None, field, "a task must name a module")
        return str(known[0])

    def check_notify(
        self, tasks: Sequence[TaskDef], handlers: Sequence[TaskDef], field: str
    ) -> None:
        topics = {h.name for h in handlers} | {t for h in handlers for t in h.listen}
        for key, group in (("tasks", tasks), ("handlers", handlers)):
            for index, task in enumerate(group):
                for i, name in enumerate(task.notify):
                    if name in topics:
                        continue
                    where = f"{field}.{key}[{index}].notify"
                    message = f"no handler named {name!r}{suggest(name, topics)}"
                    loc = task.field_locs.get(f"notify[{i}]") or task.loc
                    raise loc.error(message, where)


def _identifier(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name)
