"""The exceptions provision raises.

Every error the library raises on purpose is a ``ProvisionError``; errors of the
libraries underneath (boto3, paramiko, yaml, redis) are translated at the module
that owns that library, with ``raise ... from exc``::

    ProvisionError
    ├── ConfigError            bad input: playbook, inventory, argument, name (file:line:col, field)
    ├── CloudError             an AWS call failed (carries AWS's error code)
    ├── ConnectError           a host could not be reached or authenticated over SSH
    │   └── EngineUnavailable  the local Docker engine (the sandbox's) cannot be used
    ├── CommandError           a command on a host exited non-zero (carries the Result)
    ├── TaskError              a task could not do its work on a host (names the host or object)
    ├── SandboxError           the local sandbox (images, seed volumes, hosts) could not be made
    ├── RouteError             the route table in Redis could not be read or written
    ├── VerifyError            a verification check did not hold
    ├── ClusterFailed          ``Cluster`` could not bring the cluster up or tear it down
    ├── Interrupted            the user pressed Ctrl-C; the message says how to resume or tear down
    └── LockHeld               another run holds the cluster's run lock (names the holder)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from provision.models import Result
    from provision.run.report import RunReport

__all__ = [
    "CloudError",
    "ClusterFailed",
    "CommandError",
    "ConfigError",
    "ConnectError",
    "EngineUnavailable",
    "Interrupted",
    "LockHeld",
    "ProvisionError",
    "RouteError",
    "SandboxError",
    "TaskError",
    "VerifyError",
]


class ProvisionError(Exception):
    """The root of every error provision raises on purpose."""


class ConfigError(ProvisionError):
    """Bad input, found before any host or cloud call.

    >>> str(ConfigError("unknown module 'dockr'", file="up.yml", line=3, column=7,
    ...                 field="tasks[0]"))
    "up.yml:3:7: tasks[0]: unknown module 'dockr'"
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.field = field
        super().__init__(self._render())

    def _render(self) -> str:
        where = ""
        if self.file:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        field = f"{self.field}: " if self.field else ""
        return f"{where}{field}{self.message}"


class CloudError(ProvisionError):
    """An AWS call failed; ``code`` is AWS's error code when there is one."""

    def __init__(self, message: str, *, code: str | None = None, operation: str | None = None):
        self.code = code
        self.operation = operation
        prefix = f"{operation}: " if operation else ""
        suffix = f" ({code})" if code else ""
        super().__init__(f"{prefix}{message}{suffix}")


class ConnectError(ProvisionError):
    """A host could not be reached, or refused our key or its host key did not match."""

    def __init__(self, message: str, *, host: str) -> None:
        self.host = host
        self.message = message
        super().__init__(f"{host}: {message}")


class CommandError(ProvisionError):
    """A command exited non-zero. ``result`` holds its output."""

    def __init__(self, result: Result, *, host: str = "") -> None:
        self.result = result
        self.host = host
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        where = f"{host}: " if host else ""
        super().__init__(
            f"{where}command failed with exit code {result.exit_code}: {result.command}\n{tail}"
        )


class EngineUnavailable(ConnectError):
    """The local Docker engine cannot be used: no ``docker`` binary, or no daemon."""

    def __init__(self, message: str) -> None:
        super().__init__(message, host="local docker")


class TaskError(ProvisionError):
    """A task could not do its work on a host: what it found there is not what it needs (an
    image missing after its load, a swarm that will not form, a stack that does not converge).
    The message names the host or the object; the runner marks the task failed."""


class SandboxError(ProvisionError):
    """The local sandbox could not be made: its images, its seed volumes, its host containers."""


class RouteError(ProvisionError):
    """Redis could not be reached through the tunnel, refused us, or failed a command."""


class ClusterFailed(ProvisionError):
    """``Cluster`` could not bring the cluster up (or tear it down); ``report`` says where."""

    def __init__(self, report: RunReport, what: str = "up failed") -> None:
        self.report = report
        super().__init__(f"{what}: " + "; ".join(f"{h}: {e}" for h, e in report.errors.items()))


class VerifyError(ProvisionError):
    """A verification check did not hold."""


class Interrupted(ProvisionError):
    """The run was interrupted; the message says how to resume or tear down."""


class LockHeld(ProvisionError):
    """Another run holds the cluster's run lock (or a stale lock was left); the message names
    the holder and says how to wait for it or break it."""

    def __init__(self, message: str, *, stale: bool = False) -> None:
        self.stale = stale
        super().__init__(message)
