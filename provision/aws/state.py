"""One local state file per cluster, ``<state_dir>/<cluster>/state.json``, written atomically.

Each resource is recorded as soon as AWS returns its id and before anything waits on it, so an
interrupted ``up`` can be finished by running it again, or undone with ``down``. The state is a
convenience: ``down`` and ``find_hosts`` work from tags alone.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from provision.connection.keys import make_private_dir
from provision.errors import ConfigError

VERSION = 1


@dataclass
class InstanceRecord:
    instance_id: str
    name: str
    host_keys: list[str] = field(default_factory=list)
    host_key_source: str = ""
    address: str = ""
    port: int = 22


@dataclass
class ClusterState:
    """What one cluster's runs have created (mutable; saved after every change)."""

    cluster: str
    region: str
    run_id: str
    expires_at: str = ""
    ami_id: str = ""
    key_name: str = ""
    key_pair_id: str = ""
    security_group_id: str = ""
    instances: list[InstanceRecord] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    finished: bool = False

    def instance(self, instance_id: str) -> InstanceRecord | None:
        return next((i for i in self.instances if i.instance_id == instance_id), None)


def cluster_dir(state_dir: Path, cluster: str) -> Path:
    return state_dir / cluster


def state_path(state_dir: Path, cluster: str) -> Path:
    return cluster_dir(state_dir, cluster) / "state.json"


def load_state(state_dir: Path, cluster: str) -> ClusterState | None:
    """The saved state, or None when this machine never ran ``up`` for the cluster."""
    path = state_path(state_dir, cluster)
    if not path.exists():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        instances = [InstanceRecord(**i) for i in data.pop("instances", [])]
        data.pop("version", None)
        return ClusterState(**data, instances=instances)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"unreadable state file ({exc}); move it away and run `provision "
            "down` to clean up by tags",
            file=str(path),
        ) from exc


def save_state(state_dir: Path, state: ClusterState) -> None:
    """Write the state with a temp file and ``os.replace``: a crash leaves the old or new file."""
    path = state_path(state_dir, state.cluster)
    make_private_dir(path.parent)
    text = json.dumps({"version": VERSION, **asdict(state)}, indent=2, sort_keys=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".state.", suffix=".json")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def forget_cluster(state_dir: Path, cluster: str) -> None:
    """Remove the cluster's local folder (state and private key) after a teardown."""
    shutil.rmtree(cluster_dir(state_dir, cluster), ignore_errors=True)
