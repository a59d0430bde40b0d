"""How commands reach a host: the ``Remote`` contract, its one base, and the transports.

- ``base``: ``Remote`` (what tasks and checks may do) and ``BaseConnection`` (the verbs,
  written once on each transport's primitives);
- ``ssh``: ``Connection``, paramiko (the only module that imports it, with ``keys``);
- ``local``: ``LocalConnection``, the controller itself (subprocess);
- ``commands``: the shell commands every transport builds alike (atomic write, batch);
- ``keys``: SSH key files and host-key lines (paramiko's key classes).

``ssh`` is imported on first use, so that importing the package does not load paramiko.
"""

from __future__ import annotations

from provision.connection.base import BaseConnection, Remote

__all__ = ["BaseConnection", "Remote"]
