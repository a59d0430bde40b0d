"""The cluster's layout: ONE typed object, built in ONE function from the variables.

Every part that needs the cluster's shape reads it from here: the playbooks (as the variable
``layout``), the ``verify`` task and its checks, the route table, the cloud. Its defaults and
the strategy names live here and nowhere else.

>>> layout = layout_from_vars({"redis_strategy": "host-gateway", "project_root": "/srv/p"})
>>> layout.compose_files("redis")
['/srv/p/redis/docker-compose.yml', '/srv/p/redis/strategy-host-gateway.yml']
>>> layout_from_vars({}).network
'shared-network'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, get_args

from provision.errors import ConfigError
from provision.models.names import check_name, check_path, check_port, shown, truth, whole_number

__all__ = [
    "COMPONENTS",
    "DEFAULTS",
    "STRATEGIES",
    "TOPOLOGIES",
    "Layout",
    "Strategy",
    "Topology",
    "layout_from_vars",
]

Strategy = Literal["shared-network", "host-gateway", "host-docker-internal"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)
RedisMode = Literal["single", "cluster"]
REDIS_MODES: tuple[str, ...] = get_args(RedisMode)
#: the hash tag that keeps every key of the route table in one slot of a Redis Cluster
ROUTES_TAG = "{provision}"
#: the compose projects, in the order they start
COMPONENTS: tuple[str, ...] = ("redis", "echo", "openresty")
#: one host of compose projects, or N hosts on Docker Swarm (the same projects as stacks)
Topology = Literal["single", "swarm"]
TOPOLOGIES: tuple[str, ...] = get_args(Topology)
#: the most hosts a cluster may have (the instance spec's limit too)
MAX_INSTANCES = 10

#: variable name -> default; the inventories may leave any of them out
DEFAULTS: Mapping[str, Any] = {
    "network": "shared-network",
    "project_root": "/opt/provision",
    "redis_strategy": "shared-network",
    "http_port": 80,
    "redis_mode": "single",
    "redis_cluster_nodes": 6,
    "topology": "single",
    "instance_count": 1,
    "overlay_encrypted": False,
}


@dataclass(frozen=True)
class Layout:
    """A cluster as its parts see it: where the projects live on the host, which network joins
    them, which strategy reaches Redis, the ports; plus how to call compose on that host.

    ``compose`` and ``sudo`` describe the host, not the layout; they ride along because every
    reader of the layout also runs compose (``with_host`` fills them from the host facts).
    """

    network: str = DEFAULTS["network"]
    root: str = DEFAULTS["project_root"]  # ROOT/redis, ROOT/openresty, ROOT/echo
    strategy: Strategy = DEFAULTS["redis_strategy"]
    http_port: int = DEFAULTS["http_port"]
    redis_port: int = 6379
    redis_project: str = "redis"  # compose project names (-p)
    openresty_project: str = "openresty"
    echo_project: str | None = "echo"  # None: no echo backend deployed
    compose: tuple[str, ...] = ("docker", "compose")
    sudo: bool = True
    http_url: str = ""  # where the host reaches OpenResty; "" = 127.0.0.1:http_port
    secrets_dir: str = ""  # "" = ROOT/secrets
    deadline: float = 30.0  # seconds to wait for health, recovery, route propagation
    redis_mode: RedisMode = DEFAULTS["redis_mode"]
    redis_cluster_nodes: int = DEFAULTS["redis_cluster_nodes"]
    topology: Topology = DEFAULTS["topology"]
    instance_count: int = DEFAULTS["instance_count"]
    overlay_encrypted: bool = DEFAULTS["overlay_encrypted"]  # swarm: IPsec on the overlay

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(
                f"must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}",
                field="redis_strategy",
            )
        _check_topology(self.topology, self.instance_count, self.strategy, self.redis_mode)
        if not self.http_url:
            object.__setattr__(self, "http_url", f"http://127.0.0.1:{self.http_port}")
        if not self.secrets_dir:
            object.__setattr__(self, "secrets_dir", f"{self.root}/secrets")

    @property
    def cluster(self) -> bool:
        """Redis is a Redis Cluster (``redis_mode: cluster``)."""
        return self.redis_mode == "cluster"

    @property
    def redis_services(self) -> tuple[str, ...]:
        """The redis project's services: ``redis``, or the cluster's nodes ``redis-1``...
        (each announces its service name, so no container address ever leaves the network)."""
        if not self.cluster:
            return ("redis",)
        return tuple(f"redis-{i}" for i in range(1, self.redis_cluster_nodes + 1))

    @property
    def key_prefix(self) -> str:
        """Prefix of the route table's keys: in a cluster they share one hash tag (one slot),
        so that the router reads the table from one node in one pipeline."""
        return f"{ROUTES_TAG}:" if self.cluster else ""

    def project(self, component: str) -> str:
        names = {
            "redis": self.redis_project,
            "openresty": self.openresty_project,
            "echo": self.echo_project or "echo",
        }
        return names[component]

    def project_dir(self, component: str) -> str:
        return f"{self.root}/{component}"

    def compose_names(self, component: str) -> list[str]:
        """The compose files of a component for this strategy: the base, then the override."""
        if component == "redis" and self.cluster:
            return ["docker-compose.cluster.yml"]  # written from templates/redis-cluster.yml.j2
        files = ["docker-compose.yml"]
        if component == "redis" and self.strategy != "shared-network":
            files.append("strategy-host-gateway.yml")
        elif component == "openresty" and self.strategy != "shared-network":
            files.append(f"strategy-{self.strategy}.yml")
        return files

    def compose_files(self, component: str) -> list[str]:
        return [f"{self.project_dir(component)}/{name}" for name in self.compose_names(component)]

    def compose_argv(self, component: str, *args: str) -> list[str]:
        argv = [*self.compose, "-p", self.project(component)]
        for path in self.compose_files(component):
            argv += ["-f", path]
        return [*argv, *args]

    def with_host(self, compose: tuple[str, ...] | None, sudo: bool) -> Layout:
        """This layout on a host whose compose command (from its facts) is ``compose``."""
        return replace(self, compose=compose or ("docker", "compose"), sudo=sudo)

    def as_vars(self) -> dict[str, Any]:
        """What playbooks see as ``layout``: ``{{ layout.dirs.redis }}``,
        ``{{ layout.files.openresty }}`` (names relative to the project folder), ..."""
        return {
            "network": self.network, "root": self.root, "strategy": self.strategy,
            "http_port": self.http_port, "secrets_dir": self.secrets_dir,
            "dirs": {c: self.project_dir(c) for c in COMPONENTS},
            "files": {c: self.compose_names(c) for c in COMPONENTS},
            "projects": {c: self.project(c) for c in COMPONENTS},
            "redis_mode": self.redis_mode,
            "redis_services": list(self.redis_services),
            "redis_nodes": ",".join(f"{s}:{self.redis_port}" for s in self.redis_services),
            "key_prefix": self.key_prefix,
            **self._swarm_vars(),
        }  # fmt: skip

    @property
    def swarm(self) -> bool:
        return self.topology == "swarm"

    def stack_names(self, component: str) -> list[str]:
        """The files of a component's stack: its compose files, then the swarm override
        (``stack.yml``: deploy modes, placement, published ports per node)."""
        return [*self.compose_names(component), "stack.yml"]

    def _swarm_vars(self) -> dict[str, Any]:
        return {
            "topology": self.topology,
            "instance_count": self.instance_count,
            "overlay_encrypted": self.overlay_encrypted,
            "swarm": self.swarm,
            "stack_files": {c: self.stack_names(c) for c in COMPONENTS},
        }


def layout_from_vars(variables: Mapping[str, Any]) -> Layout:
    """The layout the variables describe (``DEFAULTS`` for what they leave out); a bad value
    is a ``ConfigError`` naming the variable."""
    values = {**DEFAULTS, **{k: variables[k] for k in DEFAULTS if k in variables}}
    check_name(str(values["network"]), "network")
    check_path(str(values["project_root"]), "project_root")
    port = check_port(values["http_port"], "http_port")
    strategy = values["redis_strategy"]
    if strategy not in STRATEGIES:
        raise ConfigError(
            f"must be one of {', '.join(STRATEGIES)}, got {strategy!r}", field="redis_strategy"
        )
    mode = values["redis_mode"]
    if mode not in REDIS_MODES:
        raise ConfigError(
            f"must be one of {', '.join(REDIS_MODES)}, got {mode!r}", field="redis_mode"
        )
    given_nodes = values["redis_cluster_nodes"]
    nodes = whole_number(given_nodes)
    nodes = given_nodes if nodes is None else nodes
    if (
        isinstance(nodes, bool)
        or not isinstance(nodes, int)
        or nodes < 6
        or nodes % 2
        or nodes > 64
    ):
        raise ConfigError(
            f"must be an even number from 6 to 64 (masters with one replica each), got {nodes!r}",
            field="redis_cluster_nodes",
        )
    if mode == "cluster" and strategy != "shared-network":
        raise ConfigError(
            "a Redis Cluster is reached by its nodes' names on the shared network: use "
            f"redis_strategy: shared-network, not {strategy!r}",
            field="redis_strategy",
        )
    topology, count, encrypted = _swarm_values(values)
    return Layout(
        redis_mode=mode,
        redis_cluster_nodes=nodes,
        network=str(values["network"]),
        root=str(values["project_root"]),
        strategy=strategy,
        http_port=port,
        topology=topology,
        instance_count=count,
        overlay_encrypted=encrypted,
    )


def _swarm_values(values: Mapping[str, Any]) -> tuple[Topology, int, bool]:
    """``topology``, ``instance_count`` and ``overlay_encrypted``, as given in YAML or by
    ``-e`` (where ``3`` and ``true`` may arrive as text)."""
    given = values["instance_count"]
    number = whole_number(given)
    count: Any = given if number is None else number
    encrypted = truth(values["overlay_encrypted"])
    if encrypted is None:
        raise ConfigError(
            f"must be true or false, got {values['overlay_encrypted']!r}", field="overlay_encrypted"
        )
    _check_topology(values["topology"], count, values["redis_strategy"], values["redis_mode"])
    return values["topology"], count, encrypted


def _check_topology(
    topology: Any, count: Any, strategy: Any = "shared-network", redis_mode: Any = "single"
) -> None:
    if topology not in TOPOLOGIES:
        raise ConfigError(
            f"must be one of {', '.join(TOPOLOGIES)}, got {topology!r}", field="topology"
        )
    if topology == "swarm" and redis_mode == "cluster":
        raise ConfigError(
            "a Redis Cluster is not deployed as a swarm stack yet (its nodes announce compose "
            "names on one host): use redis_mode: single with topology: swarm",
            field="redis_mode",
        )
    if topology == "swarm" and strategy != "shared-network":
        raise ConfigError(
            f"topology swarm reaches Redis by name on the overlay: redis_strategy must be "
            f"shared-network, got {strategy!r}",
            field="redis_strategy",
        )
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_INSTANCES:
        raise ConfigError(
            f"must be an integer from 1 to {MAX_INSTANCES}, got {shown(count)}",
            field="instance_count",
        )
