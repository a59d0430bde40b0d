"""The pytest plugin as a user has it: ``pip install`` the package (the wheel, in a fresh venv,
so the ``pytest11`` entry point is what loads the plugin), write a test that asks for
``provision_cluster``, run pytest. The fixture gives a verified sandbox cluster whose new
route is served; at the end of the session nothing is left (no container, volume, network,
moto server), also when a test failed; with ``--provision-keep`` the cluster stays up until
the ``provision down`` the summary names."""

from __future__ import annotations

import json
import shlex
import uuid
from pathlib import Path

import pytest

from provision.sandbox import cloud
from provision.sandbox.moto_server import stop_server
from tests.helpers import alive_moto, left_behind
from tests.wheel import run_ok

pytestmark = [pytest.mark.integration, pytest.mark.own_cluster]

USER_TESTS = """
import json, os, urllib.request
from pathlib import Path

def test_verified_cluster_serves_a_new_route(provision_cluster):
    report = provision_cluster.report
    assert not report.failed and report.checks and all(c.passed for c in report.checks)
    provision_cluster.routes.add("/plug", "plug", ["echo-a:80"])
    with urllib.request.urlopen(provision_cluster.url + "/plug/1", timeout=10) as reply:
        assert json.loads(reply.read())["instance"] == "echo-a"
    server = Path(".provision/_sandbox-cloud/moto/server.json").read_text()
    Path(os.environ["PLUGIN_RECORD"]).write_text(server)
    print("PRINTED-BY-THE-TEST")

def test_that_fails(provision_cluster):
    assert os.environ.get("FAIL_ONE") != "1", "a failing test in the session"
"""


@pytest.fixture
def user_project(tmp_path, sandbox_images, installed_package):
    bindir, env = installed_package
    project = tmp_path / "user"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "test_with_cluster.py").write_text(USER_TESTS)
    names: list[str] = []
    yield bindir, env, project, names
    for name in names:  # whatever happened: the clusters are removed
        run_ok([str(bindir / "provision"), "down", "-e", f"cluster_name={name}"], project, env,
               timeout=600)  # fmt: skip
        cloud.remove_cluster(name)
    stop_server(cloud.sandbox_dir(project / ".provision"), forget=True)


def _pytest(bindir: Path, env: dict[str, str], project: Path, *args: str, **extra: str):
    import subprocess

    return subprocess.run(
        [str(bindir / "python"), "-m", "pytest", "-p", "no:cacheprovider", "-rA", *args],
        cwd=project, env={**env, **extra}, capture_output=True, text=True, timeout=900,
        check=False,
    )  # fmt: skip


def test_plugin_keeps_the_cluster_on_request_and_names_the_command_that_removes_it(
    user_project,
):
    """(A failed test's session tearing down is in test_pytest_plugin_faults.py, ``-x``.)"""
    bindir, env, project, names = user_project
    record = project / "record.json"

    # --provision-keep: the cluster stays up; the summary's command removes it
    name = f"plug-{uuid.uuid4().hex[:6]}"
    names.append(name)
    done = _pytest(bindir, env, project, "--provision-keep",
                   "--provision-extra-vars", f"cluster_name={name}",
                   PLUGIN_RECORD=str(record))  # fmt: skip
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "2 passed" in out, out
    assert left_behind(name), "--provision-keep left nothing up"
    hint = out.split("remove it: ", 1)[1].splitlines()[0]
    assert hint == f"provision down -e cluster_name={name}", hint
    argv = shlex.split(hint)
    run_ok([str(bindir / argv[0]), *argv[1:]], project, env, timeout=600)
    assert left_behind(name) == []
    moto_pid = int(json.loads(record.read_text())["pid"])
    assert not alive_moto(moto_pid)


def test_plugin_under_xdist_brings_one_cluster_up_for_every_worker(user_project):
    """``pytest -n 2``: both tests pass on a cluster brought up once (by the first worker
    that asked; the other waited for it), torn down by the controller at the end: nothing
    left, the moto server gone. Progress lines went to stderr while ``up`` ran."""
    bindir, env, project, names = user_project
    record = project / "record.json"
    name = f"plugx-{uuid.uuid4().hex[:6]}"
    names.append(name)
    done = _pytest(bindir, env, project, "-n", "2", "--dist", "load",
                   "--provision-extra-vars", f"cluster_name={name}",
                   PLUGIN_RECORD=str(record))  # fmt: skip
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "2 passed" in out, out
    assert "one cluster for every worker: up and verified by gw" in out, out
    assert "cluster torn down (end of session, by the controller)" in out, out
    # nothing of provision's progress reached stdout outside pytest's report
    assert "PLAY " not in out and "RECAP" not in out, out
    # One up: the cloud task ran once (the worker that waited used the cluster as it was).
    ups = [line for line in done.stderr.splitlines()
           if line.startswith("provision: ") and "Instance, key pair" in line]  # fmt: skip
    assert len(ups) == 1, done.stderr
    assert left_behind(name) == []
    assert not alive_moto(int(json.loads(record.read_text())["pid"])), "moto outlived it"
    assert not (cloud.sandbox_dir(project / ".provision") / "moto" / "server.json").exists()
