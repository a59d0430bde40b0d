"""Where a cold run's time went: the phases read from a run's events (#25)."""

from __future__ import annotations

from provision.run.events import Event
from provision.run.phases import PhaseClock


def test_a_cold_run_s_phases_from_its_events() -> None:
    ticks = iter([0.0, 1.0, 19.0, 22.0, 40.0, 41.0, 45.0, 47.0, 52.0])
    clock = PhaseClock(clock=lambda: next(ticks))
    progress = ["launching instances", "waiting for instance running", "waiting for SSH",
                "host key pinned"]  # fmt: skip
    for label in progress:
        clock(Event("progress", host="localhost", data={"label": label}))
    tasks = (("Docker", "docker_engine"), ("Images", "docker_images"), ("Redis", "compose"),
             ("Echo", "compose"), ("Verify", "verify"))  # fmt: skip
    for task, module in tasks:
        clock(Event("task", host="c-1", task=task, data={"module": module}))
        clock(Event("result", host="c-1", task=task, data={"status": "ok"}))
    assert clock.phases() == [
        ("RunInstances", 1.0), ("pending -> running", 18.0), ("SSH answering", 3.0),
        ("Docker ready", 18.0), ("images in place", 1.0), ("projects started", 6.0),
        ("verified", 5.0),
    ]  # fmt: skip


def test_cloud_init_done_is_a_phase_where_the_run_waited_for_it() -> None:
    """With the user-data, ``docker_engine`` waits for cloud-init (its progress "cloud-init
    done"): the wait is a phase of its own, and Docker ready is what came after it."""
    ticks = iter([0.0, 1.0, 19.0, 22.0, 60.0, 61.0])
    clock = PhaseClock(clock=lambda: next(ticks))
    for label in ("launching instances", "waiting for instance running", "waiting for SSH",
                  "host key pinned"):  # fmt: skip
        clock(Event("progress", host="localhost", data={"label": label}))
    clock(Event("task", host="c-1", task="Docker", data={"module": "docker_engine"}))
    clock(Event("progress", host="c-1", data={"label": "cloud-init done"}))
    clock(Event("result", host="c-1", task="Docker", data={"status": "ok"}))
    assert clock.phases() == [
        ("RunInstances", 1.0), ("pending -> running", 18.0), ("SSH answering", 3.0),
        ("cloud-init done", 38.0), ("Docker ready", 1.0),
    ]  # fmt: skip


def test_a_run_that_launched_nothing_has_no_phases() -> None:
    clock = PhaseClock(clock=lambda: 1.0)
    clock(Event("task", host="h", task="Docker", data={"module": "docker_engine"}))
    clock(Event("result", host="h", task="Docker", data={"status": "ok"}))
    assert clock.phases() == []
