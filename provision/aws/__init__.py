"""The EC2 lifecycle: stand a cluster up, find its hosts, tear it down — all by tags.

>>> from provision.aws import ClusterSpec, up, down           # doctest: +SKIP
>>> spec = ClusterSpec.from_vars({"cluster": "demo", "region": "eu-west-1"})
>>> result = up(spec, state_dir=Path(".provision"))
>>> down("demo", region="eu-west-1")

boto3 is imported only when a function here first needs it, so ``import provision.aws`` is
cheap; every botocore error leaves this package as a ``provision.errors.CloudError``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provision.aws.calls import Clients, make_clients
    from provision.aws.discovery import find_ended, find_hosts
    from provision.aws.hostkeys import (
        decide_host_keys,
        known_hosts_name,
        parse_console_host_keys,
        write_known_hosts,
    )
    from provision.aws.lifecycle import up
    from provision.aws.results import ClusterResult, Instance, TeardownResult, Timeouts
    from provision.aws.spec import ClusterSpec
    from provision.aws.teardown import down, enabled_regions, sweep

__all__ = [
    "Clients",
    "ClusterResult",
    "ClusterSpec",
    "Instance",
    "TeardownResult",
    "Timeouts",
    "decide_host_keys",
    "down",
    "enabled_regions",
    "find_ended",
    "find_hosts",
    "known_hosts_name",
    "make_clients",
    "parse_console_host_keys",
    "sweep",
    "up",
    "write_known_hosts",
]

_HOME = {
    "Clients": "calls",
    "make_clients": "calls",
    "decide_host_keys": "hostkeys",
    "known_hosts_name": "hostkeys",
    "parse_console_host_keys": "hostkeys",
    "write_known_hosts": "hostkeys",
    "find_ended": "discovery",
    "find_hosts": "discovery",
    "up": "lifecycle",
    "ClusterResult": "results",
    "Instance": "results",
    "TeardownResult": "results",
    "Timeouts": "results",
    "ClusterSpec": "spec",
    "down": "teardown",
    "enabled_regions": "teardown",
    "sweep": "teardown",
}


def __getattr__(name: str) -> Any:
    """Import the module holding ``name`` on first use (PEP 562)."""
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'provision.aws' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"provision.aws.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
