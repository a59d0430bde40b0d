"""Fixtures of the fault suite: a uniquely named sandbox cluster, removed at the end even when
the test fails (its lock broken, ``provision down``, its containers and moto server gone)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import remove_sandbox_cluster


@pytest.fixture
def cluster(tmp_path: Path, sandbox_images: object) -> Iterator[tuple[Path, str]]:
    """``(cwd, cluster_name)`` of a sandbox cluster that is not up yet."""
    name = f"fault-{uuid.uuid4().hex[:6]}"
    try:
        yield tmp_path, name
    finally:
        remove_sandbox_cluster(tmp_path, name, unlock=True)
