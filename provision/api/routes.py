"""The route table of a cluster named by an inventory: its host found (by tags where there is
a cloud), one SSH connection, one tunnel to Redis. Used by ``provision routes`` and
``Cluster.routes``.

Everything is checked before any call: the inventory, the layout its variables describe, and
the route itself (prefix, service, endpoints).

>>> routes = ClusterRoutes(None, Options())        # the sandbox   # doctest: +SKIP
>>> routes.add("/api/users", "users", ["echo-a:80", "echo-b:80"])
>>> routes.list()["/api/users"].endpoints
('echo-a:80', 'echo-b:80')
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from provision.cluster.layout import Layout, layout_from_vars
from provision.load.inventory import Inventory
from provision.load.variables import RunVars

if TYPE_CHECKING:
    from provision.cluster.routes import Route, RouteTable
    from provision.models import HostSpec
    from provision.run.options import Options

__all__ = ["ClusterRoutes"]


class ClusterRoutes:
    """Add, remove and list routes of the cluster's first host."""

    def __init__(self, inventory: str | Path | Inventory | None, options: Options) -> None:
        from provision.api import _inventory, run_vars

        self.options = options
        self.inventory = _inventory(inventory)
        self.variables: RunVars = run_vars(self.inventory, options)
        self.layout: Layout = layout_from_vars(self.variables.cluster)

    def add(
        self, prefix: str, service: str, endpoints: Sequence[str], *, allow_local: bool = False
    ) -> None:
        """Route ``prefix`` to ``service`` at ``endpoints``; ``allow_local`` lets loopback and
        link-local endpoints through (refused by default)."""
        from provision.cluster.routes import validate

        validate(prefix, service, endpoints, allow_local=allow_local)
        with self._table() as table:
            table.add_route(prefix, service, endpoints, allow_local=allow_local)
            self._record(table)

    def remove(self, prefix: str) -> bool:
        from provision.cluster.routes import validate_prefix

        validate_prefix(prefix)
        with self._table() as table:
            removed = table.remove_route(prefix)
            self._record(table)
            return removed

    def list(self) -> dict[str, Route]:
        with self._table() as table:
            return table.list_routes()

    def _record(self, table: RouteTable) -> None:
        """A cloud cluster's table, as it is now, in the controller's record (``up`` puts it
        back into a Redis that lost its volume with its host: the ``routes`` task)."""
        from provision.cluster import route_record

        cluster = self.variables.cluster.get("cluster_name")
        if self.variables.cluster.get("cloud", "none") != "none" and cluster:
            where = route_record.path(self.options.state_dir.resolve(), str(cluster))
            route_record.save(where, table.list_routes())

    @contextmanager
    def _table(self) -> Iterator[RouteTable]:
        from provision.cluster.routes import RouteTable
        from provision.connection.ssh import Connection

        spec = self._host()
        state_dir = self.options.state_dir.resolve()
        with (
            Connection(
                spec,
                known_hosts=state_dir / "known_hosts",
                trust_on_first_use=self.options.trust_on_first_use,
                retry_deadline=self.options.connect_deadline,
            ) as conn,
            RouteTable(conn, self.layout) as table,
        ):
            yield table

    def _host(self) -> HostSpec:
        """The first host of the ``cluster`` group, found by tags when there is a cloud."""
        from provision.api.hosts import cluster_hosts

        return cluster_hosts(self.inventory, self.variables, self.options)[0]
