"""What the checks need to know about a cluster, and how they look things up on its host.

Lookups go through the ``Remote`` verbs with argv lists; their output is parsed by pure
functions (``parse_*``) that the unit tests drive with recorded output.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from provision.connection.base import Remote
from provision.errors import VerifyError
from provision.models import Result

__all__ = [
    "STRATEGIES",
    "HttpReply",
    "Strategy",
    "VerifyConfig",
    "container_id",
    "container_ip",
    "http_get",
    "network_gateway",
    "parse_container_ip",
    "parse_gateway",
    "parse_getent",
    "parse_http",
    "parse_password",
    "redis_password",
]

Strategy = Literal["shared-network", "host-gateway", "host-docker-internal"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)


@dataclass(frozen=True)
class VerifyConfig:
    """A cluster as the checks see it.

    >>> VerifyConfig(compose=("docker-compose",), http_url="http://127.0.0.1:8080", sudo=False)
    ... # doctest: +ELLIPSIS
    VerifyConfig(...)
    """

    network: str = "shared-network"
    root: str = "/opt/provision"  # the project folders are ROOT/redis, ROOT/openresty, ROOT/echo
    redis_project: str = "redis"  # compose project names (-p)
    openresty_project: str = "openresty"
    echo_project: str | None = "echo"  # None: no echo backend deployed
    compose: tuple[str, ...] = ("docker", "compose")
    http_url: str = "http://127.0.0.1:80"
    strategy: Strategy = "shared-network"
    sudo: bool = True
    secrets_dir: str = "/opt/provision/secrets"
    redis_port: int = 6379
    deadline: float = 30.0  # seconds to wait for health, recovery, route propagation

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}")

    def project(self, component: str) -> str:
        names = {"redis": self.redis_project, "openresty": self.openresty_project,
                 "echo": self.echo_project or "echo"}
        return names[component]

    def compose_files(self, component: str) -> list[str]:
        """The ``-f`` files of a component for this strategy (base first, then the override)."""
        files = [f"{self.root}/{component}/docker-compose.yml"]
        if component == "redis" and self.strategy != "shared-network":
            files.append(f"{self.root}/redis/strategy-host-gateway.yml")
        elif component == "openresty" and self.strategy != "shared-network":
            files.append(f"{self.root}/openresty/strategy-{self.strategy}.yml")
        return files

    def compose_argv(self, component: str, *args: str) -> list[str]:
        argv = [*self.compose, "-p", self.project(component)]
        for path in self.compose_files(component):
            argv += ["-f", path]
        return [*argv, *args]


def docker(conn: Remote, config: VerifyConfig, *argv: str, timeout: float = 60.0) -> Result:
    return conn.run(["docker", *argv], sudo=config.sudo, warn=True, timeout=timeout)


def container_id(conn: Remote, config: VerifyConfig, component: str, service: str) -> str:
    """The running (else any) container of a compose service, by compose's labels ("" if none).

    Labels rather than names: Compose v1 names containers ``p_s_1``, v2 ``p-s-1``.
    """
    result = docker(
        conn, config, "ps", "-a", "--filter",
        f"label=com.docker.compose.project={config.project(component)}",
        "--filter", f"label=com.docker.compose.service={service}",
        "--format", "{{.ID}} {{.State}}",
    )
    rows = [line.split() for line in result.stdout.splitlines() if line.strip()]
    running = [r[0] for r in rows if len(r) > 1 and r[1] == "running"]
    return (running or [r[0] for r in rows] or [""])[0]


def parse_container_ip(inspect_json: str, network: str) -> str:
    """The address on ``network``, from ``docker inspect -f '{{json .NetworkSettings.Networks}}'``.
    """
    try:
        networks: dict[str, Any] = json.loads(inspect_json or "{}")
    except json.JSONDecodeError:
        return ""
    return str((networks.get(network) or {}).get("IPAddress") or "")


def container_ip(conn: Remote, config: VerifyConfig, cid: str) -> str:
    result = docker(conn, config, "inspect", "-f", "{{json .NetworkSettings.Networks}}", cid)
    return parse_container_ip(result.stdout, config.network) if result.ok else ""


def parse_gateway(text: str) -> str:
    """The gateway from ``{{range .IPAM.Config}}{{.Gateway}},{{.Subnet}} {{end}}``; the default
    ``bridge`` often lists no Gateway, and Docker gives it the subnet's first address then."""
    for entry in text.split():
        gateway, _, subnet = entry.partition(",")
        if gateway:
            return gateway
        with contextlib.suppress(ValueError):
            return str(next(ipaddress.ip_network(subnet).hosts()))
    return ""


