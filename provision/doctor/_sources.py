"""What the doctor reads: text files with comments blanked, and compose projects with lines.

Compose files are read as YAML node trees (not plain data) so that every finding can name
the line it comes from. Compose files in one folder are one project, as the playbooks run
them (a base file plus strategy overrides).
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from provision.errors import ConfigError

__all__ = ["EnvEntry", "Project", "Service", "Source", "host_of", "load_projects"]


@dataclass(frozen=True)
class Source:
    """A text file with its comments blanked; line numbers are kept (1-based)."""

    path: Path
    lines: tuple[str, ...]

    @classmethod
    def read(cls, path: Path, marker: str) -> Source:
        raw = path.read_text(errors="replace").splitlines()
        return cls(path, tuple(_strip_comments(raw, marker)))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def numbered(self) -> Iterator[tuple[int, str]]:
        return enumerate(self.lines, start=1)


def _strip_comments(lines: list[str], marker: str) -> Iterator[str]:
    in_block = False  # inside a Lua --[[ ... ]] comment
    for line in lines:
        if in_block:
            end = line.find("]]")
            in_block = end < 0
            yield "" if in_block else " " * (end + 2) + line[end + 2 :]
            continue
        cut = _comment_start(line, marker)
        if cut is None:
            yield line
            continue
        in_block = marker == "--" and line.startswith("--[[", cut) and "]]" not in line[cut:]
        yield line[:cut]


def _comment_start(line: str, marker: str) -> int | None:
    quote = ""
    for index, char in enumerate(line):
        if quote:
            quote = "" if char == quote and line[index - 1] != "\\" else quote
        elif char in "\"'":
            quote = char
        elif line.startswith(marker, index):
            return index
    return None


@dataclass(frozen=True)
class EnvEntry:
    key: str
    value: str
    file: Path
    line: int


@dataclass
class Service:
    """One compose service, merged over the project's files."""

    project: str
    name: str
    folder: Path
    container_name: str = ""
    network_mode: str = ""
    networks: set[str] = field(default_factory=set)
    env: list[EnvEntry] = field(default_factory=list)
    depends: list[tuple[str, Path, int]] = field(default_factory=list)
    extra_hosts: set[str] = field(default_factory=set)
    mounts: list[Path] = field(default_factory=list)
    command: str = ""  # the command's words, joined (for redis-server flags)
    ports: list[tuple[str, int]] = field(default_factory=list)  # published, with their line
    line: int = 0  # where the service is defined
    file: Path | None = None

    @property
    def has_host_gateway(self) -> bool:
        return "host.docker.internal:host-gateway" in self.extra_hosts

    def reads(self, path: Path) -> bool:
        """Does this service see ``path``: a bind mount of it, or its project's .env file?"""
        target = path.resolve()
        if target == (self.folder / ".env").resolve():
            return True
        return any(target == m or m in target.parents for m in self.mounts)


@dataclass
class Project:
    name: str
    folder: Path
    dotenv: dict[str, str] = field(default_factory=dict)
    networks: dict[str, str] = field(default_factory=dict)  # compose key -> Docker name
    services: dict[str, Service] = field(default_factory=dict)


def host_of(value: str) -> str:
    """The host part of an address-like value: ``redis://:pw@redis:6379/0`` -> ``redis``."""
    value = re.sub(r"^\w+://", "", value.strip())
    value = value.rsplit("@", 1)[-1]
    return re.split(r"[:/]", value, maxsplit=1)[0]


_VAR = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}|\$(\w+)")


