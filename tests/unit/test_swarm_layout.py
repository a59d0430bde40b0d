"""``topology`` and ``instance_count`` in the one layout: defaults, what playbooks see, and bad
values refused at load time by the real CLI (exit 2, nothing touched)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from provision.cluster.layout import layout_from_vars
from provision.errors import ConfigError


def test_the_default_is_one_host_of_compose_projects():
    layout = layout_from_vars({})
    assert (layout.topology, layout.instance_count, layout.swarm) == ("single", 1, False)
    seen = layout.as_vars()
    assert seen["topology"] == "single" and seen["swarm"] is False


def test_swarm_with_three_hosts_as_given_by_dash_e():
    layout = layout_from_vars({"topology": "swarm", "instance_count": "3"})
    assert (layout.topology, layout.instance_count, layout.swarm) == ("swarm", 3, True)
    assert layout.as_vars()["stack_files"]["openresty"] == ["docker-compose.yml", "stack.yml"]
    assert layout_from_vars({"topology": "swarm", "overlay_encrypted": "true"}).overlay_encrypted


@pytest.mark.parametrize(
    ("variables", "field", "text"),
    [
        ({"topology": "x"}, "topology", "must be one of single, swarm, got 'x'"),
        ({"instance_count": 0}, "instance_count", "from 1 to 10, got 0"),
        ({"instance_count": 11}, "instance_count", "from 1 to 10, got 11"),
        ({"instance_count": True}, "instance_count", "got True"),
        ({"instance_count": "three"}, "instance_count", "got 'three'"),
        ({"overlay_encrypted": "maybe"}, "overlay_encrypted", "true or false"),
        ({"topology": "swarm", "redis_strategy": "host-gateway"}, "redis_strategy", "swarm"),
        ({"topology": "swarm", "redis_mode": "cluster"}, "redis_mode", "redis_mode: single"),
    ],
)
def test_bad_values_name_their_variable(variables, field, text):
    with pytest.raises(ConfigError) as caught:
        layout_from_vars(variables)
    assert caught.value.field == field
    assert text in caught.value.message


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provision.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("instance_count=0", "error: -e instance_count: must be an integer from 1 to 10, got 0"),
        ("topology=x", "error: -e topology: must be one of single, swarm, got 'x'"),
    ],
)
def test_bad_topology_on_the_command_line_is_exit_2_before_any_call(extra, message, tmp_path):
    state = tmp_path / "state"
    done = cli("up", "-e", extra, "--state-dir", str(state), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == message
    assert "Traceback" not in done.stderr
    assert not state.exists()


def test_redis_cluster_on_a_swarm_is_refused_at_load_naming_redis_mode(tmp_path):
    state = tmp_path / "state"
    done = cli("up", "-e", "topology=swarm", "-e", "instance_count=3", "-e", "redis_mode=cluster",
               "--state-dir", str(state), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: -e redis_mode: a Redis Cluster is not"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not state.exists()
