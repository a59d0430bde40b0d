"""Where a run's time went, phase by phase (#25): a cold ``up`` from RunInstances to a
verified cluster, read from the run's own events.

Each phase ends at a mark: the cloud's progress ("waiting for instance running" ends
RunInstances, "waiting for SSH" ends pending -> running, the last "host key pinned" ends SSH
answering, ``docker_engine``'s "cloud-init done" after its wait for the user-data) and the
last result of a module on any host (``docker_engine``: Docker ready; ``docker_images``:
images in place; ``compose``/``docker_stack``: projects started; ``verify``: verified). A
phase is the time from the mark before it; a run that has no such mark (a warm run launches
nothing; the SSH install waits for no cloud-init) has no such phase.

>>> clock = PhaseClock(clock=iter([0.0, 1.5, 20.0]).__next__)   # doctest: +SKIP
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from provision.run.events import Event

__all__ = ["PHASES", "PhaseClock"]

#: (phase, what ends it): a cloud progress label, or "module:<name>" (its last result).
PHASES: tuple[tuple[str, str], ...] = (
    ("RunInstances", "waiting for instance running"),
    ("pending -> running", "waiting for SSH"),
    ("SSH answering", "host key pinned"),
    ("cloud-init done", "cloud-init done"),
    ("Docker ready", "module:docker_engine"),
    ("images in place", "module:docker_images"),
    ("projects started", "module:compose"),
    ("projects started", "module:docker_stack"),
    ("verified", "module:verify"),
)
_START = "launching instances"


class PhaseClock:
    """An event sink (chain it before the run's own) that notes when each phase ended."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._started: float | None = None
        self._ends: dict[str, float] = {}
        self._modules: dict[tuple[str, str], str] = {}  # (host, task) -> module

    def __call__(self, event: Event) -> None:
        mark = ""
        if event.kind == "progress":
            label = str(event.data.get("label", ""))
            mark = next((m for _, m in PHASES if label.startswith(m)), "")
            if label.startswith(_START) and self._started is None:
                with self._lock:
                    self._started = self._clock()
        elif event.kind == "task":
            self._modules[(event.host, event.task)] = str(event.data.get("module", ""))
        elif event.kind == "result" and event.data.get("status") != "skipped":
            mark = f"module:{self._modules.get((event.host, event.task), '')}"
        if mark and self._started is not None:
            with self._lock:
                self._ends[mark] = self._clock()  # the last host's

    def phases(self) -> list[tuple[str, float]]:
        """(phase, seconds) in order, from RunInstances; [] for a run that launched nothing."""
        if self._started is None:
            return []
        out: list[tuple[str, float]] = []
        before = self._started
        for name, mark in PHASES:
            end = self._ends.get(mark)
            if end is None or end < before:
                continue
            if out and out[-1][0] == name:  # compose and docker_stack: one phase
                out[-1] = (name, out[-1][1] + end - before)
            else:
                out.append((name, end - before))
            before = end
        return out
