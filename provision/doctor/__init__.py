"""Find the traps of an OpenResty + Redis layout in config files, before any host is touched.

``diagnose`` reads nginx configs (``*.conf``), Lua (``*.lua``), compose files (YAML with a
top-level ``services:``) and ``.env`` files, walking folders, and reports each trap with its
file and line. Compose files in one folder form one project (base file plus overrides), named
after the folder, as the playbooks run them.

>>> for finding in diagnose([Path("playbooks/files")]):  # doctest: +SKIP
...     print(format_finding(finding))
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from provision.doctor import _sources as dc
from provision.errors import ConfigError
from provision.models.names import is_ip, is_loopback

__all__ = [
    "CLUSTER_NO_ANNOUNCE",
    "CLUSTER_SPLIT_NETWORKS",
    "CODES",
    "HOST_DOCKER_INTERNAL",
    "LOOPBACK_REDIS",
    "LUA_NO_REDIRECT",
    "LUA_NO_RESOLVER",
    "SPLIT_NETWORKS",
    "STATIC_PROXY_PASS",
    "Finding",
    "diagnose",
    "format_finding",
]

LOOPBACK_REDIS = "loopback-redis"
LUA_NO_RESOLVER = "lua-no-resolver"
STATIC_PROXY_PASS = "proxy-pass-static-host"
SPLIT_NETWORKS = "split-networks"
HOST_DOCKER_INTERNAL = "host-docker-internal"
CLUSTER_NO_ANNOUNCE = "cluster-no-announce"
LUA_NO_REDIRECT = "lua-cluster-no-redirect"
CLUSTER_SPLIT_NETWORKS = "cluster-split-networks"
CODES = (
    LOOPBACK_REDIS, LUA_NO_RESOLVER, STATIC_PROXY_PASS, SPLIT_NETWORKS, HOST_DOCKER_INTERNAL,
    CLUSTER_NO_ANNOUNCE, LUA_NO_REDIRECT, CLUSTER_SPLIT_NETWORKS,
)  # fmt: skip

_HINTS = {
    LOOPBACK_REDIS: "inside a container 127.0.0.1 is the container itself; use the service "
    "name (redis) on a shared network",
    LUA_NO_RESOLVER: "Lua cosockets ignore /etc/hosts and resolv.conf: add "
    "`resolver 127.0.0.11 valid=10s ipv6=off;` to the http block",
    STATIC_PROXY_PASS: "nginx resolves that name once at start and keeps a stale address after "
    "a restart: proxy_pass http://$upstream with a resolver, or `server NAME resolve`",
    SPLIT_NETWORKS: "put both services on one external network (e.g. shared-network) so Docker's "
    "DNS resolves one from the other",
    HOST_DOCKER_INTERNAL: "on Linux that name exists only with "
    '`extra_hosts: ["host.docker.internal:host-gateway"]` on the service',
    CLUSTER_NO_ANNOUNCE: "a cluster node announces its container address, which a client "
    "outside the network (a published port, a tunnel) cannot reach when MOVED sends it there: "
    "set `cluster-announce-hostname NAME` and `cluster-preferred-endpoint-type hostname` (or "
    "cluster-announce-ip/port to an address the clients reach)",
    LUA_NO_REDIRECT: "in a Redis Cluster a key lives on one node: a client that connects to one "
    "address must follow `MOVED`/`ASK` replies and refresh its view with CLUSTER SLOTS",
    CLUSTER_SPLIT_NETWORKS: "the nodes gossip and fail over on the cluster bus (port + 10000): "
    "put every node on one network",
}


@dataclass(frozen=True)
class Finding:
    """One trap, where it is, and how to get out of it."""

    file: Path
    line: int
    code: str
    message: str
    hint: str


def format_finding(finding: Finding) -> str:
    """``file:line: code: message`` and the hint on a second, indented line."""
    return (
        f"{finding.file}:{finding.line}: {finding.code}: {finding.message}\n"
        f"    hint: {finding.hint}"
    )


def diagnose(paths: Sequence[Path]) -> list[Finding]:
    """Every trap found in ``paths`` (files, or folders walked), sorted by file and line."""
    files = sorted(set(_walk(paths)))
    nginx = [dc.Source.read(p, "#") for p in files if p.suffix == ".conf"]
    lua = [dc.Source.read(p, "--") for p in files if p.suffix == ".lua"]
    envs = [dc.Source.read(p, "#") for p in files if p.name == ".env"]
    projects = dc.load_projects([p for p in files if p.suffix in (".yml", ".yaml")])
    found: set[Finding] = set()
    found.update(_lua_findings(nginx, lua, projects))
    found.update(_nginx_findings(nginx))
    found.update(_compose_findings(projects, envs))
    found.update(_hdi_text_findings([*nginx, *lua, *envs], projects))
    found.update(_cluster_findings(nginx, lua, projects))
    return sorted(found, key=lambda f: (str(f.file), f.line, f.code))


#: The largest file the doctor reads (compose files, configs and Lua are far smaller).
MAX_FILE_BYTES = 10 * 1024 * 1024


def _walk(paths: Sequence[Path]) -> Iterator[Path]:
    for path in paths:
        found: Iterator[Path]
        if path.is_dir():
            found = (p for p in path.rglob("*") if p.is_file() and ".git" not in p.parts)
        elif path.is_file():
            found = iter([path])
        else:  # a device, a FIFO, a socket, or nothing there: "no problems" would be a lie
            what = "does not exist" if not path.exists() else "is not a file or a folder"
            raise ConfigError(f"{path} {what}", field="PATH")
        for file in found:
            if file.stat().st_size > MAX_FILE_BYTES:
                raise ConfigError(f"{file} is larger than {MAX_FILE_BYTES >> 20} MB", field="PATH")
            yield file


def _finding(src: Path, line: int, code: str, message: str) -> Finding:
    return Finding(src, line, code, message, _HINTS[code])


# -- Lua (files, and inline *_by_lua_block code inside nginx configs) --------------------------
_CONNECT = re.compile(r"""[:.]connect\s*\(\s*(?:(["'])([^"']*)\1|([A-Za-z_][\w.]*))""")
_REQUIRE = re.compile(r"""require\s*\(?\s*["']([\w.]+)["']""")
_LUA_FILE = re.compile(r"_by_lua_file\s+\S*?([\w.-]+)\.lua")
_STRING = re.compile(r"""(["'])([^"']+)\1""")
_GETENV = re.compile(r"""getenv\s*\(\s*(["'])[^"']*\1\s*\)""")


def _connect_hosts(src: dc.Source) -> Iterator[tuple[int, str, int]]:
    """(connect line, host literal, line of that literal) for each resolvable connect call."""
    for number, text in src.numbered():
        for match in _CONNECT.finditer(text):
            if match.group(2) is not None:
                yield number, match.group(2), number
                continue
            assigned = _assignment(src, match.group(3).split(".")[-1], number)
            if assigned is not None:
                yield number, assigned[0], assigned[1]


def _assignment(src: dc.Source, name: str, before: int) -> tuple[str, int] | None:
    """The last string literal assigned to ``name`` above line ``before`` (a default value)."""
    pattern = re.compile(rf"\b{re.escape(name)}\s*=[^=](.*)")
    for number, text in reversed(list(src.numbered())[:before]):
        match = pattern.search(text)
        if match:
            literals = _STRING.findall(_GETENV.sub("", match.group(1)))
            return (literals[-1][1], number) if literals else None
    return None


def _lua_findings(
    nginx: list[dc.Source], lua: list[dc.Source], projects: list[dc.Project]
) -> Iterator[Finding]:
    loaders = _loaders(nginx, lua)
    for src in [*lua, *nginx]:
        for line, host, host_line in _connect_hosts(src):
            if is_loopback(host):
                yield _finding(
                    src.path,
                    host_line,
                    LOOPBACK_REDIS,
                    f"Lua connects to {host} from inside a container",
                )
            elif not is_ip(host) and not host.startswith("unix:"):
                missing = _without_resolver(src, loaders, nginx)
                if missing:
                    yield _finding(
                        src.path,
                        line,
                        LUA_NO_RESOLVER,
                        f"Lua connects to {host!r} by name but {missing} has no resolver directive",
                    )


def _loaders(nginx: list[dc.Source], lua: list[dc.Source]) -> dict[Path, list[dc.Source]]:
    """Which nginx configs load each Lua file, directly or through other modules' require."""
    requires = {src.path.stem: set(_REQUIRE.findall(src.text)) for src in lua}
    loaded: dict[Path, list[dc.Source]] = {src.path: [] for src in lua}
    for conf in nginx:
        todo = set(_REQUIRE.findall(conf.text)) | set(_LUA_FILE.findall(conf.text))
        seen: set[str] = set()
        while todo:
            module = todo.pop()
            seen.add(module)
            todo |= requires.get(module.split(".")[-1], set()) - seen
        for src in lua:
            if src.path.stem in {m.split(".")[-1] for m in seen}:
                loaded[src.path].append(conf)
    return loaded


def _without_resolver(
    src: dc.Source, loaders: dict[Path, list[dc.Source]], nginx: list[dc.Source]
) -> str:
    """Name the nginx config that loads ``src`` without a resolver, or "" when all is well."""
    confs = loaders.get(src.path, [src]) or nginx
    if not confs:
        return ""  # no nginx config in view: nothing to judge against
    for conf in confs:
        if not _has_resolver(conf, nginx):
            return str(conf.path)
    return ""


_RESOLVER = re.compile(r"^\s*resolver\s+\S")
_INCLUDE = re.compile(r"^\s*include\s+([^;]+);")


def _has_resolver(conf: dc.Source, nginx: list[dc.Source]) -> bool:
    if any(_RESOLVER.match(text) for _, text in conf.numbered()):
        return True
    patterns = [
        m.group(1).strip().rsplit("/", 1)[-1]
        for _, t in conf.numbered()
        if (m := _INCLUDE.match(t))
    ]
    return any(
        other is not conf and other.path.match(p) and _has_resolver(other, [])
        for other in nginx
        for p in patterns
    )


# -- nginx directives ----------------------------------------------------------------------
_PROXY_PASS = re.compile(r"(?:^|[;{\s])proxy_pass\s+\w+://([^/:;\s]+)")
_UPSTREAM = re.compile(r"^\s*upstream\s+([\w.-]+)\s*\{")
_SERVER = re.compile(r"^\s*server\s+([^\s:;]+)[^;]*;")
_LOOPBACK_ADDR = re.compile(r"\b(127(?:\.\d{1,3}){3}|localhost)\b")
_NOT_REDIS = re.compile(r"^\s*(listen|allow|deny|set_real_ip_from|server_name)\b")


def _nginx_findings(nginx: list[dc.Source]) -> Iterator[Finding]:
    upstreams = {
        m.group(1) for src in nginx for _, t in src.numbered() if (m := _UPSTREAM.match(t))
    }
    for src in nginx:
        upstream = ""
        for number, text in src.numbered():
            if match := _UPSTREAM.match(text):
                upstream = match.group(1)
            elif upstream and text.strip().startswith("}"):
                upstream = ""
            yield from _nginx_line(src.path, number, text, upstream, upstreams)


def _nginx_line(
    path: Path, number: int, text: str, upstream: str, upstreams: set[str]
) -> Iterator[Finding]:
    loop = _LOOPBACK_ADDR.search(text)
    if (
        loop
        and not _NOT_REDIS.match(text)
        and not _CONNECT.search(text)
        and (":6379" in text or "redis" in text.lower())
    ):
        yield _finding(
            path,
            number,
            LOOPBACK_REDIS,
            f"Redis address {loop.group(1)} in an nginx config that runs in a container",
        )
    proxy = _PROXY_PASS.search(text)
    if proxy and "$" not in proxy.group(1) and proxy.group(1) not in upstreams:
        host = proxy.group(1)
        if not is_ip(host) and host != "localhost":
            yield _finding(
                path, number, STATIC_PROXY_PASS, f"proxy_pass to the fixed host name {host!r}"
            )
    server = _SERVER.match(text) if upstream else None
    if (
        server
        and not is_ip(server.group(1))
        and server.group(1) != "localhost"
        and (" resolve" not in text)
    ):
        yield _finding(
            path,
            number,
            STATIC_PROXY_PASS,
            f"upstream {upstream!r} names the host {server.group(1)!r} without `resolve`",
        )


# -- compose projects and .env files -------------------------------------------------------
def _compose_findings(projects: list[dc.Project], envs: list[dc.Source]) -> Iterator[Finding]:
    services = [s for p in projects for s in p.services.values()]
    for service in services:
        if service.network_mode:
            continue  # host or container network mode: loopback may be right, DNS is moot
        for env in service.env:
            host = dc.host_of(env.value)
            if is_loopback(host) and _redisish(env.key, env.value):
                yield _finding(
                    env.file,
                    env.line,
                    LOOPBACK_REDIS,
                    f"{env.key}={env.value} points a container at itself",
                )
            elif host == "host.docker.internal" and not service.has_host_gateway:
                yield _finding(
                    env.file,
                    env.line,
                    HOST_DOCKER_INTERNAL,
                    f"service {service.name!r} uses host.docker.internal",
                )
            else:
                yield from _split(service, host, env.file, env.line, services)
        for target, file, line in service.depends:
            yield from _split(service, target, file, line, services)
    for src in envs:
        for number, text in src.numbered():
            key, _, value = text.strip().partition("=")
            if is_loopback(dc.host_of(value.strip())) and _redisish(key, value):
                yield _finding(
                    src.path,
                    number,
                    LOOPBACK_REDIS,
                    f"{key}={value.strip()} points a container at itself",
                )


def _redisish(key: str, value: str) -> bool:
    return "REDIS" in key.upper() or ":6379" in value


def _split(
    service: dc.Service, target: str, file: Path, line: int, services: Iterable[dc.Service]
) -> Iterator[Finding]:
    peers = [s for s in services if target in (s.name, s.container_name) and s is not service]
    if not peers or service.network_mode or any(p.network_mode for p in peers):
        return
    if not any(service.networks & peer.networks for peer in peers):
        where = ", ".join(f"{p.project}: {sorted(p.networks)}" for p in peers)
        yield _finding(
            file,
            line,
            SPLIT_NETWORKS,
            f"{service.project}/{service.name} needs {target!r} but shares no network "
            f"with it ({service.project}: {sorted(service.networks)}; {where})",
        )


def _hdi_text_findings(sources: list[dc.Source], projects: list[dc.Project]) -> Iterator[Finding]:
    """host.docker.internal in Lua/nginx/.env: the services that mount (or read) it need the
    extra_hosts entry; with no such service in view, any service having it will do."""
    services = [s for p in projects for s in p.services.values()]
    for src in sources:
        users = [s for s in services if s.reads(src.path)]
        ok = (
            all(s.has_host_gateway for s in users)
            if users
            else any(s.has_host_gateway for s in services)
        )
        if ok:
            continue
        for number, text in src.numbered():
            if "host.docker.internal" in text:
                yield _finding(
                    src.path, number, HOST_DOCKER_INTERNAL, "host.docker.internal is used here"
                )


# -- Redis Cluster in Docker ----------------------------------------------------------------
_CLUSTER_ON = re.compile(r"cluster-enabled\s+[\"']?yes")
_ANNOUNCE = re.compile(r"cluster-announce-(hostname|ip)\b")
_REDIRECT = re.compile(r"\bMOVED\b")


def _cluster_conf(service: dc.Service, confs: Sequence[dc.Source]) -> tuple[bool, bool]:
    """(cluster enabled, an announce setting) from the command and the confs it mounts."""
    texts = [service.command] + [c.text for c in confs if service.reads(c.path)]
    return (any(_CLUSTER_ON.search(t) for t in texts), any(_ANNOUNCE.search(t) for t in texts))


def _cluster_findings(
    confs: Sequence[dc.Source], lua: Sequence[dc.Source], projects: Sequence[dc.Project]
) -> Iterator[Finding]:
    services = [s for p in projects for s in p.services.values()]
    nodes = []
    for service in services:
        enabled, announced = _cluster_conf(service, confs)
        if not enabled:
            continue
        nodes.append(service)
        if service.ports and not announced:
            text, line = service.ports[0]
            yield _finding(
                service.file or service.folder,
                line,
                CLUSTER_NO_ANNOUNCE,
                f"cluster node {service.name!r} publishes {text} but announces no hostname "
                "or address",
            )
    if not nodes:
        return
    shared = set.intersection(*(n.networks for n in nodes))
    if not shared and len(nodes) > 1:
        first = nodes[0]
        where = ", ".join(f"{n.name}: {sorted(n.networks)}" for n in nodes)
        yield _finding(first.file or first.folder, first.line, CLUSTER_SPLIT_NETWORKS,
                       f"the cluster's nodes share no network ({where})")  # fmt: skip
    if any(_REDIRECT.search(src.text) for src in lua):
        return
    for src in lua:
        for number, text in src.numbered():
            if _CONNECT.search(text):
                yield _finding(src.path, number, LUA_NO_REDIRECT,
                               "connects to one Redis node of a cluster and never handles "
                               "MOVED")  # fmt: skip
                break