def _expand(value: str, dotenv: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        return dotenv.get(name) or match.group(2) or ""

    return _VAR.sub(one, value)


def load_projects(files: list[Path]) -> list[Project]:
    """Compose projects among ``files`` (YAML with a top-level ``services``), one per folder.

    Bad input is a ``ConfigError`` naming the file (and line): YAML that does not parse, a
    merge key (``<<``) that merges no mapping, nesting too deep to read, a ``.env`` that is
    not UTF-8 text."""
    trees: list[tuple[Path, yaml.MappingNode]] = []
    for path in files:
        with _read_as_yaml(path):
            node = yaml.compose(path.read_text(errors="replace"), Loader=yaml.SafeLoader)
            if isinstance(node, yaml.MappingNode) and "services" in _map(node):
                trees.append((path, node))
    projects: dict[Path, Project] = {}
    for path, node in trees:
        folder = path.parent
        if folder not in projects:
            projects[folder] = Project(folder.name, folder, _read_dotenv(folder / ".env"))
        with _read_as_yaml(path):
            _add_networks(projects[folder], node)
    for path, node in trees:
        with _read_as_yaml(path):
            _add_services(projects[path.parent], path, node)
    return list(projects.values())


@contextlib.contextmanager
def _read_as_yaml(path: Path) -> Iterator[None]:
    """YAML errors (and nesting too deep for the parser) become a ``ConfigError`` at ``path``."""
    try:
        yield
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(
            f"not valid YAML: {problem}",
            file=str(path),
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from exc
    except RecursionError as exc:
        raise ConfigError("nested too deep to be a compose file", file=str(path)) from exc


def _read_dotenv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"not UTF-8 text (byte {exc.start}), as Compose reads it", file=str(path)
        ) from exc
    # As Compose reads it (python-dotenv's rules: quotes, `export`, comments, ${VAR}), not a
    # split on "=": REDIS_HOST="127.0.0.1" is 127.0.0.1, not a quoted name.
    from dotenv import dotenv_values

    values = dotenv_values(stream=io.StringIO(text), interpolate=True)
    return {key: value for key, value in values.items() if value is not None}


def _map(node: yaml.Node | None) -> dict[str, yaml.Node]:
    if not isinstance(node, yaml.MappingNode):
        return {}
    if any(k.tag == "tag:yaml.org,2002:merge" for k, _ in node.value):
        yaml.SafeLoader("").flatten_mapping(node)  # `<<: *anchor`, as compose reads it
    return {str(k.value): v for k, v in node.value if isinstance(k, yaml.ScalarNode)}


def _scalar(node: yaml.Node | None) -> str:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else ""


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _names(node: yaml.Node | None) -> list[tuple[str, yaml.Node]]:
    """A compose list-or-mapping (networks, depends_on) as (name, node) pairs."""
    if isinstance(node, yaml.SequenceNode):
        return [(_scalar(item), item) for item in node.value]
    if isinstance(node, yaml.MappingNode):
        return [(str(k.value), k) for k, _ in node.value]
    return []


def _add_networks(project: Project, node: yaml.MappingNode) -> None:
    for key, spec in _map(_map(node).get("networks")).items():
        fields = _map(spec)
        name = _expand(_scalar(fields.get("name")), project.dotenv)
        if _scalar(fields.get("external")).lower() == "true" or _map(fields.get("external")):
            project.networks[key] = name or _scalar(_map(fields.get("external")).get("name")) or key
        else:
            project.networks[key] = name or f"{project.name}_{key}"


def _add_services(project: Project, path: Path, node: yaml.MappingNode) -> None:
    for name, spec in _map(_map(node).get("services")).items():
        service = project.services.setdefault(name, Service(project.name, name, path.parent))
        fields = _map(spec)
        service.container_name = _scalar(fields.get("container_name")) or service.container_name
        service.network_mode = _scalar(fields.get("network_mode")) or service.network_mode
        for key, _ in _names(fields.get("networks")):
            service.networks.add(project.networks.get(key, f"{project.name}_{key}"))
        service.env.extend(_env(fields.get("environment"), path, project.dotenv))
        service.depends.extend((n, path, _line(k)) for n, k in _names(fields.get("depends_on")))
        service.extra_hosts.update(_extra_hosts(fields.get("extra_hosts")))
        service.mounts.extend(_mounts(fields.get("volumes"), path.parent, project.dotenv))
        command = fields.get("command")
        if isinstance(command, yaml.SequenceNode):
            service.command = " ".join(_scalar(item) for item in command.value)
        elif command is not None:
            service.command = _scalar(command)
        ports = fields.get("ports")
        if isinstance(ports, yaml.SequenceNode):
            service.ports.extend((_scalar(item), _line(item)) for item in ports.value)
        where = _key_node(node, name)
        if service.file is None:
            service.file, service.line = path, _line(where) if where is not None else 1
    for service in project.services.values():
        if not service.networks and not service.network_mode:
            service.networks.add(project.networks.get("default", f"{project.name}_default"))


def _env(node: yaml.Node | None, path: Path, dotenv: dict[str, str]) -> Iterator[EnvEntry]:
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            key, _, value = _scalar(item).partition("=")
            yield EnvEntry(key, _expand(value, dotenv), path, _line(item))
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield EnvEntry(str(key.value), _expand(_scalar(value), dotenv), path, _line(key))


def _extra_hosts(node: yaml.Node | None) -> Iterator[str]:
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield re.sub(r"^([^:=]+)[:=]", r"\1:", _scalar(item).replace(" ", ""), count=1)
    else:
        yield from (f"{k}:{_scalar(v)}" for k, v in _map(node).items())


def _mounts(node: yaml.Node | None, folder: Path, dotenv: dict[str, str]) -> Iterator[Path]:
    items = node.value if isinstance(node, yaml.SequenceNode) else []
    for item in items:
        source = _scalar(_map(item).get("source")) if _map(item) else _scalar(item).split(":")[0]
        source = _expand(source, dotenv)
        if source.startswith((".", "/")):
            yield (folder / source).resolve()


def _key_node(node: yaml.MappingNode, name: str) -> yaml.Node | None:
    """The key node of service ``name`` (for its line)."""
    services = _map(node).get("services")
    if isinstance(services, yaml.MappingNode):
        for key, _ in services.value:
            if _scalar(key) == name:
                found: yaml.Node = key
                return found
    return None
