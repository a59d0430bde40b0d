"""The run lock on a host (``provision.run.host_lock``): its shell scripts run for real, through
the local connection, on a folder of the test's own (on a host the folder is
``/var/lib/provision/run.lock``; tests/faults/test_host_lock.py drives that one)."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from provision.connection.local import LocalConnection
from provision.errors import LockHeld
from provision.run import host_lock
from provision.run.host_lock import HostLock, break_host_lock, read_holder


def _lock(path: Path, command: str = "provision up") -> HostLock:
    return HostLock(LocalConnection(), "web1", command, path=str(path))


def _plant(path: Path, **record: object) -> None:
    path.mkdir(parents=True)
    (path / "holder.json").write_text(json.dumps(record))


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_second_run_is_refused_naming_the_holder_and_the_first_releases(tmp_path: Path):
    path = tmp_path / "var" / "run.lock"
    first = _lock(path)
    first.acquire(wait=0)
    holder = read_holder(LocalConnection(), str(path))
    assert holder is not None and holder.command == "provision up"
    with pytest.raises(LockHeld) as refused:
        _lock(path, "provision down").acquire(wait=0)
    msg = str(refused.value)
    assert not refused.value.stale
    assert msg.startswith(f"host 'web1' is locked by another run: pid {holder.pid} on "
                          f"{socket.gethostname()} (`provision up`, since ")  # fmt: skip
    assert "--lock-wait SECONDS" in msg and "provision unlock" in msg
    assert first.release() and not path.exists()


def test_release_removes_only_this_runs_lock(tmp_path: Path):
    path = tmp_path / "run.lock"
    mine = _lock(path)
    mine.acquire(wait=0)
    other = _lock(path)  # a run that never took it (another token)
    assert other.release()
    assert path.is_dir(), "another run's release removed a lock it does not hold"
    assert mine.release() and not path.exists()


def test_a_waiting_run_says_why_and_takes_the_lock_when_released(tmp_path: Path):
    path = tmp_path / "run.lock"
    first = _lock(path)
    first.acquire(wait=0)
    threading.Timer(1.0, first.release).start()
    said: list[str] = []
    started = time.monotonic()
    second = _lock(path, "provision down")
    second.acquire(wait=20, on_wait=said.append, poll=0.2)
    assert 0.8 < time.monotonic() - started < 10
    assert len(said) == 1 and said[0].startswith("waiting up to 20 s for the run lock: host 'web1'")
    assert read_holder(LocalConnection(), str(path)).command == "provision down"  # type: ignore[union-attr]
    assert second.release()


def test_a_wait_that_runs_out_is_refused(tmp_path: Path):
    path = tmp_path / "run.lock"
    _lock(path).acquire(wait=0)
    started = time.monotonic()
    with pytest.raises(LockHeld, match="is locked by another run"):
        _lock(path).acquire(wait=0.6, poll=0.2)
    assert time.monotonic() - started >= 0.6


@pytest.mark.parametrize(
    ("record", "why"),
    [
        ({"host": socket.gethostname()}, "pid {pid} is not running"),
        ({"host": "ci-runner-7", "started": time.time() - 7 * 3600},
         "taken on another machine more than 21600 s ago"),
    ],
)  # fmt: skip
def test_a_stale_lock_is_reported_and_left_until_unlock_breaks_it(
    tmp_path: Path, record: dict[str, object], why: str
):
    path = tmp_path / "run.lock"
    pid = _dead_pid()
    _plant(path, **{"pid": pid, "command": "provision up", "started": time.time(),
                    "token": "t", **record})  # fmt: skip
    with pytest.raises(LockHeld) as refused:
        _lock(path).acquire(wait=30)  # no waiting for a holder that is gone
    assert refused.value.stale
    assert f"host 'web1' has a stale run lock {path}: held by pid {pid} on " in str(refused.value)
    assert f"but {why.format(pid=pid)}; after checking, break it with `provision unlock`" in str(
        refused.value
    )
    assert path.is_dir()
    held = break_host_lock(LocalConnection(), str(path))
    assert held is not None and held.pid == pid and not path.exists()
    assert break_host_lock(LocalConnection(), str(path)) is None


def test_a_lock_without_a_record_is_stale_after_a_grace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    path = tmp_path / "run.lock"
    path.mkdir()  # its taker died between the mkdir and writing the record
    monkeypatch.setattr(host_lock, "_RECORD_GRACE", 0.5)
    with pytest.raises(LockHeld, match="but the lock has no holder record") as refused:
        _lock(path).acquire(wait=0)
    assert refused.value.stale


def test_a_record_written_late_is_waited_for_not_called_stale(tmp_path: Path):
    path = tmp_path / "run.lock"
    path.mkdir()  # another run is between its mkdir and its record

    def record() -> None:
        held = {"pid": 1, "host": "ci-runner-7", "command": "provision up", "started": time.time()}
        (path / "holder.json").write_text(json.dumps(held))

    threading.Timer(0.5, record).start()
    with pytest.raises(LockHeld, match="pid 1 on ci-runner-7") as refused:
        _lock(path).acquire(wait=0)
    assert not refused.value.stale
