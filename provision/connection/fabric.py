"""A ``fabric.Connection`` to one host, for pipelines that run their own commands.

Configured as provision's own connection is: the host's user, key and port, and the project's
pinned ``known_hosts``; and, unlike Fabric's default (``AutoAddPolicy``, which accepts and
keeps any key), a host key that is not pinned is refused (``HostKeyPolicy`` without
trust-on-first-use). This is the only module that imports Fabric.

>>> conn = fabric_connection(HostSpec("web", "127.0.0.1", 2222, key_file=Path("id")),
...                          known_hosts=Path(".provision/known_hosts"))  # doctest: +SKIP
>>> conn.run("uname -s", hide=True).stdout
'Linux\\n'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fabric

from provision.connection.ssh import HostKeyPolicy
from provision.models import HostSpec

__all__ = ["fabric_connection"]


def fabric_connection(
    spec: HostSpec, *, known_hosts: Path, connect_timeout: float = 30.0
) -> Any:  # fabric.Connection (Fabric ships no type hints)
    """A ``fabric.Connection`` to ``spec`` that trusts only the keys in ``known_hosts``."""
    connect_kwargs: dict[str, Any] = {
        "allow_agent": False,
        "look_for_keys": spec.key_file is None,
    }
    if spec.key_file is not None:
        connect_kwargs["key_filename"] = str(spec.key_file)
    conn = fabric.Connection(
        spec.address,
        user=spec.user,
        port=spec.port,
        connect_timeout=connect_timeout,
        connect_kwargs=connect_kwargs,
        # the user's ~/.ssh/config must not redirect the host or pick another key; commands do
        # not read this process's stdin (a pipeline's or pytest's): pass in_stream= to feed one
        config=fabric.Config(overrides={"load_ssh_configs": False, "run": {"in_stream": False}}),
    )
    client = conn.client
    if known_hosts.is_file():
        client.load_host_keys(str(known_hosts))
    client.set_missing_host_key_policy(HostKeyPolicy(known_hosts, trust_on_first_use=False))
    return conn
