"""The embedded default, end to end, through the CLI: `provision up` with no inventory brings
the sandbox cluster up (a moto server as EC2, an EC2-like SSH host container per instance) and
verifies it; again changes nothing; `provision down` removes all of it; again: ok."""

from __future__ import annotations

import json
import urllib.request
import uuid
from pathlib import Path

import jsonschema
import pytest

from provision.sandbox import cloud, localdocker
from provision.sandbox.cloud import DOCKER_READY_ENV
from tests.helpers import moto_running, provision, remove_sandbox_cluster

pytestmark = [pytest.mark.integration, pytest.mark.own_cluster]

SCHEMA = Path(__file__).resolve().parents[2] / "provision" / "run" / "report.schema.json"


@pytest.fixture
def sandbox(tmp_path, sandbox_images, monkeypatch):
    """A uniquely named sandbox cluster; removed at the end even when the test fails. Its
    hosts start bare, as the README's first command makes them: Docker is installed over SSH."""
    monkeypatch.delenv(DOCKER_READY_ENV)
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    yield tmp_path, name
    remove_sandbox_cluster(tmp_path, name)


def test_up_again_down_again(sandbox):
    cwd, name = sandbox
    first = provision(cwd, "up", "-e", f"cluster_name={name}", "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    jsonschema.validate(report, json.loads(SCHEMA.read_text()))
    hosts = [h for h in report["recap"] if h != "localhost"]
    assert report["ok"] and len(hosts) == 1 and report["recap"][hosts[0]]["failed"] == 0
    assert {c["name"] for c in report["checks"]} == {
        "containers",
        "dns",
        "ping",
        "negative-control",
    }
    assert all(c["passed"] for c in report["checks"])
    url = report["resources"]["url"]
    assert url.startswith("http://127.0.0.1:") and f"OpenResty: {url}" in first.stderr
    # The cold path (#25): the user-data installed Docker while the host booted; the task
    # waited for cloud-init and found it (ok), sending no install over SSH.
    (engine,) = [t for t in report["tasks"] if t["module"] == "docker_engine"]
    assert engine["status"] == "ok", engine
    assert "installed while the instance booted (user-data)" in engine["msg"], engine
    # Where the cold run's time went, phase by phase, in the report and after the recap.
    phases = [p["phase"] for p in report["phases"]]
    assert phases[:3] == ["RunInstances", "pending -> running", "SSH answering"], phases
    assert phases[-1] == "verified" and "Docker ready" in phases, phases
    assert "phases: RunInstances " in first.stderr and "(total " in first.stderr
    ids = report["resources"]["created"]
    assert any(i.startswith("i-") for i in ids) and any(i.startswith("sg-") for i in ids)
    assert localdocker.container_ids(f"{cloud.CLUSTER_LABEL}={name}")
    # The host key was pinned as on EC2: from the console output (the host printed it at
    # boot; the sandbox's EC2 answered GetConsoleOutput with it), not trusted on first use,
    # and it is the key the host's sshd presents.
    (record,) = json.loads((cwd / ".provision" / name / "state.json").read_text())["instances"]
    assert record["host_key_source"] == "console", record
    (container,) = localdocker.container_ids(f"{cloud.CLUSTER_LABEL}={name}")
    presented = localdocker.docker("exec", container, "cat", "/etc/ssh/ssh_host_ed25519_key.pub")
    assert " ".join(presented.stdout.split()[:2]) in record["host_keys"], record

    # Routes from Python through the SSH tunnel; a request through OpenResty reaches echo.
    added = provision(cwd, "routes", "add", "/api/users", "users", "echo-a:80",
                      "-e", f"cluster_name={name}", "--json")  # fmt: skip
    assert added.returncode == 0, added.stderr
    route = {"service": "users", "endpoints": ["echo-a:80"]}
    assert json.loads(added.stdout) == {"added": {"/api/users": route}}
    with urllib.request.urlopen(f"{url}/api/users/7", timeout=10) as reply:
        assert json.loads(reply.read())["instance"] == "echo-a"
    listed = provision(cwd, "routes", "ls", "--json", "-e", f"cluster_name={name}")
    assert json.loads(listed.stdout) == {
        "/api/users": {"service": "users", "endpoints": ["echo-a:80"]}
    }
    unrouted = provision(cwd, "routes", "rm", "/api/users", "-e", f"cluster_name={name}", "--json")
    assert unrouted.returncode == 0, unrouted.stderr
    assert json.loads(unrouted.stdout) == {"prefix": "/api/users", "removed": True}

    again = provision(cwd, "up", "-e", f"cluster_name={name}", "--json")
    assert again.returncode == 0, again.stderr
    recap = json.loads(again.stdout)["recap"]
    assert sum(r["changed"] for r in recap.values()) == 0, recap

    down = provision(cwd, "down", "-e", f"cluster_name={name}", "--json")
    assert down.returncode == 0, down.stderr
    removed = json.loads(down.stdout)["resources"]["removed"]
    assert set(ids) <= set(removed)  # instance, security group, key pair
    assert "moto server" in removed
    label = f"{cloud.CLUSTER_LABEL}={name}"
    assert localdocker.container_ids(label) == []
    assert localdocker.volume_names(label) == []
    assert not moto_running(cwd / ".provision")

    down_again = provision(cwd, "down", "-e", f"cluster_name={name}", "--json")
    assert down_again.returncode == 0, down_again.stderr
    assert json.loads(down_again.stdout)["recap"]["localhost"]["changed"] == 0


def test_a_user_data_install_that_fails_falls_back_to_ssh_and_says_why(sandbox, monkeypatch):
    """The user-data is broken on purpose (its Docker part fails as a missing package would):
    cloud-init reports the error, and ``docker_engine`` installs over SSH, saying why with
    the cloud-init log's last lines. Only the cloud and Docker tasks run (``--tags``)."""
    from provision.api import PLAYBOOKS, Options, run_playbook
    from provision.aws import userdata

    cwd, name = sandbox
    broken = 'echo "E: Unable to locate package docker.io (broken by the test)"; exit 100\n'
    monkeypatch.setattr(userdata, "docker_script", lambda user: broken)
    monkeypatch.chdir(cwd)
    options = Options(state_dir=cwd / ".provision", extra_vars={"cluster_name": name},
                      tags=frozenset({"cloud", "docker"}))  # fmt: skip
    report = run_playbook(PLAYBOOKS / "up.yml", None, options)
    assert not report.failed, [
        (r.task, r.msg) for r in report.results if r.status.value == "failed"
    ]
    (engine,) = [r for r in report.results if r.module == "docker_engine"]
    assert engine.status.value == "changed", engine
    assert "installed Docker and Compose over SSH: the user-data's install failed" in engine.msg
    assert "cloud-init reported status: error" in engine.msg
    assert "broken by the test" in engine.msg, engine.msg
