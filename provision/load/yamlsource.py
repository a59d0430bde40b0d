"""Load YAML and remember where every key and value came from.

Mappings and sequences come back as ``YMap`` (a ``dict``) and ``YList`` (a ``list``) that also
carry their own ``loc`` and the location of each key and item; scalars stay plain Python values
(``str``, ``int``, ``bool``, ``None``...), so loaded data is usable as-is. Errors -- bad syntax,
a duplicate key -- are ``ConfigError`` naming ``file:line:column``.

>>> data = load_text("a: 1\\nb: [x, y]\\n", "demo.yml")
>>> data["b"], str(value_loc(data, "b")), str(key_loc(data, "b"))
(['x', 'y'], 'demo.yml:2:4', 'demo.yml:2:1')
>>> str(value_loc(data["b"], 1))
'demo.yml:2:8'
"""

from __future__ import annotations

import difflib
import stat
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from provision.errors import ConfigError

__all__ = [
    "Location",
    "YList",
    "YMap",
    "key_loc",
    "load_file",
    "load_text",
    "loc_of",
    "read_text_file",
    "suggest",
    "value_loc",
]


@dataclass(frozen=True)
class Location:
    """A place in a file; ``line`` and ``column`` count from 1."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    def error(self, message: str, field: str | None = None) -> ConfigError:
        """A ``ConfigError`` at this place (the caller raises it)."""
        return ConfigError(message, file=self.file, line=self.line, column=self.column, field=field)


class YMap(dict[Any, Any]):
    """A ``dict`` from YAML that knows where it, each key and each value started."""

    loc: Location | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_locs: dict[Any, Location] = {}
        self.value_locs: dict[Any, Location] = {}


class YList(list[Any]):
    """A ``list`` from YAML that knows where it and each item started."""

    loc: Location | None = None

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.item_locs: list[Location] = []


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when one of ``choices`` is close to ``word``, else ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def loc_of(value: Any) -> Location | None:
    """Where a loaded mapping or list started (``None`` for scalars and hand-built data)."""
    return getattr(value, "loc", None) if isinstance(value, (YMap, YList)) else None


def key_loc(container: Any, key: Any) -> Location | None:
    """Where ``key`` of a loaded mapping is written, else where the mapping is."""
    if isinstance(container, YMap) and key in container.key_locs:
        return container.key_locs[key]
    return loc_of(container)


def value_loc(container: Any, key: Any) -> Location | None:
    """Where the value of ``container[key]`` starts (a mapping key or a list index)."""
    if isinstance(container, YMap) and key in container.value_locs:
        return container.value_locs[key]
    items = container.item_locs if isinstance(container, YList) else []
    if isinstance(key, int) and 0 <= key < len(items):
        return items[key]
    return loc_of(container)


_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[valid-type,misc]
    """SafeLoader (libyaml when present) building ``YMap``/``YList`` with locations."""

    source_file = "<string>"

    def _loc(self, node: yaml.Node) -> Location:
        mark = node.start_mark
        return Location(self.source_file, mark.line + 1, mark.column + 1)


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> YMap:
    # Keys written in this mapping may override keys merged in with `<<: *anchor`; only two
    # written keys with the same name are a duplicate.
    own = {id(key_node) for key_node, _ in node.value}
    loader.flatten_mapping(node)
    result = YMap()
    result.loc = loader._loc(node)
    written: set[Any] = set()
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        where = loader._loc(key_node)
        if not isinstance(key, Hashable):
            raise where.error("a mapping key must be a scalar")
        if id(key_node) in own:
            if key in written:
                first = result.key_locs[key]
                raise where.error(f"duplicate key {key!r} (first defined at line {first.line})")
            written.add(key)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_locs[key] = where
        result.value_locs[key] = loader._loc(value_node)
    return result


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> YList:
    result = YList(loader.construct_object(child, deep=True) for child in node.value)
    result.loc = loader._loc(node)
    result.item_locs = [loader._loc(child) for child in node.value]
    return result


def _construct_int(loader: _Loader, node: yaml.ScalarNode) -> Any:
    """YAML's int, refusing one too long to be a count or a port (Python refuses to parse
    one of more than 4300 digits at all, with a traceback)."""
    digits = sum(c.isdigit() for c in str(node.value))
    if digits > MAX_DIGITS:
        raise loader._loc(node).error(f"a number of {digits} digits is too long (at most "
                                      f"{MAX_DIGITS})")  # fmt: skip
    return yaml.SafeLoader.construct_yaml_int(loader, node)


#: The longest whole number a file may hold: Python's own limit on parsing one (Ansible reads
#: big numbers, ``12345678901234567890``, as numbers too).
MAX_DIGITS = 4300

_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


#: limits of what a playbook, inventory or vars file may be: a larger file, or one whose aliases
#: expand to more values than this (a "billion laughs" alias bomb), is refused, not walked
MAX_FILE_BYTES = 4 << 20
MAX_VALUES = 200_000
_TOO_DEEP = "nested too deep to read"


def load_text(text: str, file: str = "<string>") -> Any:
    """Parse one YAML document; ``file`` is the name errors and locations use."""
    loader = _Loader(text)
    loader.source_file = file
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}, set()) > MAX_VALUES:
            raise ConfigError(
                f"the document expands to more than {MAX_VALUES} values through its aliases "
                "(an alias bomb?)",
                file=file,
            )
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        if "maximum nesting depth" in str(exc.problem):  # PyYAML 6.0.4 and later's own limit
            raise ConfigError(_TOO_DEEP, file=file) from exc
        raise _translate(exc, file) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=file) from exc
    except RecursionError as exc:  # the parser and the constructor recurse per level
        raise ConfigError(_TOO_DEEP, file=file) from exc
    finally:
        loader.dispose()


def _expanded_size(node: yaml.Node, sizes: dict[int, int], active: set[int]) -> int:
    """How many values ``node`` stands for once every alias is expanded; each node is counted
    once (memoised by identity), so the walk is linear in the document, not in its expansion."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    if id(node) in active:  # a recursive alias (`&a [*a]`): infinite
        return MAX_VALUES + 1
    active.add(id(node))
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(child, sizes, active) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            size += _expanded_size(key, sizes, active) + _expanded_size(value, sizes, active)
    active.discard(id(node))
    sizes[id(node)] = min(size, MAX_VALUES + 1)
    return sizes[id(node)]


def read_text_file(path: str | Path) -> str:
    """A config file's text; an unreadable file is a ``ConfigError``, and so is anything but a
    regular file (a FIFO would block, ``/dev/zero`` never ends) or a file larger than
    ``MAX_FILE_BYTES``."""
    file = Path(path)
    try:
        if not stat.S_ISREG(file.stat().st_mode):
            raise ConfigError("not a regular file", file=str(path))
        with file.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise ConfigError(f"larger than {MAX_FILE_BYTES >> 20} MB", file=str(path))
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read file: {exc}", file=str(path)) from exc


def load_file(path: str | Path) -> Any:
    """Read (as ``read_text_file``) and parse a YAML file."""
    return load_text(read_text_file(path), str(path))


def _translate(exc: yaml.MarkedYAMLError, file: str) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    message = exc.problem or "invalid YAML"
    if exc.context:
        message = f"{message} ({exc.context})"
    if mark is None:
        return ConfigError(f"invalid YAML: {message}", file=file)
    return ConfigError(
        f"invalid YAML: {message}", file=file, line=mark.line + 1, column=mark.column + 1
    )
