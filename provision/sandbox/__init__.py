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
from provision.sandbox import hosts
from provision.sandbox.hosts import *  # noqa: F403 (its __all__, named once, below)
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
    "available",
    "ensure_images",
]
__all__ += hosts.__all__  # the hosts' own names: start_host, wait_for_ssh, remove_host...
