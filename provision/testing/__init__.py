"""Test authors' tools: the pytest plugin (``plugin``), registered through the ``pytest11``
entry point as ``provision``. It adds options and the ``provision_cluster`` fixture, and
does nothing else unless a test asks for that fixture."""

from __future__ import annotations

__all__: list[str] = []
