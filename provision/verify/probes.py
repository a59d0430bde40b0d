"""How the checks look at a host: HTTP from the host itself, DNS answers, gateways,
container environments. Lookups go through the ``Remote`` verbs with argv lists; their output
is parsed by pure functions (``parse_*``) that the unit tests drive with recorded output.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from provision.cluster.layout import Layout
from provision.cluster.lookup import container_id, docker
from provision.connection.base import Remote

__all__ = [
    "HttpReply",
    "env_of",
    "http_get",
    "network_gateway",
    "parse_gateway",
    "parse_getent",
    "parse_http",
    "router_details",
    "tail",
]


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


def network_gateway(conn: Remote, config: Layout, network: str) -> str:
    """The gateway (the host's address) of a Docker network; ``bridge`` is where Docker's
    ``host-gateway`` (host.docker.internal) points."""
    result = docker(
        conn,
        config,
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Gateway}},{{.Subnet}} {{end}}",
        network,
    )
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


def http_get(conn: Remote, config: Layout, path: str, *, timeout: float = 5.0) -> HttpReply:
    """GET ``config.http_url + path`` from the host itself."""
    url = config.http_url.rstrip("/") + path
    result = conn.run(
        ["python3", "-c", _HTTP_PROBE, url, str(timeout)], warn=True, timeout=timeout + 10
    )
    return parse_http(result.stdout) if result.ok else HttpReply(0, {}, result.stderr[-500:])


#: the router's detailed health (Redis address, error, resolver, route count): served only on
#: 127.0.0.1 inside the OpenResty container (playbooks/files/openresty/nginx.conf); the public
#: /health says only ok or degraded.
DETAILS_URL = "http://127.0.0.1:8081/health"


def router_details(conn: Remote, config: Layout) -> Any:
    """The router's detailed health as JSON (None if there is no answer), asked from inside
    its container."""
    cid = container_id(conn, config, "openresty", "openresty")
    if not cid:
        return None
    got = docker(conn, config, "exec", cid, "curl", "-sS", "-m", "3", DETAILS_URL, timeout=30)
    try:
        return json.loads(got.stdout) if got.ok else None
    except json.JSONDecodeError:
        return None


def tail(text: str, lines: int = 30) -> list[str]:
    return text.strip().splitlines()[-lines:]


def env_of(conn: Remote, config: Layout, cid: str) -> dict[str, str]:
    """A container's environment as compose set it (the password is not in it, by design)."""
    result = docker(conn, config, "inspect", "-f", "{{json .Config.Env}}", cid)
    try:
        pairs: Sequence[str] = json.loads(result.stdout) if result.ok else []
    except json.JSONDecodeError:
        pairs = []
    return dict(p.split("=", 1) for p in pairs if "=" in p)
