"""Events a run emits as it goes, for progress displays and JSON-lines streams."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Event", "EventSink"]


@dataclass(frozen=True)
class Event:
    """``kind``: play, task, result, progress, connect, unreachable, wait, info."""

    kind: str
    host: str = ""
    task: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.kind, "time": round(self.time, 3)}
        if self.host:
            out["host"] = self.host
        if self.task:
            out["task"] = self.task
        out.update(self.data)
        return out


EventSink = Callable[[Event], None]
