"""The route table in Redis, written from Python through a tunnel (no Redis port is opened).

Schema (read by playbooks/files/openresty/lua/router.lua):

- hash ``routes``: path prefix (``/api/echo``) -> service name (``echo``)
- list ``service:<name>:endpoints``: ``host:port`` entries, round robin in this order

The tunnel goes to the Redis container's address on the shared network, as seen from the host
(SSH direct-tcpip, or a local TCP proxy for ``LocalConnection``); that works for every
strategy, since Redis stays on the shared network in all of them.

>>> with RouteTable(conn, VerifyConfig()) as table:  # doctest: +SKIP
...     table.add_route("/api/echo", "echo", ["echo-a:80", "echo-b:80"])
...     table.list_routes()["/api/echo"].endpoints
('echo-a:80', 'echo-b:80')
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import redis

from provision.connection.base import Remote
from provision.errors import ConfigError, ProvisionError
from provision.verify.config import VerifyConfig, container_id, container_ip, redis_password

__all__ = [
    "Route",
    "RouteTable",
    "RouteTableError",
    "add_route",
    "list_routes",
    "remove_route",
]

ROUTES_KEY = "routes"
_PREFIX = re.compile(r"^/[^\s]*$")
_SERVICE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ENDPOINT = re.compile(r"^[A-Za-z0-9_.-]+:\d{1,5}$")


class RouteTableError(ProvisionError):
    """Redis could not be reached through the tunnel, refused us, or failed a command."""


@dataclass(frozen=True)
class Route:
    prefix: str
    service: str
    endpoints: tuple[str, ...]


def endpoints_key(service: str) -> str:
    return f"service:{service}:endpoints"


def validate(prefix: str, service: str, endpoints: Sequence[str]) -> None:
    """Refuse values the router cannot read back (its table is tab- and newline-separated)."""
    if not _PREFIX.match(prefix):
        raise ConfigError(f"route prefix must start with / and hold no spaces: {prefix!r}",
                          field="prefix")
    if not _SERVICE.match(service):
        raise ConfigError(f"bad service name {service!r}", field="service")
    for endpoint in endpoints:
        if not _ENDPOINT.match(endpoint):
            raise ConfigError(f"endpoint must be host:port, got {endpoint!r}", field="endpoints")


class RouteTable:
    """The route table of one cluster, over one tunnel opened on ``__enter__``."""

    def __init__(self, conn: Remote, config: VerifyConfig) -> None:
        self.conn = conn
        self.config = config
        self._stack = contextlib.ExitStack()
        self._redis: redis.Redis | None = None

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
        cid = container_id(self.conn, self.config, "redis", "redis")
        address = container_ip(self.conn, self.config, cid) if cid else ""
        if not address:
            raise RouteTableError(f"{self.conn.host.name}: no redis container of project "
                                  f"{self.config.redis_project!r} on {self.config.network!r}")
        password = redis_password(self.conn, self.config)
        port = self._stack.enter_context(self.conn.forward_local(address, self.config.redis_port))
        self._redis = redis.Redis(host="127.0.0.1", port=port, password=password,
                                  socket_timeout=5, socket_connect_timeout=5,
                                  decode_responses=True)
        self._call("PING", lambda r: r.ping())

    def _call(self, what: str, op: Any) -> Any:
        """Run ``op(client)``, translating redis errors (the password is never in them)."""
        if self._redis is None:
            raise RouteTableError("RouteTable used outside its `with` block")
        try:
            return op(self._redis)
        except redis.AuthenticationError as exc:
            raise RouteTableError(f"{self.conn.host.name}: Redis refused the password from "
                                  f"{self.config.secrets_dir}/redis.env ({what})") from exc
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise RouteTableError(f"{self.conn.host.name}: Redis unreachable through the "
                                  f"tunnel during {what}: {exc}") from exc
        except redis.RedisError as exc:
            raise RouteTableError(f"{self.conn.host.name}: Redis {what} failed: {exc}") from exc

    def add_route(self, prefix: str, service: str, endpoints: Sequence[str]) -> None:
        """Point ``prefix`` at ``service`` and set its endpoints (replacing the old list)."""
        validate(prefix, service, endpoints)

        def write(r: redis.Redis) -> None:
            pipe = r.pipeline(transaction=True)  # the router never sees a half-written service
            pipe.hset(ROUTES_KEY, prefix, service)
            pipe.delete(endpoints_key(service))
            if endpoints:
                pipe.rpush(endpoints_key(service), *endpoints)
            pipe.execute()

        self._call(f"add route {prefix}", write)

    def remove_route(self, prefix: str) -> bool:
        """Drop ``prefix``; drop its service's endpoints too when no other route uses them."""

        def drop(r: redis.Redis) -> bool:
            service = r.hget(ROUTES_KEY, prefix)
            if service is None:
                return False
            r.hdel(ROUTES_KEY, prefix)
            if service not in r.hvals(ROUTES_KEY):
                r.delete(endpoints_key(str(service)))
            return True

        return bool(self._call(f"remove route {prefix}", drop))

    def list_routes(self) -> dict[str, Route]:
        def read(r: redis.Redis) -> dict[str, Route]:
            # decode_responses=True: every key and value is a str
            table = {str(k): str(v) for k, v in r.hgetall(ROUTES_KEY).items()}
            return {
                prefix: Route(prefix, service,
                              tuple(str(e) for e in r.lrange(endpoints_key(service), 0, -1)))
                for prefix, service in sorted(table.items())
            }

        result: dict[str, Route] = self._call("list routes", read)
        return result


def add_route(
    conn: Remote, prefix: str, service: str, endpoints: Sequence[str], *, config: VerifyConfig
) -> None:
    with RouteTable(conn, config) as table:
        table.add_route(prefix, service, endpoints)


def remove_route(conn: Remote, prefix: str, *, config: VerifyConfig) -> bool:
    with RouteTable(conn, config) as table:
        return table.remove_route(prefix)


def list_routes(conn: Remote, *, config: VerifyConfig) -> dict[str, Route]:
    with RouteTable(conn, config) as table:
        return table.list_routes()
