"""The route table in Redis, written from Python through a tunnel (no Redis port is opened).

Schema (read by playbooks/files/openresty/lua/router.lua):

- hash ``routes``: path prefix (``/api/echo``) -> service name (``echo``)
- list ``service:<name>:endpoints``: ``host:port`` entries, round robin in this order

The tunnel goes to the Redis container's address on the shared network, as seen from the host
(SSH direct-tcpip, or a local TCP proxy for ``LocalConnection``); that works for every
strategy, since Redis stays on the shared network in all of them.

>>> with RouteTable(conn, Layout()) as table:  # doctest: +SKIP
...     table.add_route("/api/echo", "echo", ["echo-a:80", "echo-b:80"])
...     table.list_routes()["/api/echo"].endpoints
('echo-a:80', 'echo-b:80')
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import redis

from provision.cluster.layout import Layout
from provision.cluster.lookup import container_id, reachable_ip, redis_password
from provision.connection.base import Remote
from provision.errors import ConfigError, RouteError

__all__ = [
    "Route",
    "RouteTable",
    "validate",
    "validate_endpoint",
    "validate_prefix",
]

ROUTES_KEY = "routes"
# Matched whole (``fullmatch``): the table is newline-separated for the router, so a trailing
# newline would make an empty prefix, which matches every path.
# A prefix: "/" then URI path characters (RFC 3986 pchar), printable ASCII only.
_PREFIX = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*")
_SERVICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_HOST = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)


@dataclass(frozen=True)
class Route:
    prefix: str
    service: str
    endpoints: tuple[str, ...]


def endpoints_key(service: str) -> str:
    return f"service:{service}:endpoints"


def validate_prefix(prefix: str) -> str:
    if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix):
        raise ConfigError(
            "route prefix must start with / and hold only URI path characters "
            f"(no spaces, no control characters): {prefix!r}",
            field="prefix",
        )
    if "/../" in prefix + "/" or "/./" in prefix + "/" or "//" in prefix:
        raise ConfigError(
            f"route prefix must be a normalised path (no '.', '..' or '//' segments): {prefix!r}",
            field="prefix",
        )
    return prefix


def validate_endpoint(endpoint: str, *, allow_local: bool = False) -> str:
    """``host:port``: a DNS name or IPv4 address, a port from 1 to 65535. Loopback and
    link-local addresses (169.254.169.254 is the instance metadata service) are refused
    unless ``allow_local``: the router would forward requests there from the public port."""
    host, sep, port = endpoint.rpartition(":") if isinstance(endpoint, str) else ("", "", "")
    bad_host = len(host) > 253 or not _HOST.fullmatch(host)
    if not sep or bad_host or not port.isascii() or not port.isdigit():
        raise ConfigError(f"endpoint must be host:port, got {endpoint!r}", field="endpoints")
    if not 1 <= int(port) <= 65535:
        raise ConfigError(
            f"endpoint port must be from 1 to 65535, got {endpoint!r}", field="endpoints"
        )
    if _NUMERIC.fullmatch(host) and not _dotted_quad(host):
        # A resolver (inet_aton) reads 127.1 as 127.0.0.1 and 2852039166 as 169.254.169.254:
        # a name made of numbers is an address, and only its plain four-part form is taken,
        # so that the checks below see the address the router would reach.
        raise ConfigError(
            f"endpoint {endpoint!r}: write an IPv4 address as four numbers from 0 to 255 "
            "(a.b.c.d), or use a DNS name",
            field="endpoints",
        )
    if not allow_local and _local(host):
        raise ConfigError(
            f"endpoint {endpoint!r} is a loopback or link-local address; the "
            "router would forward requests to itself or to the instance metadata "
            "service",
            field="endpoints",
        )
    return endpoint


_NUMERIC = re.compile(r"(?i)[0-9.]+|0x[0-9a-f.x]*")


def _dotted_quad(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)  # strict: four parts, no leading zeros, each 0-255
    except ValueError:
        return False
    return True


def _local(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_link_local or address.is_unspecified


def validate(
    prefix: str, service: str, endpoints: Sequence[str], *, allow_local: bool = False
) -> None:
    """Refuse values the router cannot read back or should not be sent (its table is tab-
    and newline-separated; see ``playbooks/files/openresty/lua/store.lua``)."""
    validate_prefix(prefix)
    if not isinstance(service, str) or not _SERVICE.fullmatch(service):
        raise ConfigError(
            f"bad service name {service!r}: letters, digits, '_', '.', '-'", field="service"
        )
    for endpoint in endpoints:
        validate_endpoint(endpoint, allow_local=allow_local)


class RouteTable:
    """The route table of one cluster, over one tunnel opened on ``__enter__``."""

    def __init__(self, conn: Remote, config: Layout) -> None:
        self.conn = conn
        self.config = config
        self._stack = contextlib.ExitStack()
        self._redis: Any = None  # redis.Redis, or redis.cluster.RedisCluster in cluster mode
        self._addresses: dict[str, str] = {}
        self.missing_nodes: tuple[str, ...] = ()  # cluster nodes with no running container

    def __enter__(self) -> RouteTable:
        try:
            self._open()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._redis is not None:
            self._redis.close()
            self._redis = None
        self._stack.close()

    def _open(self) -> None:
        password = redis_password(self.conn, self.config)
        client: Any
        if self.config.cluster:
            client = self._cluster_client(password)
        else:
            local = self._tunnel("redis")
            client = redis.Redis(host="127.0.0.1", port=local, password=password,
                                 socket_timeout=5, socket_connect_timeout=5,
                                 decode_responses=True)  # fmt: skip
        self._redis = client
        self._call("PING", lambda r: r.ping())

    def _tunnel(self, service: str) -> int:
        """A local port forwarded to ``service``'s container on the shared network."""
        cid = container_id(self.conn, self.config, "redis", service)
        address = reachable_ip(self.conn, self.config, cid) if cid else ""
        if not address:
            raise RouteError(
                f"{self.conn.host.name}: no {service} container of project "
                f"{self.config.redis_project!r} on {self.config.network!r}"
            )
        self._addresses[service] = address
        return int(
            self._stack.enter_context(self.conn.forward_local(address, self.config.redis_port))
        )

    def _cluster_client(self, password: str) -> Any:
        """redis-py's ``RedisCluster`` through one tunnel per node: the nodes announce their
        service names (``redis-3:6379``), which ``address_remap`` maps to the local end of that
        node's tunnel, so the controller never needs a container address (nor the network)."""
        from redis.cluster import RedisCluster

        port = self.config.redis_port
        remap: dict[tuple[str, int], tuple[str, int]] = {}
        missing: list[str] = []
        for service in self.config.redis_services:
            try:
                local = ("127.0.0.1", self._tunnel(service))
            except RouteError:
                missing.append(service)  # stopped or gone: the others serve its slots
                continue
            remap[(service, port)] = local
            remap[(self._addresses[service], port)] = local  # a node not yet named in gossip
        if not remap:
            raise RouteError(
                f"{self.conn.host.name}: no node of the Redis Cluster (project "
                f"{self.config.redis_project!r}) is running on {self.config.network!r}"
            )
        first = next(iter(remap.values()))
        self.missing_nodes = tuple(missing)

        def to_tunnel(address: tuple[str, int]) -> tuple[str, int]:
            return remap.get((address[0], int(address[1])), address)

        return RedisCluster(host=first[0], port=first[1], password=password,
                            decode_responses=True, socket_timeout=5, socket_connect_timeout=5,
                            address_remap=to_tunnel)  # fmt: skip

    @property
    def routes_key(self) -> str:
        return f"{self.config.key_prefix}{ROUTES_KEY}"

    def endpoints_key(self, service: str) -> str:
        return f"{self.config.key_prefix}{endpoints_key(service)}"

    def _call(self, what: str, op: Any) -> Any:
        """Run ``op(client)``, translating redis errors (the password is never in them)."""
        if self._redis is None:
            raise RouteError("RouteTable used outside its `with` block")
        try:
            return op(self._redis)
        except redis.AuthenticationError as exc:
            raise RouteError(
                f"{self.conn.host.name}: Redis refused the password from "
                f"{self.config.secrets_dir}/redis.env ({what})"
            ) from exc
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise RouteError(
                f"{self.conn.host.name}: Redis unreachable through the tunnel during {what}: {exc}"
            ) from exc
        except redis.RedisError as exc:
            raise RouteError(f"{self.conn.host.name}: Redis {what} failed: {exc}") from exc

    def add_route(
        self, prefix: str, service: str, endpoints: Sequence[str], *, allow_local: bool = False
    ) -> None:
        """Point ``prefix`` at ``service`` and set its endpoints (replacing the old list)."""
        validate(prefix, service, endpoints, allow_local=allow_local)

        def write(r: redis.Redis) -> None:
            pipe = r.pipeline(transaction=True)  # the router never sees a half-written service
            pipe.hset(self.routes_key, prefix, service)
            pipe.delete(self.endpoints_key(service))
            if endpoints:
                pipe.rpush(self.endpoints_key(service), *endpoints)
            pipe.execute()

        self._call(f"add route {prefix}", write)

    def remove_route(self, prefix: str) -> bool:
        """Drop ``prefix``; drop its service's endpoints too when no other route uses them."""

        def drop(r: redis.Redis) -> bool:
            service = r.hget(self.routes_key, prefix)
            if service is None:
                return False
            r.hdel(self.routes_key, prefix)
            if service not in r.hvals(self.routes_key):
                r.delete(self.endpoints_key(str(service)))
            return True

        return bool(self._call(f"remove route {prefix}", drop))

    def list_routes(self) -> dict[str, Route]:
        def read(r: redis.Redis) -> dict[str, Route]:
            # decode_responses=True: every key and value is a str
            table = {str(k): str(v) for k, v in r.hgetall(self.routes_key).items()}
            return {
                prefix: Route(
                    prefix,
                    service,
                    tuple(str(e) for e in r.lrange(self.endpoints_key(service), 0, -1)),
                )
                for prefix, service in sorted(table.items())
            }

        result: dict[str, Route] = self._call("list routes", read)
        return result
