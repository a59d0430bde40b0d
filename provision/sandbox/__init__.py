"""The local test bed: EC2-like SSH hosts as containers of the local Docker engine.

Used by provision's integration tests and by anyone who wants to try a playbook
without AWS. Everything it creates carries the label ``io.provision.sandbox=1``.

Example::

    >>> from provision import sandbox
    >>> sandbox.ensure_images(("bookworm",))                   # doctest: +SKIP
    >>> host = sandbox.start_host("demo", public_key=pubkey)   # doctest: +SKIP
    >>> sandbox.wait_for_ssh(host)                             # doctest: +SKIP
    >>> sandbox.remove_host("demo")                            # doctest: +SKIP
"""

from __future__ import annotations

from provision.errors import EngineUnavailable
from provision.sandbox.hosts import (
    SandboxHost,
    host_key,
    known_hosts_line,
    remove_all,
    remove_host,
    start_host,
    wait_for_ssh,
)
from provision.sandbox.images import (
    OPENRESTY_IMAGE,
    REDIS_IMAGE,
    SUPPORTED_DISTROS,
    ensure_images,
)
from provision.sandbox.localdocker import SANDBOX_LABEL, available

__all__ = [
    "OPENRESTY_IMAGE",
    "REDIS_IMAGE",
    "SANDBOX_LABEL",
    "SUPPORTED_DISTROS",
    "EngineUnavailable",
    "SandboxHost",
    "available",
    "ensure_images",
    "host_key",
    "known_hosts_line",
    "remove_all",
    "remove_host",
    "start_host",
    "wait_for_ssh",
]
