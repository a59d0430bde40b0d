"""``provision init DIR && cd DIR && provision up --check`` from the built, pip-installed
package, not the checkout: the wheel carries the playbooks, compose projects, router and
inventories, and a project's own files are what the CLI then runs.

The wheel is built from a copy of the checkout (``pip wheel --no-build-isolation``) and
installed into a fresh venv made with ``--system-site-packages`` (its dependencies come from
this interpreter's site-packages, so no index is needed), with ``--no-deps
--ignore-installed``; the test checks that ``provision`` is then imported from the venv, not
from the checkout. No Docker: ``up --check`` on the sandbox inventory changes nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKIP = shutil.ignore_patterns(
    ".git", "build", "dist", "*.egg-info", "__pycache__", ".provision", ".*_cache", ".venv",
    "tests", "bench", "moto_tests",
)  # fmt: skip


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"{argv}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A venv with the wheel installed: its bin/ folder, and an env without the checkout."""
    top = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    src = top / "src"
    shutil.copytree(ROOT, src, symlinks=True, ignore=SKIP)
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
          "-w", str(top / "dist"), str(src)], top, env)  # fmt: skip
    (wheel,) = (top / "dist").glob("provision-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "provision/_bundle/playbooks/up.yml",
        "provision/_bundle/playbooks/templates/redis-cluster.yml.j2",
        "provision/_bundle/playbooks/files/openresty/lua/router.lua",
        "provision/_bundle/playbooks/files/redis/docker-compose.yml",
        "provision/_bundle/inventory/sandbox.yml",
        "provision/sandbox/files/sshhost.Dockerfile",
    ):
        assert needed in names, f"{needed} is not in {wheel.name}"
    venv = top / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], top, env)
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
          "--no-index", "--ignore-installed", str(wheel)], top, env)  # fmt: skip
    where = _run(
        [str(venv / "bin" / "python"), "-c", "import provision; print(provision.__file__)"],
        top,
        env,
    ).stdout.strip()
    assert where.startswith(str(venv)), f"provision imported from {where}, not the venv"
    return venv / "bin", env


def test_init_then_up_check_from_the_installed_package(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    bindir, env = installed
    provision = str(bindir / "provision")
    project = tmp_path / "myproject"
    done = _run([provision, "init", str(project)], tmp_path, env)
    assert "wrote" in done.stderr
    for rel in (
        "playbooks/up.yml", "playbooks/down.yml", "playbooks/verify.yml",
        "playbooks/templates/redis-cluster.yml.j2", "playbooks/files/openresty/nginx.conf",
        "playbooks/files/openresty/lua/router.lua", "playbooks/files/redis/docker-compose.yml",
        "playbooks/files/echo/docker-compose.yml", "inventory/sandbox.yml", "inventory/aws.yml",
        ".gitignore",
    ):  # fmt: skip
        assert (project / rel).is_file(), rel
    assert not any(p.is_symlink() for p in project.rglob("*")), "the project's files are its own"

    # the project is the user's: change a play's name and the default inventory's type,
    # and `provision up --check` run there shows both
    up = project / "playbooks" / "up.yml"
    up.write_text(up.read_text().replace("Provision the cloud", "Provision MY cloud", 1))
    inventory = project / "inventory" / "sandbox.yml"
    inventory.write_text(inventory.read_text().replace("t3.small", "t3.micro", 1))
    done = _run([provision, "up", "--check"], project, env)
    out = done.stdout + done.stderr
    assert "PLAY Provision MY cloud (localhost)" in out, out
    assert "would launch 1 x t3.micro" in out, out
    assert "failed=0" in out, out
    written = [p for p in (project / ".provision").rglob("*") if p.is_file()]
    assert written == [], "check mode wrote state"

    # elsewhere, the packaged playbooks and inventory run
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = _run([provision, "up", "--check"], elsewhere, env)
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
