"""provision: stand up, prove and tear down an OpenResty + Redis service-discovery cluster.

The public API (everything else is private)::

    from provision import Cluster, Options, up, down, verify

    report = up("inventory/aws.yml", Options(extra_vars={"cluster_name": "ci-42"}))
    assert not report.failed and all(c.passed for c in report.checks)
    down("inventory/aws.yml", Options(extra_vars={"cluster_name": "ci-42"}))

Names are imported on first use, so that ``import provision`` (and ``provision --help``) stays
fast: boto3 and paramiko load only when a run needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from provision import errors as _errors

if TYPE_CHECKING:
    from provision.api import Cluster, down, run_playbook, up, verify
    from provision.errors import (
        CloudError,
        ClusterFailed,
        CommandError,
        ConfigError,
        ConnectError,
        EngineUnavailable,
        Interrupted,
        LockHeld,
        ProvisionError,
        RouteError,
        SandboxError,
        TaskError,
        VerifyError,
    )
    from provision.models import CheckResult, HostSpec, Result, Status, TaskResult
    from provision.run.events import Event
    from provision.run.options import Options
    from provision.run.report import HostRecap, RunReport


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("provision")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "0+unknown"


#: The installed distribution's version (``pip show provision``).
__version__: str = _version()

__all__ = [
    "CheckResult",
    "CloudError",
    "Cluster",
    "ClusterFailed",
    "CommandError",
    "ConfigError",
    "ConnectError",
    "EngineUnavailable",
    "Event",
    "HostRecap",
    "HostSpec",
    "Interrupted",
    "LockHeld",
    "Options",
    "ProvisionError",
    "Result",
    "RouteError",
    "RunReport",
    "SandboxError",
    "Status",
    "TaskError",
    "TaskResult",
    "VerifyError",
    "__version__",
    "down",
    "run_playbook",
    "up",
    "verify",
]

_HOMES = {
    "provision.api": ("Cluster", "down", "run_playbook", "up", "verify"),
    "provision.run.options": ("Options",),
    "provision.errors": tuple(_errors.__all__),  # light: no third-party import
    "provision.run.events": ("Event",),
    "provision.models": ("CheckResult", "HostSpec", "Result", "Status", "TaskResult"),
    "provision.run.report": ("HostRecap", "RunReport"),
}
_WHERE = {name: module for module, names in _HOMES.items() for name in names}


if not TYPE_CHECKING:  # a type checker sees only the names above: a misspelt one is an error

    def __getattr__(name: str) -> Any:
        module = _WHERE.get(name)
        if module is None:
            raise AttributeError(f"module 'provision' has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
