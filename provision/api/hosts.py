"""The hosts of a cluster named by an inventory: the ``cluster`` group's static hosts, or the
running instances found by their tags where there is a cloud. Used by ``Cluster.hosts``,
``Cluster.connection`` and ``Cluster.routes``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from provision.errors import ConfigError
from provision.load.inventory import Inventory, to_host_spec

if TYPE_CHECKING:
    from provision.load.variables import RunVars
    from provision.models import HostSpec
    from provision.run.options import Options

__all__ = ["cluster_hosts"]


def cluster_hosts(inventory: Inventory, resolved: RunVars, options: Options) -> list[HostSpec]:
    """Every host of the ``cluster`` group (reached as ``resolved`` says, as a run reaches
    them)."""
    from provision import cloud

    static = inventory.select("cluster")
    if static:
        return [to_host_spec(h, resolved.host(inventory, h.name)) for h in static]
    variables = resolved.cluster
    if variables.get("cloud", "none") == "none":
        raise ConfigError("the inventory has no host in group 'cluster'", field="-i")
    found = cloud.find(cloud.Target.from_vars(variables, options.state_dir))
    if not found:
        raise ConfigError(
            f"cluster {variables['cluster_name']!r} has no running host; run `provision up` first",
            field="cluster_name",
        )
    return [i.to_host_spec() for i in found]
