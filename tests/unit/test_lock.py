"""The cluster run lock (provision/run/lock.py): real directories, real processes, and the real
CLI (``provision up`` refused before any cloud call, ``provision unlock``)."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from provision.errors import LockHeld
from provision.run.lock import Holder, RunLock, pid_alive
from tests.clirun import provision_cli as _cli


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _plant(path: Path, holder: Holder) -> None:
    path.mkdir(parents=True)
    (path / "holder.json").write_text(json.dumps(holder.__dict__))


def _take(lock: RunLock, **kw: Any) -> None:
    with lock.acquire(**kw):
        pass


def test_acquire_records_the_holder_and_release_removes_the_lock(tmp_path: Path) -> None:
    lock = RunLock(tmp_path / "c" / "run.lock", "c")
    with lock.acquire(wait=0, command="provision up") as mine:
        held = lock.holder()
        assert held == mine
        assert (held.pid, held.host, held.command) == (
            os.getpid(),
            socket.gethostname(),
            "provision up",
        )
        assert abs(held.started - time.time()) < 5
    assert lock.holder() is None
    assert not lock.path.exists()


def test_a_second_run_is_refused_at_once_naming_the_holder(tmp_path: Path) -> None:
    lock = RunLock(tmp_path / "run.lock", "demo")
    with lock.acquire(wait=0, command="provision up -i x.yml"):
        start = time.monotonic()
        with pytest.raises(LockHeld) as caught:
            _take(RunLock(lock.path, "demo"), wait=0, command="provision down")
        assert time.monotonic() - start < 1
    msg = str(caught.value)
    assert msg.startswith("cluster 'demo' is locked by another run: pid ")
    assert f"pid {os.getpid()} on {socket.gethostname()} (`provision up -i x.yml`" in msg
    assert "--lock-wait SECONDS" in msg and "provision unlock" in msg
    assert not caught.value.stale


def test_lock_wait_waits_for_the_release_and_says_why(tmp_path: Path) -> None:
    path = tmp_path / "run.lock"
    first = RunLock(path, "demo").acquire(wait=0, command="provision up")
    first.__enter__()
    timer = threading.Timer(0.6, first.__exit__, (None, None, None))
    timer.start()
    said: list[str] = []
    start = time.monotonic()
    with RunLock(path, "demo").acquire(
        wait=10, command="provision up", on_wait=said.append, poll=0.05
    ) as mine:
        assert 0.5 < time.monotonic() - start < 5
        assert mine.pid == os.getpid()
    timer.join()
    assert len(said) == 1 and said[0].startswith("waiting up to 10 s for the run lock: ")


def test_lock_wait_gives_up_at_its_deadline(tmp_path: Path) -> None:
    path = tmp_path / "run.lock"
    with RunLock(path, "demo").acquire(wait=0, command="provision up"):
        start = time.monotonic()
        with pytest.raises(LockHeld, match="locked by another run"):
            _take(RunLock(path, "demo"), wait=0.4, command="provision up", poll=0.05)
        assert 0.35 < time.monotonic() - start < 3
    assert not path.exists()


def test_a_lock_whose_pid_is_dead_is_reported_stale_and_never_broken_by_a_run(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.lock"
    pid = _dead_pid()
    assert not pid_alive(pid)
    _plant(path, Holder(pid, socket.gethostname(), "provision up", time.time() - 30))
    start = time.monotonic()
    with pytest.raises(LockHeld) as caught:
        _take(RunLock(path, "demo"), wait=30, command="provision up")
    assert time.monotonic() - start < 2  # stale: no use waiting
    assert caught.value.stale
    assert f"held by pid {pid} on {socket.gethostname()}" in str(caught.value)
    assert f"but pid {pid} is not running; after checking, break it with `provision unlock`" in (
        str(caught.value)
    )
    assert RunLock(path, "demo").holder() is not None  # still there


def test_a_lock_of_another_machine_is_stale_only_after_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "run.lock"
    _plant(path, Holder(1, "ci-runner-7", "provision up", time.time() - 100))
    with pytest.raises(LockHeld) as recent:
        _take(RunLock(path, "demo", stale_after=3600), wait=0, command="x")
    assert not recent.value.stale and "pid 1 on ci-runner-7" in str(recent.value)
    with pytest.raises(LockHeld) as old:
        _take(RunLock(path, "demo", stale_after=60), wait=0, command="x")
    assert old.value.stale
    assert "taken on another machine more than 60 s ago" in str(old.value)


def test_a_lock_with_no_holder_record_is_stale_after_a_grace(tmp_path: Path) -> None:
    path = tmp_path / "run.lock"
    path.mkdir()
    old = time.time() - 60
    os.utime(path, (old, old))
    with pytest.raises(LockHeld, match="the lock has no holder record") as caught:
        _take(RunLock(path, "demo"), wait=0, command="x")
    assert caught.value.stale


def _contend(path: str, barrier: Any, out: Any) -> None:
    barrier.wait()
    try:
        with RunLock(Path(path), "demo").acquire(wait=0, command=f"p{os.getpid()}"):
            out.put(("won", os.getpid()))
            time.sleep(1.0)
    except LockHeld as exc:
        out.put(("refused", str(exc)))


def test_of_processes_racing_for_the_lock_exactly_one_wins(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    n = 6
    barrier, out = ctx.Barrier(n), ctx.Queue()
    procs = [
        ctx.Process(target=_contend, args=(str(tmp_path / "run.lock"), barrier, out))
        for _ in range(n)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in range(n)]
    for p in procs:
        p.join(timeout=30)
    won = [r for r in results if r[0] == "won"]
    refused = [r for r in results if r[0] == "refused"]
    assert len(won) == 1 and len(refused) == n - 1
    assert all(f"pid {won[0][1]} on " in r[1] for r in refused)
    assert not (tmp_path / "run.lock").exists()


# -- through the CLI ------------------------------------------------------------------------
def test_cli_up_and_down_are_refused_while_another_run_holds_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "state" / "sandbox" / "run.lock"
    with RunLock(path, "sandbox").acquire(wait=0, command="provision up (the first)"):
        for verb in ("up", "down"):
            done = _cli(verb, "--state-dir", "state", cwd=tmp_path)
            assert done.returncode == 1, done.stderr
            assert done.stderr.startswith(
                f"error: cluster 'sandbox' is locked by another run: pid {os.getpid()} on "
            ), done.stderr
            assert "(`provision up (the first)`" in done.stderr
            assert "PLAY" not in done.stdout  # refused before any play started
        assert sorted(p.name for p in (tmp_path / "state" / "sandbox").iterdir()) == ["run.lock"]


def test_cli_lock_wait_is_checked_as_input(tmp_path: Path) -> None:
    done = _cli("up", "--lock-wait", "nan", "--state-dir", "state", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: --lock-wait: must be a number of seconds from 0 to 86400, got nan"
    )
    assert not (tmp_path / "state").exists()


def test_cli_unlock_breaks_a_stale_lock_and_refuses_a_live_one(
    empty_docker_engine, tmp_path: Path
) -> None:
    path = tmp_path / "state" / "sandbox" / "run.lock"
    pid = _dead_pid()
    _plant(path, Holder(pid, socket.gethostname(), "provision up", time.time()))
    done = _cli("unlock", "--state-dir", "state", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(
        f"broke the run lock of cluster 'sandbox': it was held by pid {pid} on "
    )
    assert not path.exists()

    again = _cli("unlock", "--state-dir", "state", cwd=tmp_path)
    assert (again.returncode, again.stderr.strip()) == (0, "cluster 'sandbox' is not locked")

    with RunLock(path, "sandbox").acquire(wait=0, command="provision up"):
        live = _cli("unlock", "--state-dir", "state", cwd=tmp_path)
        assert live.returncode == 1
        assert "which still runs; wait for it, or give --force" in live.stderr
        assert path.exists()
        forced = _cli("unlock", "--force", "--state-dir", "state", cwd=tmp_path)
        assert forced.returncode == 0 and not path.exists()


def test_cli_play_holds_the_cluster_s_run_lock_and_none_off_a_cluster(tmp_path: Path) -> None:
    """`play` ran unlocked (#28): `provision play playbooks/up.yml` beside an `up` of the same
    cluster. It now takes the run lock as up and down do; a playbook for hosts that name no
    cluster takes none."""
    book = tmp_path / "say.yml"
    book.write_text("- hosts: localhost\n  gather_facts: false\n  tasks:\n"
                    "    - debug: {msg: hi}\n")  # fmt: skip
    path = tmp_path / "state" / "sandbox" / "run.lock"
    with RunLock(path, "sandbox").acquire(wait=0, command="provision up"):
        held = _cli("play", str(book), "--state-dir", "state", cwd=tmp_path)
        assert held.returncode == 1, held.stderr
        assert "is locked by another run: pid" in held.stderr, held.stderr
        local = tmp_path / "local.yml"
        local.write_text("all:\n  hosts:\n    localhost: {ansible_connection: local}\n")
        free = _cli("play", str(book), "-i", str(local), "--state-dir", "state", cwd=tmp_path)
        assert free.returncode == 0, free.stderr
    done = _cli("play", str(book), "--state-dir", "state", cwd=tmp_path)
    assert done.returncode == 0, done.stderr


def test_cli_unlock_json_says_what_it_broke(empty_docker_engine, tmp_path: Path) -> None:
    """--json was accepted and ignored (#28): it now prints what was broken, as JSON."""
    path = tmp_path / "state" / "sandbox" / "run.lock"
    pid = _dead_pid()
    _plant(path, Holder(pid, socket.gethostname(), "provision up", time.time()))
    done = _cli("unlock", "--json", "--state-dir", "state", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["cluster"] == "sandbox" and summary["unreachable"] == []
    (broken,) = summary["broken"]
    assert broken["host"] is None and broken["pid"] == pid and broken["command"] == "provision up"
    again = json.loads(_cli("unlock", "--json", "--state-dir", "state", cwd=tmp_path).stdout)
    assert again == {"cluster": "sandbox", "broken": [], "unreachable": []}


def test_extra_vars_values_stay_out_of_the_lock_record_and_the_refusal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """#26 hole 3: a secret given with -e was written to the lock's record (holder.json, and
    each host's run.lock) and printed by the next run's refusal. The run's own task copies
    the record while the lock is held; the second run is refused with the holder named."""
    from provision.api import Options, run_playbook

    state = tmp_path / "state"
    seen = tmp_path / "seen.json"
    refusal = tmp_path / "refusal.txt"
    lock = state / "sandbox" / "run.lock"
    book = tmp_path / "play.yml"
    book.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        f"    - command: {{argv: [cp, '{lock}/holder.json', '{seen}']}}\n"
        f"    - command: {{argv: [sh, -c, 'cd {tmp_path} && {sys.executable} -m provision.cli"
        f" up --state-dir state > /dev/null 2> {refusal} || true']}}\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[2]))
    argv = ["provision", "play", str(book), "-e", "redis_password=hunter2 cluster_name=sandbox",
            '--extra-vars={"token": "s3cr3t"}', "-eapi_key=abc123", "-e", "@vars.yml"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    report = run_playbook(book, None, Options(state_dir=state), lock_wait=0)
    assert not report.failed, report.errors
    record = json.loads(seen.read_text())["command"]
    assert record == (
        f"provision play {book} -e redis_password=… cluster_name=… --extra-vars=… "
        "-eapi_key=… -e @vars.yml"
    )
    told = refusal.read_text()
    assert "is locked by another run" in told and "redis_password=…" in told, told
    for secret in ("hunter2", "s3cr3t", "abc123"):
        assert secret not in record and secret not in told
