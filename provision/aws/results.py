"""What the AWS layer hands back: frozen dataclasses, no I/O."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.models import HostSpec

OnEvent = Callable[[str, dict[str, Any]], None]
"""Progress callback: ``on_event("waiting for instance running", {"instance": "i-..."})``."""

EndpointFor = Callable[["Instance"], tuple[str, int]]
"""Maps an instance to the (address, port) to reach it over SSH; tests map moto to local hosts."""


def no_events(message: str, data: dict[str, Any]) -> None:
    """The default ``on_event``: drop progress messages."""


@dataclass(frozen=True)
class Timeouts:
    """How long each wait may take (seconds), and how often it polls."""

    running: float = 300.0
    status: float = 600.0  # both status checks ok (only with wait_status_checks)
    ssh: float = 300.0
    # cloud-init prints the key block some seconds into the boot, and GetConsoleOutput with
    # Latest=True shows it at once; without Latest the buffered output can stay empty for
    # minutes (up to 20 have been reported), so this bound is sized for a slow real boot.
    console: float = 240.0
    terminated: float = 600.0
    delete: float = 300.0
    poll: float = 5.0


DEFAULT_TIMEOUTS = Timeouts()


@dataclass(frozen=True)
class Instance:
    """One host of a cluster, as the SSH layer needs it."""

    name: str
    instance_id: str
    public_ip: str | None
    address: str
    port: int
    user: str
    key_file: Path | None
    host_key: str | None = None
    expires_at: str | None = None  # the provision:expires-at tag (UTC, ISO 8601)

    def to_host_spec(self) -> HostSpec:
        """This instance as the connection layer's ``HostSpec``."""
        return HostSpec(
            name=self.name,
            address=self.address,
            port=self.port,
            user=self.user,
            key_file=self.key_file,
            vars={"instance_id": self.instance_id, "public_ip": self.public_ip},
        )


@dataclass(frozen=True)
class ClusterResult:
    """What ``up`` stood up; ``created`` is empty when a re-run found everything in place."""

    cluster: str
    region: str
    instances: tuple[Instance, ...]
    security_group_id: str
    key_name: str
    ami_id: str
    created: tuple[str, ...] = ()
    run_id: str = ""

    @property
    def changed(self) -> bool:
        return bool(self.created)


@dataclass(frozen=True)
class TeardownResult:
    """What ``down`` removed; empty ``removed`` means there was nothing to do."""

    cluster: str
    region: str
    removed: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.removed)
