"""Fixtures of the fault suite: a uniquely named sandbox cluster, removed at the end even when
the test fails (its lock broken, ``provision down``, its containers and moto server gone)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from provision.sandbox import cloud
from provision.sandbox.moto_server import stop_server
from tests.clirun import provision_cli


@pytest.fixture
def cluster(tmp_path: Path, sandbox_images: object) -> Iterator[tuple[Path, str]]:
    """``(cwd, cluster_name)`` of a sandbox cluster that is not up yet."""
    name = f"fault-{uuid.uuid4().hex[:6]}"
    try:
        yield tmp_path, name
    finally:
        provision_cli("unlock", "--force", "-e", f"cluster_name={name}", cwd=tmp_path)
        provision_cli("down", "-e", f"cluster_name={name}", cwd=tmp_path, timeout=900)
        cloud.remove_cluster(name)
        stop_server(cloud.sandbox_dir(tmp_path / ".provision"), forget=True)
