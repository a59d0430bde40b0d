"""Day two on a running cluster (the session's shared sandbox cluster, which these only read
or restore): `provision ssh` runs a command on the host with the cluster's key and pinned host
key, and refuses a host whose key is not the pinned one; `provision exec` runs a command inside
a service's container; `provision logs` prints a service's lines prefixed with host and
container; `up --check --detailed-exitcode` tells drift from a converged cluster."""

from __future__ import annotations

import time

import pytest

from provision.sandbox import localdocker
from tests import bounds
from tests.clirun import provision_cli
from tests.helpers import output_schema

pytestmark = pytest.mark.integration

REDIS_PING = '. /run/secrets/redis_env && REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli ping'


def test_ssh_runs_a_command_on_the_host_and_refuses_an_unknown_host_key(shared_cluster):
    cwd, var = shared_cluster.cwd, shared_cluster.var
    done = provision_cli("ssh", "-e", var, "--", "cat", "/etc/hostname", cwd=cwd, timeout=120)
    assert done.returncode == 0, done.stderr
    hostname = localdocker.docker("exec", shared_cluster.container, "hostname").stdout.strip()
    assert done.stdout.strip() == hostname
    assert provision_cli("ssh", "-e", var, "--", "false", cwd=cwd, timeout=120).returncode == 1

    known = cwd / ".provision" / "known_hosts"
    pinned = known.read_text()
    other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHtLqRr0n8b8hq3bM2kEk1fPjw1Gm8n8oZ0lcdM6Xy4a"
    try:  # another key pinned for the host: ssh refuses it (the shared cluster's restored)
        known.write_text("".join(f"{line.split()[0]} {other}\n" for line in pinned.splitlines()))
        refused = provision_cli("ssh", "-e", var, "--", "true", cwd=cwd, timeout=120)
    finally:
        known.write_text(pinned)
    assert refused.returncode == 255, refused.stderr
    assert "Host key verification failed" in refused.stderr, refused.stderr


def test_exec_runs_a_command_in_the_service_s_container(shared_cluster):
    cwd, var = shared_cluster.cwd, shared_cluster.var
    done = provision_cli("exec", "redis", "-e", var, "--", "sh", "-c", REDIS_PING,
                         cwd=cwd, timeout=120)  # fmt: skip
    assert (done.returncode, done.stdout.strip()) == (0, "PONG"), done.stderr
    missing = provision_cli("exec", "nosuch", "-e", var, "--", "true", cwd=cwd, timeout=120)
    assert missing.returncode == 1 and "no running container of service nosuch" in missing.stderr


def test_logs_prints_a_service_s_last_lines_prefixed_with_host_and_container(shared_cluster):
    cwd, var = shared_cluster.cwd, shared_cluster.var
    done = provision_cli("logs", "openresty", "--tail", "5", "-e", var, cwd=cwd, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert 1 <= len(lines) <= 5, lines
    host = f"{shared_cluster.name}-1"
    assert all(line.startswith(f"{host} ") and "openresty" in line.split(" | ")[0]
               for line in lines), lines  # fmt: skip


def test_detailed_exitcode_tells_a_drifted_cluster_from_a_converged_one(shared_cluster):
    """`up --check --detailed-exitcode`, as a pipeline detects drift: 3 when something would
    change (a stray file in the openresty project, which the upload would delete), 0 when
    nothing would; the check changes nothing either way (the file is removed by the test)."""
    cwd, var = shared_cluster.cwd, shared_cluster.var
    stray = "/opt/provision/openresty/stray.conf"
    localdocker.docker("exec", shared_cluster.container, "touch", stray)
    try:
        drifted = provision_cli("up", "--check", "--detailed-exitcode", "-e", var,
                                cwd=cwd, timeout=600)  # fmt: skip
        assert drifted.returncode == 3, drifted.stderr
        assert "Upload the openresty project" in drifted.stderr, drifted.stderr
        still = localdocker.docker("exec", shared_cluster.container, "test", "-e", stray,
                                   check=False)  # fmt: skip
        assert still.ok  # check mode: reported, not done
    finally:
        localdocker.docker("exec", shared_cluster.container, "rm", "-f", stray)
    converged = provision_cli("up", "--check", "--detailed-exitcode", "-e", var,
                              cwd=cwd, timeout=600)  # fmt: skip
    assert converged.returncode == 0, converged.stderr


def test_status_lists_each_service_s_containers_with_their_health(shared_cluster):
    """`status --json` parses and follows its schema; each running host lists the containers
    of its compose projects with state and health, the same containers as `docker ps` on the
    host (redis and openresty, healthy); the text form prints one line per container."""
    import json

    import jsonschema

    cwd, var = shared_cluster.cwd, shared_cluster.var

    def healthy(host: dict) -> bool:
        found = {c["service"]: c["health"] for c in host["services"] or ()}
        return found.get("redis") == found.get("openresty") == "healthy"

    # A test before this one may have restarted a container (the shared cluster is restored,
    # its health check passing again within seconds): wait, bounded, for both to say healthy.
    deadline = time.monotonic() + bounds.SERVICE_BACK
    while True:
        done = provision_cli("status", "--json", "-e", var, cwd=cwd, timeout=120)
        assert done.returncode == 0, done.stderr
        hosts = json.loads(done.stdout)
        jsonschema.validate(hosts, output_schema("status"))
        (host,) = hosts
        if healthy(host) or time.monotonic() > deadline:
            break
        time.sleep(1)
    listed = localdocker.docker(
        "exec", shared_cluster.container, "docker", "ps", "-a", "--filter",
        "label=com.docker.compose.project", "--format", "{{.Names}}",
    ).stdout.split()  # fmt: skip
    assert sorted(c["container"] for c in host["services"]) == sorted(listed), host
    by_service = {c["service"]: c for c in host["services"]}
    for service in ("redis", "openresty"):
        assert by_service[service]["state"] == "running", host
        assert by_service[service]["health"] == "healthy", host
    text = provision_cli("status", "-e", var, cwd=cwd, timeout=120)
    assert text.returncode == 0, text.stderr
    for c in host["services"]:
        assert any(c["container"] in line and c["health"] in line
                   for line in text.stdout.splitlines()), text.stdout  # fmt: skip
    bare = provision_cli("status", "--json", "--no-services", "-e", var, cwd=cwd, timeout=120)
    assert bare.returncode == 0, bare.stderr
    assert "services" not in json.loads(bare.stdout)[0], bare.stdout
