"""The package as a user installs it: a wheel built from a copy of this checkout
(``pip wheel --no-build-isolation``), installed into a fresh venv.

The venv's dependencies (and pytest) come from this interpreter's environment (the
checkout's ``.venv``), named in a ``.pth`` file of the new venv as a plain folder on its path
(not ``--system-site-packages``, which would give the base interpreter's packages instead:
whatever was once installed there by hand); so no index is needed, and that environment's own
``.pth`` files (the checkout's editable install) are not read. The wheel goes in with
``--no-deps --ignore-installed``, and ``install_wheel`` checks that ``provision`` is then
imported from the venv, not from the checkout (no ``PYTHONPATH`` in the env it returns).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

__all__ = ["ROOT", "build_wheel", "install_wheel", "make_venv", "run_ok", "user_env"]

ROOT = Path(__file__).resolve().parents[1]
_SKIP = shutil.ignore_patterns(
    ".git", "build", "dist", "*.egg-info", "__pycache__", ".provision", ".*_cache", ".venv",
    "tests", "bench", "moto_tests",
)  # fmt: skip
#: files the wheel must carry: what `provision init` writes and the sandbox builds from
NEEDED = (
    "provision/_bundle/playbooks/up.yml",
    "provision/_bundle/playbooks/templates/redis-cluster.yml.j2",
    "provision/_bundle/playbooks/files/openresty/lua/router.lua",
    "provision/_bundle/playbooks/files/redis/docker-compose.yml",
    "provision/_bundle/inventory/sandbox.yml",
    "provision/sandbox/files/sshhost.Dockerfile",
)


def run_ok(
    argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``argv``; it must exit 0 (else its output is the assertion's message)."""
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{argv}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def user_env() -> dict[str, str]:
    """This process's environment as a user's shell has it: without the checkout on
    ``PYTHONPATH`` (nor a virtual environment of ours)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def build_wheel(top: Path) -> Path:
    """The wheel, built from a copy of the checkout into ``top/dist``; it carries ``NEEDED``."""
    src = top / "src"
    shutil.copytree(ROOT, src, symlinks=True, ignore=_SKIP)
    run_ok([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
            "-w", str(top / "dist"), str(src)], top, user_env())  # fmt: skip
    (wheel,) = (top / "dist").glob("provision-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in NEEDED:
        assert needed in names, f"{needed} is not in {wheel.name}"
    return wheel


def make_venv(venv: Path) -> tuple[str, Path]:
    """A fresh venv (no packages of any other environment): its python, its site-packages."""
    run_ok([sys.executable, "-m", "venv", str(venv)], venv.parent, user_env())
    (site,) = venv.glob("lib/python3*/site-packages")
    return str(venv / "bin" / "python"), site


def install_wheel(top: Path) -> tuple[Path, dict[str, str]]:
    """Build the wheel and install it into ``top/venv``: the venv's bin/ folder, and an
    environment without the checkout on ``PYTHONPATH``."""
    env = user_env()
    wheel = build_wheel(top)
    venv = top / "venv"
    python, site = make_venv(venv)
    paths = sysconfig.get_paths()
    folders = dict.fromkeys((paths["purelib"], paths["platlib"]))  # one line if the same
    (site / "provision-test-deps.pth").write_text("".join(f"{f}\n" for f in folders))
    run_ok([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
            "--ignore-installed", str(wheel)], top, env)  # fmt: skip
    where = run_ok([python, "-c", "import provision; print(provision.__file__)"], top, env)
    assert where.stdout.strip().startswith(str(venv)), f"provision from {where.stdout}"
    return venv / "bin", env
