"""The dpkg lock wait of ``docker_engine``: who holds the lock is said, the deadline fails
naming the holder, an interrupted dpkg is finished first (a fake connection, a fake clock)."""

from __future__ import annotations

import pytest

from provision.errors import ProvisionError
from provision.models import Result
from provision.tasks.base import TaskContext
from provision.tasks.dpkg_lock import DpkgState, parse_probe, settle, wait_for_lock
from provision.tasks.facts import parse_host_facts
from tests.unit.fakes import DEBIAN12_BARE, DEBIAN13_DOCKER, FakeRemote, run

HELD = "holder=812 /usr/bin/python3 /usr/bin/unattended-upgrade\n"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _ctx(remote: FakeRemote, said: list[str]) -> TaskContext:
    return TaskContext(remote, become=True, progress=lambda label, _d, _t: said.append(label))


def _released_after(polls: int):
    count = {"n": 0}

    def answer(argv: list[str]) -> Result:
        count["n"] += 1
        return Result("probe", 0, HELD if count["n"] <= polls else "")

    return answer


def test_parse_probe():
    assert parse_probe("") == DpkgState()
    assert parse_probe(HELD + "interrupted=1\n") == DpkgState(
        "pid 812 (/usr/bin/python3 /usr/bin/unattended-upgrade)", True
    )
    assert parse_probe("holder=7 \nholder=9 dpkg\n").holder == "pid 7, pid 9 (dpkg)"


def test_a_free_lock_is_not_waited_for():
    remote, said, clock = FakeRemote(), [], Clock()
    state, left = wait_for_lock(
        _ctx(remote, said), 300, monotonic=clock.monotonic, sleep=clock.sleep
    )
    assert state == DpkgState() and left == 300 and said == [] and clock.now == 0


def test_the_wait_says_who_holds_the_lock_and_when_it_is_released():
    remote, said, clock = FakeRemote(), [], Clock()
    remote.answers.insert(0, ("lock-frontend", _released_after(3)))
    _, left = wait_for_lock(_ctx(remote, said), 300, monotonic=clock.monotonic, sleep=clock.sleep)
    assert said == [
        "waiting for the dpkg lock (up to 300 s), held by "
        "pid 812 (/usr/bin/python3 /usr/bin/unattended-upgrade)",
        "the dpkg lock was released",
    ]
    assert clock.now == 6 and left == 294


def test_the_deadline_fails_naming_the_holder():
    remote, said, clock = FakeRemote(), [], Clock()
    remote.answer("lock-frontend", HELD)
    with pytest.raises(ProvisionError) as caught:
        wait_for_lock(_ctx(remote, said), 5, monotonic=clock.monotonic, sleep=clock.sleep)
    assert str(caught.value) == (
        "docker_engine: the dpkg lock (/var/lib/dpkg/lock-frontend) is still held by "
        "pid 812 (/usr/bin/python3 /usr/bin/unattended-upgrade) after 5 s; run again once it "
        "is released (or raise dpkg_lock_timeout)"
    )
    assert clock.now == 5 and len(said) == 1


def test_an_interrupted_dpkg_is_configured_first():
    remote, said = FakeRemote(), []
    settle(_ctx(remote, said), DpkgState(interrupted=True))
    assert remote.commands() == ["env DEBIAN_FRONTEND=noninteractive dpkg --configure -a"]
    assert said == ["dpkg was interrupted by an earlier run: dpkg --configure -a"]
    settle(_ctx(remote, said), DpkgState())
    assert len(remote.commands()) == 1


def test_engine_install_finishes_an_interrupted_dpkg_before_apt():
    remote = FakeRemote()
    remote.answer(r"os_id", DEBIAN13_DOCKER)
    remote.answer(r"apt-cache show", "docker-compose\n")
    remote.answer("lock-frontend", "interrupted=1\n")
    outcome, _ = run(
        "docker_engine", {"lock_timeout": "20"}, remote, facts=parse_host_facts(DEBIAN12_BARE)
    )
    cmds = remote.commands()
    configure = cmds.index("env DEBIAN_FRONTEND=noninteractive dpkg --configure -a")
    update = next(i for i, c in enumerate(cmds) if c.endswith("DPkg::Lock::Timeout=20 update"))
    assert configure < update and outcome.changed


def test_the_apt_lists_lock_is_waited_for_too_and_named():
    """apt-daily's `apt-get update` at first boot holds /var/lib/apt/lists/lock, for which
    apt itself does not wait (`apt-get update` fails at once): the wait covers it, naming it
    (#21, defect 4; on the old code only the dpkg lock was probed: no wait)."""
    remote, said, clock = FakeRemote(), [], Clock()
    lists = "lock=/var/lib/apt/lists/lock\nholder=901 /usr/bin/apt-get -qq update\n"
    polls = {"n": 0}

    def answer(argv: list[str]) -> Result:
        polls["n"] += 1
        return Result("probe", 0, lists if polls["n"] <= 2 else "")

    remote.answers.insert(0, ("/var/lib/apt/lists/lock", answer))
    wait_for_lock(_ctx(remote, said), 300, monotonic=clock.monotonic, sleep=clock.sleep)
    assert said == [
        "waiting for the apt lists lock (up to 300 s), held by pid 901 (/usr/bin/apt-get -qq "
        "update)",
        "the apt lists lock was released",
    ]
    assert clock.now == 4
    remote.answers.insert(0, ("/var/cache/apt/archives/lock", Result("probe", 0,
        "lock=/var/cache/apt/archives/lock\nholder=902 apt-get install x\n")))  # fmt: skip
    held = r"the apt archives lock \(/var/cache/apt/archives/lock\) is still held by pid 902"
    with pytest.raises(ProvisionError, match=held + r" \(apt-get install x\) after 5 s"):
        wait_for_lock(_ctx(remote, said), 5, monotonic=clock.monotonic, sleep=clock.sleep)