def network_gateway(conn: Remote, config: VerifyConfig, network: str) -> str:
    """The gateway (the host's address) of a Docker network; ``bridge`` is where Docker's
    ``host-gateway`` (host.docker.internal) points."""
    result = docker(conn, config, "network", "inspect", "-f",
                    "{{range .IPAM.Config}}{{.Gateway}},{{.Subnet}} {{end}}", network)
    return parse_gateway(result.stdout) if result.ok else ""


def parse_getent(stdout: str) -> list[str]:
    """Addresses from ``getent hosts NAME`` (``ADDR NAME [ALIASES]`` per line)."""
    addrs = []
    for line in stdout.splitlines():
        field = line.split()[0] if line.split() else ""
        try:
            addrs.append(str(ipaddress.ip_address(field)))
        except ValueError:
            continue
    return addrs


def parse_password(text: str) -> str | None:
    """``REDIS_PASSWORD=...`` from the secret file (the last assignment wins, as in sh)."""
    found = re.findall(r"^\s*(?:export\s+)?REDIS_PASSWORD=['\"]?([^'\"\s]+)", text, re.M)
    return found[-1] if found else None


def redis_password(conn: Remote, config: VerifyConfig) -> str:
    """Read the password on the host (root-only file); never put it in evidence or errors."""
    path = f"{config.secrets_dir}/redis.env"
    result = conn.run(["cat", path], sudo=config.sudo, warn=True)
    password = parse_password(result.stdout) if result.ok else None
    if not password:
        raise VerifyError(f"{conn.host.name}: no REDIS_PASSWORD in {path} "
                          f"(exit {result.exit_code}: {result.stderr.strip()[:200]})")
    return password


@dataclass(frozen=True)
class HttpReply:
    status: int  # 0 when no HTTP answer came (then ``body`` holds the error)
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except json.JSONDecodeError:
            return None


# Runs on the host with python3 (present on every host we manage; curl is not, on the
# sandbox images). Proxies are disabled: the target is the host's own loopback.
_HTTP_PROBE = """
import json, sys, urllib.error, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    with opener.open(sys.argv[1], timeout=float(sys.argv[2])) as r:
        status, headers, body = r.status, dict(r.headers), r.read()
except urllib.error.HTTPError as e:
    status, headers, body = e.code, dict(e.headers), e.read()
except OSError as e:
    status, headers, body = 0, {}, repr(e).encode()
print(json.dumps({"status": status, "headers": headers, "body": body.decode("utf-8", "replace")}))
"""


def parse_http(stdout: str) -> HttpReply:
    try:
        data = json.loads(stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return HttpReply(0, {}, stdout[-500:])
    headers = {str(k).lower(): str(v) for k, v in dict(data.get("headers") or {}).items()}
    return HttpReply(int(data.get("status") or 0), headers, str(data.get("body") or ""))


def http_get(conn: Remote, config: VerifyConfig, path: str, *, timeout: float = 5.0) -> HttpReply:
    """GET ``config.http_url + path`` from the host itself."""
    url = config.http_url.rstrip("/") + path
    result = conn.run(["python3", "-c", _HTTP_PROBE, url, str(timeout)], warn=True,
                      timeout=timeout + 10)
    return parse_http(result.stdout) if result.ok else HttpReply(0, {}, result.stderr[-500:])


def tail(text: str, lines: int = 30) -> list[str]:
    return text.strip().splitlines()[-lines:]


def loopback(host: str) -> bool:
    return host == "localhost" or (_is_ip(host) and ipaddress.ip_address(host).is_loopback)


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def env_of(conn: Remote, config: VerifyConfig, cid: str) -> dict[str, str]:
    """A container's environment as compose set it (the password is not in it, by design)."""
    result = docker(conn, config, "inspect", "-f", "{{json .Config.Env}}", cid)
    try:
        pairs: Sequence[str] = json.loads(result.stdout) if result.ok else []
    except json.JSONDecodeError:
        pairs = []
    return dict(p.split("=", 1) for p in pairs if "=" in p)
