"""``provision init DIR && cd DIR && provision up --check`` from the built, pip-installed
package, not the checkout: the wheel carries the playbooks, compose projects, router and
inventories, and a project's own files are what the CLI then runs.

The wheel and its venv: ``tests/wheel.py``. No Docker: ``up --check`` on the sandbox
inventory changes nothing.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.wheel import run_ok

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow  # builds the wheel and a venv


@pytest.fixture
def installed(installed_package: tuple[Path, dict[str, str]]) -> tuple[Path, dict[str, str]]:
    """A venv with the wheel installed: its bin/ folder, and an env without the checkout."""
    return installed_package


def test_init_then_up_check_from_the_installed_package(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    bindir, env = installed
    provision = str(bindir / "provision")
    project = tmp_path / "myproject"
    done = run_ok([provision, "init", str(project)], tmp_path, env)
    assert "wrote" in done.stderr
    for rel in (
        "playbooks/up.yml", "playbooks/down.yml", "playbooks/verify.yml",
        "playbooks/templates/redis-cluster.yml.j2", "playbooks/files/openresty/nginx.conf",
        "playbooks/files/openresty/lua/router.lua", "playbooks/files/redis/docker-compose.yml",
        "playbooks/files/echo/docker-compose.yml", "inventory/sandbox.yml", "inventory/aws.yml",
        "policy/iam-policy.json", ".gitignore",
    ):  # fmt: skip
        assert (project / rel).is_file(), rel
    # the policy the README asks a real AWS identity to have, as moto_tests/test_policy.py
    # checks it against the code: the same bytes as the checkout's
    shipped = (project / "policy" / "iam-policy.json").read_bytes()
    assert shipped == (ROOT / "policy" / "iam-policy.json").read_bytes()
    assert not any(p.is_symlink() for p in project.rglob("*")), "the project's files are its own"

    # the project is the user's: change a play's name and the default inventory's type,
    # and `provision up --check` run there shows both
    up = project / "playbooks" / "up.yml"
    up.write_text(up.read_text().replace("Provision the cloud", "Provision MY cloud", 1))
    inventory = project / "inventory" / "sandbox.yml"
    inventory.write_text(inventory.read_text().replace("t3.small", "t3.micro", 1))
    done = run_ok([provision, "up", "--check"], project, env)
    out = done.stdout + done.stderr
    assert "PLAY Provision MY cloud (localhost)" in out, out
    assert "would launch 1 x t3.micro" in out, out
    assert "failed=0" in out, out
    written = [p for p in (project / ".provision").rglob("*") if p.is_file()]
    assert written == [], "check mode wrote state"

    # elsewhere, the packaged playbooks and inventory run
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = run_ok([provision, "up", "--check"], elsewhere, env)
    text = out.stdout + out.stderr
    assert "PLAY Provision the cloud (localhost)" in text, text
    assert "would launch 1 x t3.small" in text, text

    # a second init into the now non-empty project is refused (exit 2, one line)
    again = subprocess.run(
        [provision, "init", str(project)], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert again.returncode == 2
    assert "is not empty; pass --force" in again.stderr


def test_the_installed_plugin_loads_and_refuses_a_bad_inventory(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """The ``pytest11`` entry point of the installed package adds the options; a bad
    ``--provision-inventory`` errors the tests that ask for the cluster, naming the file and
    field, before any host or cloud call (no ``.provision/`` is made)."""
    bindir, env = installed
    python = str(bindir / "python")
    helped = run_ok([python, "-m", "pytest", "--help"], tmp_path, env)
    for option in ("--provision-inventory", "--provision-keep", "--provision-extra-vars"):
        assert option in helped.stdout
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_user.py").write_text(
        "def test_needs_a_cluster(provision_cluster):\n    pass\n\n"
        "def test_without_a_cluster():\n    pass\n"
    )
    (tmp_path / "bad.yml").write_text("all:\n  vars: {cloud: sandbox, cluster_name: Bad_Name}\n")
    done = subprocess.run(
        [python, "-m", "pytest", "-p", "no:cacheprovider", "--provision-inventory", "bad.yml"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 passed, 1 error" in done.stdout, done.stdout
    assert "ConfigError" in done.stdout and "cluster_name" in done.stdout, done.stdout
    assert not (tmp_path / ".provision").exists()
