"""The route table of a cluster named by an inventory: its host found (by tags where there is
a cloud), one SSH connection, one tunnel to Redis. Used by ``provision routes`` and
``Cluster.routes``.

>>> routes = ClusterRoutes(None, Options())        # the sandbox   # doctest: +SKIP
>>> routes.add("/api/users", "users", ["echo-a:80", "echo-b:80"])
>>> routes.list()["/api/users"].endpoints
('echo-a:80', 'echo-b:80')
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provision.errors import ConfigError

if TYPE_CHECKING:
    from provision.api import Options
    from provision.cluster.routes import Route, RouteTable
    from provision.load.inventory import Inventory
    from provision.models import HostSpec

__all__ = ["ClusterRoutes"]


class ClusterRoutes:
    """Add, remove and list routes of the cluster's first host."""

    def __init__(self, inventory: str | Path | Inventory | None, options: Options) -> None:
        self.inventory = inventory
        self.options = options

    def add(self, prefix: str, service: str, endpoints: Sequence[str]) -> None:
        with self._table() as table:
            table.add_route(prefix, service, endpoints)

    def remove(self, prefix: str) -> bool:
        with self._table() as table:
            return table.remove_route(prefix)

    def list(self) -> dict[str, Route]:
        with self._table() as table:
            return table.list_routes()

    @contextmanager
    def _table(self) -> Iterator[RouteTable]:
        from provision.cluster.routes import RouteTable
        from provision.connection.ssh import Connection
        from provision.tasks.base import TaskContext
        from provision.tasks.hostfacts import host_facts
        from provision.verify import VerifyConfig

        spec, variables = self._host()
        state_dir = self.options.state_dir.resolve()
        with Connection(spec, known_hosts=state_dir / "known_hosts",
                        trust_on_first_use=self.options.trust_on_first_use,
                        retry_deadline=self.options.connect_deadline) as conn:
            compose = host_facts(TaskContext(conn, become=True)).compose_command
            config = VerifyConfig(
                network=str(variables.get("network", "shared-network")),
                root=str(variables.get("project_root", "/opt/provision")),
                compose=compose or ("docker", "compose"),
                strategy=variables.get("redis_strategy", "shared-network"),
                secrets_dir=f"{variables.get('project_root', '/opt/provision')}/secrets",
            )
            with RouteTable(conn, config) as table:
                yield table

    def _host(self) -> tuple[HostSpec, dict[str, Any]]:
        """The first host of the ``cluster`` group, found by tags when there is a cloud."""
        from provision.api import SANDBOX_INVENTORY
        from provision.load.inventory import load_inventory, resolve_vars, to_host_spec
        from provision.tasks.ec2 import FindArgs, find

        inv = self.inventory
        inv = inv if not isinstance(inv, (str, Path, type(None))) else load_inventory(
            inv or SANDBOX_INVENTORY)
        variables = resolve_vars(inv, "localhost", {}, self.options.extra_vars)
        static = inv.select("cluster")
        if static:
            return to_host_spec(static[0]), resolve_vars(inv, static[0].name, {},
                                                          self.options.extra_vars)
        if variables.get("cloud", "none") == "none":
            raise ConfigError("the inventory has no host in group 'cluster'", field="-i")
        found = find(FindArgs(cloud=variables["cloud"], cluster=str(variables["cluster_name"]),
                               region=str(variables["region"]),
                               state_dir=str(self.options.state_dir.resolve())))
        if not found:
            raise ConfigError(f"cluster {variables['cluster_name']!r} has no running host; "
                              "run `provision up` first", field="cluster_name")
        return found[0].to_host_spec(), variables
