"""The report of a run: the recap per host, every task result, the verification checks."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from provision.models import CheckResult, Status, TaskResult

__all__ = ["HostRecap", "RunReport"]


@dataclass
class HostRecap:
    ok: int = 0
    changed: int = 0
    failed: int = 0
    skipped: int = 0
    unreachable: int = 0
    ignored: int = 0  # failed tasks with ``ignore_errors: true``, as Ansible's recap counts them
    rescued: int = 0  # failed tasks in a block whose ``rescue`` ran next, as Ansible counts them


@dataclass
class RunReport:
    """Filled in by the runner while it runs; read by the CLI and the Python API."""

    results: list[TaskResult] = field(default_factory=list)
    recap: dict[str, HostRecap] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)
    #: where a run that launched instances spent its time (``provision.run.phases``)
    phases: list[tuple[str, float]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        """Picklable (another process may read a run's report: the pytest plugin's xdist
        workers): everything but the lock, made anew on the other side."""
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _lock=threading.Lock())

    def add(self, result: TaskResult) -> None:
        with self._lock:
            self.results.append(result)
            recap = self.recap.setdefault(result.host, HostRecap())
            setattr(recap, result.status.value, getattr(recap, result.status.value) + 1)
            if result.status is Status.FAILED:
                self.errors.setdefault(result.host, f"{result.task}: {result.msg}")
            self._collect(result)

    def _collect(self, result: TaskResult) -> None:
        """The cloud's resources, from the cloud modules' results (hosts, ids, the URL)."""
        for key in ("hosts", "created", "removed"):
            values = result.data.get(key)
            if isinstance(values, list) and result.module.startswith("ec2_"):
                known = self.resources.setdefault(key, [])
                known.extend(str(v) for v in values if str(v) not in known)
        if result.data.get("url"):
            self.resources["url"] = str(result.data["url"])

    def unreachable(self, host: str, msg: str) -> None:
        with self._lock:
            self.recap.setdefault(host, HostRecap()).unreachable += 1
            self.errors[host] = msg

    def phase_rows(self) -> list[dict[str, Any]]:
        """``phases`` as the JSON report and the ``phases`` event give them."""
        return [{"phase": name, "seconds": round(s, 2)} for name, s in self.phases]

    @property
    def failed(self) -> bool:
        return any(r.failed or r.unreachable for r in self.recap.values())

    @property
    def changed(self) -> int:
        return sum(r.changed for r in self.recap.values())

    @property
    def checks(self) -> list[CheckResult]:
        return [c for r in self.results for c in r.checks]

    def to_dict(self) -> dict[str, Any]:
        """The JSON report (schema: ``provision/run/report.schema.json``)."""
        return {
            "ok": not self.failed,
            "recap": {h: asdict(r) for h, r in sorted(self.recap.items())},
            "tasks": [
                {
                    "host": r.host,
                    "task": r.task,
                    "module": r.module,
                    "status": r.status.value,
                    "msg": r.msg,
                    "elapsed": r.elapsed,
                    "commands": list(r.commands),
                    **({"diff": r.diff} if r.diff else {}),
                }
                for r in self.results
            ],
            "checks": [{"host": r.host, **asdict(c)} for r in self.results for c in r.checks],
            "errors": dict(self.errors),
            "resources": self.resources,
            "phases": self.phase_rows(),
        }
