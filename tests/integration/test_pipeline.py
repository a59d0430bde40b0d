"""The host pipeline on real EC2-like SSH hosts with their own Docker engine: a bare host is
converged into a verified cluster; a second run changes nothing; a changed nginx.conf is sent
alone and restarts only OpenResty; a project recreated in part is restarted whole; check mode
touches nothing; failures are clear."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from provision.api import PLAYBOOKS
from provision.models import Status
from tests.helpers import container_id, ssh, state_for, up

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def converged(module_ssh_host_factory, ssh_keypair, tmp_path_factory):
    """One bare bookworm host, converged once by `up` (the first test's subject)."""
    host = module_ssh_host_factory("pipeline", bare=True)
    state = state_for(host, tmp_path_factory.mktemp("state"))
    report = up(host, ssh_keypair.private_key, state)
    return host, state, report


def test_bare_host_becomes_a_verified_cluster(converged):
    _, _, report = converged
    assert not report.failed, report.errors
    recap = report.recap["host1"]
    assert recap.failed == 0 and recap.unreachable == 0
    by_task = {r.task: r for r in report.results}
    for task in (
        "Docker Engine and Compose",
        "The shared network",
        "Images, for hosts that cannot pull",
        "Start redis",
        "Start openresty",
    ):
        assert by_task[task].status is Status.CHANGED, task
    # The uploads notified the restarts, and the Start tasks just created the containers
    # with those files: no restart a second later (up.yml's handlers' `when`).
    for handler in ("restart openresty", "restart echo"):
        assert by_task[handler].status is Status.SKIPPED, by_task[handler]
    checks = {c.name: c for c in report.checks}
    assert set(checks) == {"containers", "dns", "ping", "negative-control"}
    assert all(c.passed for c in checks.values()), [c.summary for c in checks.values()]
    assert checks["ping"].evidence["body"] == "PONG"
    assert checks["dns"].evidence["resolved"] == [checks["dns"].evidence["expected"]]


def test_second_run_changes_nothing_over_one_connection(converged, ssh_keypair):
    host, state, _ = converged
    report = up(host, ssh_keypair.private_key, state)
    assert not report.failed, report.errors
    assert report.recap["host1"].changed == 0
    assert all(c.passed for c in report.checks)


def _with_nginx_conf_changed(folder, project: str):
    """A copy of the project's playbooks in ``folder`` whose ``project`` has its nginx.conf
    changed (a comment added): its up.yml."""
    books = folder / "playbooks"
    shutil.copytree(PLAYBOOKS, books)
    conf = books / "files" / project / "nginx.conf"
    conf.write_text(conf.read_text() + "\n# changed by test_pipeline\n")
    return books / "up.yml"


def _started_at(host, key, state, container: str) -> str:
    """When ``container`` on ``host`` was last started (``docker inspect``)."""
    return ssh(host, key, state, "docker", "inspect", "--format", "{{.State.StartedAt}}", container)


def test_changed_nginx_conf_is_sent_alone_and_restarts_only_openresty(
    converged, ssh_keypair, tmp_path
):
    host, state, _ = converged
    key = ssh_keypair.private_key
    playbook = _with_nginx_conf_changed(tmp_path, "openresty")
    redis_before = container_id(host, key, state, "redis", "redis")
    openresty = container_id(host, key, state, "openresty", "openresty")
    openresty_started = _started_at(host, key, state, openresty)
    try:
        report = up(host, key, state, playbook)
        assert not report.failed, report.errors
        changed = [r for r in report.results if r.status is Status.CHANGED]
        assert [r.task for r in changed] == ["Upload the openresty project", "restart openresty"]
        assert changed[0].data["files"] == ["nginx.conf"]
        assert container_id(host, key, state, "redis", "redis") == redis_before
        started = _started_at(
            host, key, state, container_id(host, key, state, "openresty", "openresty")
        )
        assert started != openresty_started
        assert all(c.passed for c in report.checks)
    finally:  # put the project's own nginx.conf back for the tests after this one
        up(host, key, state)


def test_a_project_recreated_in_part_is_restarted_whole(converged, ssh_keypair, tmp_path):
    """The echo project's nginx.conf changed while one of its two containers is gone: the Start
    task makes that one again (with the new file), and the other still runs with the old one,
    so the restart runs (up.yml's handlers skip it only when every container was just made)."""
    host, state, _ = converged
    key = ssh_keypair.private_key
    playbook = _with_nginx_conf_changed(tmp_path, "echo")
    gone = container_id(host, key, state, "echo", "echo-b")
    ssh(host, key, state, "docker", "rm", "--force", gone)
    kept = container_id(host, key, state, "echo", "echo-a")
    started = _started_at(host, key, state, kept)
    try:
        report = up(host, key, state, playbook)
        assert not report.failed, report.errors
        by_task = {r.task: r for r in report.results}
        made = by_task["Start the echo backend"]
        assert made.status is Status.CHANGED and len(made.data["created"]) == 1, made
        assert len(made.data["containers"]) == 2, made
        assert by_task["restart echo"].status is Status.CHANGED, by_task["restart echo"]
        assert _started_at(host, key, state, kept) != started, (
            "echo-a kept running with the old nginx.conf"
        )
        assert all(c.passed for c in report.checks)
    finally:  # the project's own files back for the tests after this one
        up(host, key, state)


def test_broken_compose_file_fails_clearly(converged, ssh_keypair, tmp_path):
    host, state, _ = converged
    books = tmp_path / "playbooks"
    shutil.copytree(PLAYBOOKS, books)
    compose = books / "files" / "echo" / "docker-compose.yml"
    compose.write_text(compose.read_text().replace("services:", "services:\n  bad: {image: 7}", 1))
    try:
        done = cli(
            "play",
            str(books / "up.yml"),
            "--host",
            f"admin@127.0.0.1:{host.port}",
            "--key",
            str(ssh_keypair.private_key),
            "--state-dir",
            str(state),
        )
        assert done.returncode == 1
        assert "Traceback" not in done.stderr
        assert "failed host1: Start the echo backend" in done.stderr
        assert "command failed with exit code 1" in done.stderr
        assert "docker-compose -p echo -f docker-compose.yml up -d" in done.stderr
        assert "image" in done.stderr  # the tail of compose's own complaint
    finally:
        up(host, ssh_keypair.private_key, state)


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provision.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_check_mode_on_a_bare_host_changes_nothing(ssh_host_factory, ssh_keypair, tmp_path):
    host = ssh_host_factory("check", bare=True)
    state = state_for(host, tmp_path / "state")
    report = up(host, ssh_keypair.private_key, state, check=True)
    assert not report.failed, report.errors
    would = [r.task for r in report.results if r.status is Status.CHANGED]
    assert would[:3] == [
        "Docker Engine and Compose",
        "The shared network",
        "Images, for hosts that cannot pull",
    ]
    assert "Start openresty" in would
    assert ssh(
        host,
        ssh_keypair.private_key,
        state,
        "sh",
        "-c",
        "command -v docker || echo absent; ls /opt/provision 2>&1 || true",
    ).startswith("absent")


CHECK_MODE_TASKS = """\
- hosts: cluster
  become: true
  gather_facts: false
  tasks:
    - name: forced into check mode
      copy: {dest: /opt/check-mode/forced.txt, content: "not written\\n"}
      check_mode: true
      notify: touch marker
    - name: a normal task beside it
      copy: {dest: /opt/check-mode/normal.txt, content: "written\\n"}
  handlers:
    - name: touch marker
      command: {argv: [touch, /opt/check-mode/handler-ran]}
"""


def test_task_with_check_mode_true_changes_nothing_without_check(ssh_host, ssh_keypair, tmp_path):
    # As in Ansible, `check_mode: true` on a task: it reports what it would change, and the
    # host is left as it was — even though the run itself is not in check mode.
    state = state_for(ssh_host, tmp_path / "state")
    book = tmp_path / "check_mode.yml"
    book.write_text(CHECK_MODE_TASKS)
    report = up(ssh_host, ssh_keypair.private_key, state, playbook=book)
    assert not report.failed, report.errors
    status = {r.task: r.status for r in report.results}
    assert status == {
        "forced into check mode": Status.CHANGED,
        "a normal task beside it": Status.CHANGED,
    }  # no handler ran
    listing = ssh(ssh_host, ssh_keypair.private_key, state, "ls", "/opt/check-mode")
    assert listing.split() == ["normal.txt"]


def test_unreachable_host_and_wrong_key(tmp_path, ssh_host, ssh_keypair):
    state = state_for(ssh_host, tmp_path / "state")
    closed = cli(
        "up",
        "--host",
        "admin@127.0.0.1:1",
        "--key",
        str(ssh_keypair.private_key),
        "--state-dir",
        str(state),
        "--connect-deadline",
        "2",
        timeout=180,
    )
    assert closed.returncode == 1, closed.stderr
    assert "unreachable" in closed.stderr and "admin@127.0.0.1:1" in closed.stderr
    assert "Traceback" not in closed.stderr
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    wrong = cli(
        "up",
        "--host",
        f"admin@127.0.0.1:{ssh_host.port}",
        "--key",
        str(other),
        "--state-dir",
        str(state),
    )
    assert wrong.returncode == 1
    assert "authentication failed for user 'admin'" in wrong.stderr
    assert "Traceback" not in wrong.stderr


def test_unknown_task_is_rejected_before_any_connection(tmp_path, ssh_keypair):
    book = tmp_path / "bad.yml"
    book.write_text("- hosts: cluster\n  tasks:\n    - docker_netwrk: {name: x}\n")
    done = cli(
        "play",
        str(book),
        "--host",
        "admin@127.0.0.1:1",
        "--key",
        str(ssh_keypair.private_key),
        "--state-dir",
        str(tmp_path),
    )
    assert done.returncode == 2
    assert "bad.yml:3:7" in done.stderr and "did you mean 'docker_network'" in done.stderr
    assert "unreachable" not in done.stderr


def test_debian_13_host_with_compose_v2(ssh_host_factory, ssh_keypair, tmp_path):
    host = ssh_host_factory("trixie", distro="trixie", bare=True)
    state = state_for(host, tmp_path / "state")
    report = up(host, ssh_keypair.private_key, state)
    assert not report.failed, report.errors
    engine = next(r for r in report.results if r.task == "Docker Engine and Compose")
    assert engine.data["compose"] == "docker compose"
    assert all(c.passed for c in report.checks)
    assert up(host, ssh_keypair.private_key, state).recap["host1"].changed == 0
