"""Bad input through the real CLI: the exact error (file:line:column: field: message), exit
code 2, and nothing touched: no connection, no cloud, not even the state folder."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.clirun import provision_cli

CORPUS = Path(__file__).parent.parent / "bad_inputs" / "cli"

CASES = {
    "unknown_module.yml": "unknown_module.yml:5:7: plays[0].tasks[0].docker_netwrk: unknown "
    "module 'docker_netwrk' (did you mean 'docker_network'?)",
    "unknown_argument.yml": "unknown_argument.yml:7:9: plays[0].tasks[0].docker_network.drivr: "
    "unknown argument 'drivr' for module 'docker_network' (known: name, state, driver, options, "
    "attachable, force)",
    "shell_name.yml": "shell_name.yml:6:15: plays[0].tasks[0].docker_network.name: invalid name "
    "'net;rm -rf /': use letters, digits, '_', '.', '-' only",
    "wrong_type.yml": "wrong_type.yml:8:16: plays[0].tasks[0].compose.files: must be a list, "
    "got int",
    "undefined_variable.yml": "undefined_variable.yml:6:15: plays[0].tasks[0].docker_network.name:"
    " undefined variable 'netwerk' (did you mean 'network'?)",
    "syntax_error.yml": "syntax_error.yml:6:1: invalid YAML: did not find expected ',' or '}' "
    "(while parsing a flow mapping)",
    "inventory_shell_host.yml": "inventory_shell_host.yml:7:9: all.children.cluster.hosts: "
    "invalid host name 'web;reboot' (use letters, digits, '_', '.', '-')",
    "inventory_bad_port.yml": "inventory_bad_port.yml:7:25: all.children.cluster.hosts.web1."
    "ansible_port: must be an integer port from 1 to 65535, got 'twenty-two'",
}


def cli(*args: str, cwd: Path = CORPUS) -> subprocess.CompletedProcess[str]:
    return provision_cli(*args, cwd=cwd, timeout=60)


def test_every_corpus_file_has_its_case():
    assert sorted(p.name for p in CORPUS.glob("*.yml")) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_file_exact_error_exit_2_nothing_touched(name, tmp_path):
    state = tmp_path / "state"
    if name.startswith("inventory_"):
        done = cli("up", "-i", name, "--state-dir", str(state))
    else:  # port 1 has nothing listening: a connection attempt would say "unreachable"
        done = cli("play", name, "--host", "admin@127.0.0.1:1", "--state-dir", str(state))
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {CASES[name]}"
    assert done.stdout == ""
    assert not state.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["up", "-e", "novalue"],
            "error: -e: expected key=value, @file.yml or a mapping, got 'novalue'",
        ),
        (
            ["up", "--host", "admin@:22"],
            "error: --host: expected user@address[:port], got 'admin@:22'",
        ),
        (["up", "--host", "a@b", "-i", "x.yml"], "Error: give either --host or -i, not both"),
        (["up", "--frobnicate"], "Error: No such option '--frobnicate'"),
    ],
)
def test_bad_arguments(args, message, tmp_path):
    done = cli(*args, "--state-dir", str(tmp_path / "state"), cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "state").exists()


def test_routes_with_an_unknown_strategy_is_bad_input_not_a_traceback(tmp_path):
    done = cli("routes", "ls", "-e", "redis_strategy=x", "--state-dir", str(tmp_path / "s"),
               cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        "error: redis_strategy: must be one of shared-network, host-gateway, "
        "host-docker-internal, got 'x'"
    )
    assert not (tmp_path / "s").exists()


def test_sweep_json_prints_json_only(empty_docker_engine, tmp_path):
    done = cli("sweep", "--json", "--state-dir", str(tmp_path / "s"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {}  # the sandbox has no cluster: nothing swept


@pytest.mark.parametrize(
    "refusal",
    [  # Docker 20 to 28, and Docker 29 and later
        "permission denied while trying to connect to the Docker daemon socket at "
        "unix:///var/run/docker.sock: Get http://%2Fvar%2Frun%2Fdocker.sock/v1.24/info",
        "permission denied while trying to connect to the docker API at unix:///var/run/docker.sock",
    ],
    ids=["daemon-socket", "docker-api"],
)
def test_an_engine_that_refuses_the_user_is_said_so_before_anything_is_launched(
    refusal: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A user not (yet) in the docker group: every docker call is refused. The sandbox's `up`
    asks the engine first, says how to be let in, and launches nothing (no moto server, no
    instance recorded); it used to launch the instance and then try to build the images
    (`debootstrap needs root`)."""
    import os

    stub = tmp_path / "bin" / "docker"
    stub.parent.mkdir()
    stub.write_text(f'#!/bin/sh\necho "{refusal}" >&2\nexit 1\n')
    stub.chmod(0o755)
    monkeypatch.setenv("PATH", f"{stub.parent}{os.pathsep}{os.environ['PATH']}")
    done = provision_cli("up", "-e", "cluster_name=refused", cwd=tmp_path, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "the Docker engine refused user" in done.stderr, done.stderr
    assert "usermod -aG docker" in done.stderr, done.stderr
    assert not list(tmp_path.glob(".provision/**/server.json")), "a moto server was started"
    assert not list(tmp_path.glob(".provision/refused/state.json")), "an instance was launched"
