"""Plain data that flows through provision: frozen dataclasses, no I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CheckResult",
    "HostSpec",
    "Result",
    "Status",
    "TaskResult",
]


@dataclass(frozen=True)
class Result:
    """What one command on a host gave back (like Fabric's ``Result``)."""

    command: str
    exit_code: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def failed(self) -> bool:
        return not self.ok


@dataclass(frozen=True)
class HostSpec:
    """How to reach one host over SSH, and its variables."""

    name: str
    address: str
    port: int = 22
    user: str = "admin"
    key_file: Path | None = None
    vars: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def target(self) -> str:
        return f"{self.user}@{self.address}:{self.port}"


class Status(str, enum.Enum):
    OK = "ok"
    CHANGED = "changed"
    FAILED = "failed"
    SKIPPED = "skipped"
    IGNORED = "ignored"  # failed under ``ignore_errors: true``: the run goes on (Ansible's)
    RESCUED = "rescued"  # failed in a block whose ``rescue`` runs next (Ansible's recap)


@dataclass(frozen=True)
class CheckResult:
    """One verification check and the evidence gathered for it."""

    name: str
    passed: bool
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskResult:
    """What one task did on one host."""

    host: str
    task: str
    module: str
    status: Status
    msg: str = ""
    diff: str = ""
    commands: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)
    checks: tuple[CheckResult, ...] = ()
    elapsed: float = 0.0
