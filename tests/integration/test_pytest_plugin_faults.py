"""The pytest plugin when the session goes wrong, as a user has it (the wheel in a fresh venv,
a subprocess pytest run): ``pytest -x`` stopping at a failure, Ctrl-C in the middle of a test,
an ``up`` that fails halfway (hosts made, Redis not started), and a teardown that fails. In
each case the session ends with nothing left (no container, volume, network, moto server),
except the failed teardown, which fails the session loudly, says what to run, and leaves the
cluster for that command."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from provision.sandbox import cloud
from provision.sandbox.moto_server import stop_server
from tests.helpers import alive_moto, left_behind, sigint_default
from tests.wheel import run_ok

pytestmark = [pytest.mark.integration, pytest.mark.own_cluster]

USER_TESTS = """
import json, os, time
from pathlib import Path

def _record(cluster):
    server = Path(".provision/_sandbox-cloud/moto/server.json").read_text()
    Path(os.environ["PLUGIN_RECORD"]).write_text(server)

def test_first(provision_cluster):
    _record(provision_cluster)
    mode = os.environ["MODE"]
    if mode == "x":
        assert False, "the first test fails"
    if mode == "interrupt":
        Path("ready").write_text(str(os.getpid()))
        time.sleep(600)  # Ctrl-C comes here
    if mode == "lock":  # another run (this live process) holds the cluster's run lock
        lock = Path(".provision") / os.environ["CLUSTER"] / "run.lock"
        lock.mkdir()
        (lock / "holder.json").write_text(json.dumps({
            "pid": os.getpid(), "host": os.uname().nodename, "command": "provision up",
            "started": time.time()}))

def test_second(provision_cluster):
    Path("second-ran").write_text("yes")
"""


@pytest.fixture
def venv(installed_package: tuple[Path, dict[str, str]], sandbox_images: object):
    return installed_package


@pytest.fixture
def project(tmp_path: Path, venv: tuple[Path, dict[str, str]]) -> Iterator[Path]:
    bindir, env = venv
    project = tmp_path / "user"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "test_with_cluster.py").write_text(USER_TESTS)
    yield project
    for lock in (project / ".provision").glob("*/run.lock"):  # case 4's, its holder gone
        name = lock.parent.name
        run_ok([str(bindir / "provision"), "unlock", "--force", "-e", f"cluster_name={name}"],
               project, env, timeout=120)  # fmt: skip
    for state in (project / ".provision").glob("plug-*"):  # whatever happened: removed
        run_ok([str(bindir / "provision"), "down", "-e", f"cluster_name={state.name}"],
               project, env, timeout=600)  # fmt: skip
        cloud.remove_cluster(state.name)
    stop_server(cloud.sandbox_dir(project / ".provision"), forget=True)


def _argv(venv: tuple[Path, dict[str, str]], name: str, *args: str) -> list[str]:
    return [str(venv[0] / "python"), "-m", "pytest", "-p", "no:cacheprovider", "-rA",
            "--provision-extra-vars", f"cluster_name={name}", *args]  # fmt: skip


def _env(venv: tuple[Path, dict[str, str]], project: Path, mode: str, name: str):
    return {**venv[1], "MODE": mode, "CLUSTER": name, "PLUGIN_RECORD": str(project / "rec")}


def _pytest(venv, project: Path, mode: str, name: str, *args: str,
            drop: tuple[str, ...] = ()):  # fmt: skip
    env = {k: v for k, v in _env(venv, project, mode, name).items() if k not in drop}
    return subprocess.run(_argv(venv, name, *args), cwd=project, env=env, capture_output=True,
                          text=True, timeout=900, check=False)  # fmt: skip


def _nothingleft_behind(project: Path, name: str) -> None:
    assert left_behind(name) == []
    record = project / "rec"
    if record.exists():  # the moto server the session started is gone with it
        assert not alive_moto(int(json.loads(record.read_text())["pid"]))
    assert not (cloud.sandbox_dir(project / ".provision") / "moto" / "server.json").exists()


def _name() -> str:
    return f"plug-{uuid.uuid4().hex[:6]}"


def test_pytest_x_stops_at_the_first_failure_and_tears_down(venv, project: Path):
    name = _name()
    done = _pytest(venv, project, "x", name, "-x")
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "1 failed" in out and "the first test fails" in out and "passed" not in out, out
    assert not (project / "second-ran").exists(), "-x ran on after the failure"
    assert "cluster up and verified in" in out and "cluster torn down (end of session)" in out
    _nothingleft_behind(project, name)


def test_ctrl_c_in_a_test_tears_down(venv, project: Path):
    name = _name()
    env = _env(venv, project, "interrupt", name)
    run = subprocess.Popen(_argv(venv, name), cwd=project, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True,
                           preexec_fn=sigint_default)  # fmt: skip
    try:
        deadline = time.monotonic() + 600
        while not (project / "ready").exists() and run.poll() is None:
            assert time.monotonic() < deadline, "the test never started"
            time.sleep(0.5)
        assert run.poll() is None, run.communicate()
        os.kill(run.pid, signal.SIGINT)  # what Ctrl-C sends to the foreground process
        out, err = run.communicate(timeout=600)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 2, out + err  # pytest's "interrupted"
    assert "KeyboardInterrupt" in out, out
    assert "cluster torn down (end of session)" in out, out
    assert not (project / "second-ran").exists()
    _nothingleft_behind(project, name)


def test_an_up_that_fails_halfway_is_torn_down_and_errors_the_tests(venv, project: Path):
    # The sandbox hosts cannot pull: without the images sent, Redis does not start, after
    # the instance, Docker, the network and the uploads were made (so the hosts start
    # without the images preloaded).
    name = _name()
    done = _pytest(venv, project, "pass", name, "--provision-extra-vars", "transfer_images=false",
                   drop=(cloud.PRELOADED_ENV,))  # fmt: skip
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "2 errors" in out and "provision_cluster: up failed" in out, out
    assert "cluster torn down (setup failed)" in out, out
    assert not (project / "second-ran").exists()
    _nothingleft_behind(project, name)


def test_a_failing_teardown_fails_the_session_loudly(venv, project: Path):
    name = _name()
    done = _pytest(venv, project, "lock", name)
    out = done.stdout
    assert done.returncode == 1, out + done.stderr  # the tests passed; the teardown did not
    assert "2 passed" in out and "1 error" in out, out
    assert f"TEARDOWN FAILED (end of session): cluster '{name}' is locked by another run" in out
    assert left_behind(name), "the cluster is gone: the teardown did not fail"
    hint = out.rsplit("remove it by hand: ", 1)[1].splitlines()[0]  # the summary, last
    assert hint == f"provision down -e cluster_name={name}", hint
    # The holder (that session) is gone now: unlock names it, and the hint's command removes all.
    bindir, env = venv
    unlocked = run_ok([str(bindir / "provision"), "unlock", "-e", f"cluster_name={name}"],
                      project, env)  # fmt: skip
    assert "broke the run lock of cluster" in unlocked.stdout, unlocked.stdout
    argv = shlex.split(hint)
    run_ok([str(bindir / argv[0]), *argv[1:]], project, env, timeout=600)
    _nothingleft_behind(project, name)
