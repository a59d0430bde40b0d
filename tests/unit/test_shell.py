"""Day-two command lines (provision/api/shell.py): ssh trusts only the pinned known_hosts and
never the user's config; a service name with shell characters is refused before any host is
asked; the CLI exits 2 on them."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.api.shell import (
    exec_command,
    logs_command,
    parse_containers,
    pick_host,
    ssh_argv,
)
from provision.errors import ConfigError
from provision.models import HostSpec
from tests.clirun import provision_cli

SPEC = HostSpec(name="demo-1", address="127.0.0.1", port=2222, user="admin",
                key_file=Path("/k/id_ed25519"))  # fmt: skip


def test_ssh_trusts_only_the_pinned_keys_and_reads_no_user_config():
    argv = ssh_argv(SPEC, known_hosts=Path("/s/known_hosts"), command=["cat", "a b"])
    joined = " ".join(argv)
    assert argv[:3] == ["ssh", "-F", "none"]
    assert "-o StrictHostKeyChecking=yes" in joined
    assert "-o UserKnownHostsFile=/s/known_hosts" in joined
    assert "-i /k/id_ed25519" in joined and "-p 2222" in joined and "-l admin" in joined
    assert argv[-3:] == ["127.0.0.1", "--", "cat 'a b'"]  # quoted for the remote shell


def test_pick_host_by_name_or_address_and_an_unknown_one_is_refused():
    other = HostSpec(name="demo-2", address="127.0.0.2", port=22, user="admin")
    assert pick_host([SPEC, other], None) is SPEC
    assert pick_host([SPEC, other], "127.0.0.2") is other
    with pytest.raises(ConfigError, match=r"no host 'demo-3'.*demo-1, demo-2"):
        pick_host([SPEC, other], "demo-3")


@pytest.mark.parametrize("name", ["web;rm -rf /", "a b", "$(id)", ""])
def test_a_service_name_with_shell_characters_is_refused(name):
    with pytest.raises(ConfigError, match="service"):
        exec_command(name, ["true"], tty=False)
    with pytest.raises(ConfigError, match="service"):
        logs_command(name or "-", tail=None, since=None, follow=False)


def test_exec_passes_the_command_as_arguments_not_as_shell_text():
    remote = exec_command("redis", ["redis-cli", "get", "a;b"], tty=False)
    assert remote[:2] == ["sh", "-c"] and remote[3:] == ["sh", "redis", "redis-cli", "get", "a;b"]
    assert "docker exec -i " in remote[2]
    with pytest.raises(ConfigError, match="command"):
        exec_command("redis", [], tty=False)


def test_logs_options_reach_docker_logs_quoted():
    (_, _, script) = logs_command("openresty", tail=5, since="10m", follow=True)
    assert "docker logs --tail 5 --since 10m --follow" in script
    with pytest.raises(ConfigError, match="since"):
        logs_command(None, tail=None, since="--all", follow=False)


def test_cli_refuses_a_bad_service_before_any_host_is_asked(tmp_path: Path):
    done = provision_cli("exec", "a;b", "--", "true", cwd=tmp_path, timeout=60)
    assert done.returncode == 2 and "service" in done.stderr, done.stderr
    assert not (tmp_path / ".provision").exists()
    logs = provision_cli("logs", "--since", "-1", cwd=tmp_path, timeout=60)
    assert logs.returncode == 2 and "since" in logs.stderr, logs.stderr


def test_containers_are_read_with_their_health_and_a_stack_s_by_its_service():
    """``parse_containers`` reads the lines of ``containers_command``'s ``docker ps`` format:
    a compose container by its labels, a swarm task by its stack and service (the stack's
    prefix off; its ended tasks, the swarm's history, left out), health from the status; a
    container of neither is not the cluster's. Asked without any prompt (BatchMode)."""
    text = "\n".join([
        "redis|redis|||redis-redis-1|running|Up 3 minutes (healthy)",
        "openresty|openresty|||openresty-openresty-1|running|Up 2 minutes (health: starting)",
        "openresty|echo-a|||openresty-echo-a-1|exited|Exited (137) 5 seconds ago",
        "||demo|demo_openresty|demo_openresty.x1.abc|running|Up 1 minute (unhealthy)",
        "||demo|demo_openresty|demo_openresty.x1.old|exited|Exited (0) 9 minutes ago",
        "||||stray|running|Up 1 hour",
        "not a line of the format",
    ])  # fmt: skip
    found = parse_containers(text)
    assert [(c["project"], c["service"], c["state"], c["health"]) for c in found] == [
        ("demo", "openresty", "running", "unhealthy"),
        ("openresty", "echo-a", "exited", "none"),
        ("openresty", "openresty", "running", "starting"),
        ("redis", "redis", "running", "healthy"),
    ]
    assert found[-1]["container"] == "redis-redis-1"
    spec = HostSpec(name="h", address="127.0.0.1", port=1, user="admin")
    assert "BatchMode=yes" in ssh_argv(spec, known_hosts=Path("k"), batch=True)
    assert "BatchMode=yes" not in ssh_argv(spec, known_hosts=Path("k"))
