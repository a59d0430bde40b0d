"""Run the real ``provision`` CLI in a subprocess, as a user would, on this checkout's code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["ROOT", "child_env", "failure", "provision_cli", "provision_popen"]

#: the checkout under test; put first on the child's PYTHONPATH so it runs this code
ROOT = Path(__file__).resolve().parents[1]


def child_env() -> dict[str, str]:
    """This environment, with the checkout first on PYTHONPATH."""
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), path) if p)}


def provision_cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``provision ARGS`` in ``cwd``; its exit code, stdout and stderr. Its stdin is empty,
    never the terminal pytest may run on (``down`` would ask there)."""
    return subprocess.run(
        [sys.executable, "-m", "provision.cli", *args],
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(),
    )


def provision_popen(*args: str, cwd: Path) -> subprocess.Popen[str]:
    """``provision ARGS`` started in ``cwd`` without waiting (stdout and stderr piped, stdin
    empty)."""
    return subprocess.Popen(
        [sys.executable, "-m", "provision.cli", *args],
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )


def failure(done: subprocess.CompletedProcess[str]) -> str:
    """An assertion message for a failed run: its unreachable and failed lines first (CI
    shows only a part of a long message), then all of stderr."""
    lines = (done.stdout + "\n" + done.stderr).splitlines()
    key = [ln for ln in lines if ln.lstrip().startswith(("unreachable", "failed", "FAIL"))]
    return "\n".join([f"exit {done.returncode}", *key, "--- stderr:", done.stderr])
