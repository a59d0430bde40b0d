"""Where the sandbox's cloud stand-in (moto and the Flask app that serves it) comes from.

moto is one wheel for every AWS service (about 50 MB installed) and the sandbox plays only EC2
and SSM with it, so it is not a dependency of a plain ``pip install provision`` (which then
weighs under 120 MB): it is the ``sandbox`` extra. Where that extra is installed, the sandbox's
moto server uses it. Where it is not, the first sandbox command installs the extra's
requirements once, with this interpreter's pip, into a folder of the user's cache (as the
sandbox builds its images once into the local Docker engine) and runs the server with that
folder on its ``PYTHONPATH``; nothing is added to the environment provision is installed in.

The requirements are read from provision's own metadata (``Requires-Dist: ...; extra ==
"sandbox"``): one list, in ``pyproject.toml``.

>>> path = ensure(progress=print)  # doctest: +SKIP
>>> path is None  # the extra is installed here  # doctest: +SKIP
True
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from provision.connection.flock import held
from provision.errors import SandboxError

__all__ = ["EXTRA", "MODULES", "cache_root", "ensure", "folder", "requirements"]

#: The extra that holds the sandbox's cloud stand-in.
EXTRA = "sandbox"
#: What the moto server imports: present in this environment, the extra is installed.
MODULES = ("moto", "flask", "flask_cors")
#: pip may take this long (it downloads about 40 packages the first time).
PIP_TIMEOUT = 900.0
_COMPLETE = ".complete"


def _by_hand(found: tuple[str, ...] = ()) -> str:
    """How to give provision's own environment the extra instead (the name "provision" on
    PyPI is another project: the requirements are named, not the extra)."""
    wanted = " ".join(f"'{r}'" for r in found) or "'moto>=5' flask flask-cors"
    return f"install them into provision's own environment: pip install {wanted}"


def requirements() -> tuple[str, ...]:
    """The ``sandbox`` extra's requirements, as provision's metadata declares them."""
    try:
        declared = importlib.metadata.requires("provision") or []
    except importlib.metadata.PackageNotFoundError as error:
        raise SandboxError(
            f"provision's metadata is missing ({error}): reinstall provision, or {_by_hand()}"
        ) from None
    marker = re.compile(r"""\s*;\s*extra\s*==\s*["']""" + EXTRA + r"""["']\s*$""")
    found = tuple(marker.sub("", line) for line in declared if marker.search(line))
    if not found:
        raise SandboxError(
            f"provision's metadata names no '{EXTRA}' extra: reinstall provision, or {_by_hand()}"
        )
    return found


def _installed() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in MODULES)


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/provision`` (``~/.cache/provision`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "provision"


def folder(root: Path | None = None) -> Path:
    """The cache folder for this interpreter and this list of requirements."""
    digest = hashlib.sha256("\n".join(sorted(requirements())).encode()).hexdigest()[:16]
    # The interpreter's ABI (CPython 3.12 and 3.13t, PyPy...): the folder holds compiled wheels.
    tag = f"{sys.implementation.cache_tag}{sys.abiflags}-{os.uname().machine}"
    return (root or cache_root()) / f"sandbox-cloud-{tag}-{digest}"


def ensure(
    *, root: Path | None = None, progress: Callable[[str], None] | None = None
) -> Path | None:
    """None when this environment has the extra; else the cache folder that holds it,
    installed there first if it is not yet (once: concurrent callers wait for the first)."""
    if _installed():
        return None
    target = folder(root)
    if (target / _COMPLETE).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with held(target.with_name(target.name + ".lock")):
        if (target / _COMPLETE).exists():
            return target  # another process installed it while this one waited
        if progress is not None:
            progress(f"sandbox: installing its cloud stand-in (moto) into {target}, once")
        _install(target)
    return target


def _install(target: Path) -> None:
    wanted = requirements()
    if importlib.util.find_spec("pip") is None:
        raise SandboxError(
            f"the sandbox needs moto, which is not installed, and {sys.executable} has no pip "
            f"to install it into {target}: {_by_hand(wanted)} (with the tool that made that "
            "environment, e.g. uv pip install)"
        )
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    argv = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-input", "--target", str(staging), *wanted]  # fmt: skip
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=PIP_TIMEOUT, check=False,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        shutil.rmtree(staging, ignore_errors=True)
        raise SandboxError(
            f"pip did not install the sandbox's cloud stand-in within {PIP_TIMEOUT:g}s: "
            f"run the command again (pip needs the package index), or {_by_hand(wanted)}"
        ) from None
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        said = (done.stderr.strip() or done.stdout.strip()).splitlines()[-5:]
        raise SandboxError(
            "could not install the sandbox's cloud stand-in (moto) into "
            f"{target} with {sys.executable} -m pip: "
            + " | ".join(said)
            + f"; run the command again (pip needs the package index), or {_by_hand(wanted)}"
        )
    (staging / _COMPLETE).write_text("\n".join(wanted) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
