"""Ansible's semantics where provision claims them, with ``ansible-playbook`` as the oracle.

Each playbook under ``playbooks/`` is valid for both tools. Both run it against localhost
(a local connection: no Docker, no SSH); each task that matters appends a line to a trace
file (``-e trace=PATH``). The two must agree on the trace (what ran, in which order, with
which values), on the exit (success or failure) and on the recap.

The recaps are compared on what both count alike: failed, skipped, ignored, rescued, and the tasks
that did not fail (Ansible's ``ok`` counts the changed and the ignored ones too, provision's
``ok`` the unchanged ones only: README, "Differences from Ansible"). A first line
``# args: ...`` gives both tools the same extra arguments (``--tags``, ``-e``).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.clirun import provision_popen

pytestmark = pytest.mark.slow  # ansible-playbook costs ~2 s a playbook

CORPUS = Path(__file__).resolve().parent / "playbooks"
BOOKS = sorted(CORPUS.glob("*.yml"))
_RECAP = re.compile(
    r"^localhost\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)\s+rescued=(?P<rescued>\d+)"
    r"\s+ignored=(?P<ignored>\d+)",
    re.MULTILINE,
)


@dataclass(frozen=True)
class Run:
    code: int
    trace: list[str]
    recap: dict[str, int]
    output: str


def _args(book: Path) -> list[str]:
    first = book.read_text(encoding="utf-8").splitlines()[0]
    return shlex.split(first.removeprefix("# args:")) if first.startswith("# args:") else []


def _inventory(folder: Path) -> Path:
    path = folder / "inventory.ini"
    path.write_text(
        f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n"
    )
    return path


def _trace(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _ansible(book: Path, folder: Path) -> Run:
    trace = folder / "ansible.trace"
    env = {**os.environ, "ANSIBLE_HOME": str(folder / ".ansible"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_LOCALHOST_WARNING": "false", "ANSIBLE_RETRY_FILES_ENABLED": "false",
           "ANSIBLE_DEPRECATION_WARNINGS": "false"}  # fmt: skip
    argv = [shutil.which("ansible-playbook") or "ansible-playbook", "-i", str(_inventory(folder)),
            str(book), "-e", f"trace={trace}", *_args(book)]  # fmt: skip
    done = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True, timeout=120)
    found = _RECAP.search(done.stdout)
    assert found, done.stdout + done.stderr
    return Run(done.returncode, _trace(trace), {k: int(v) for k, v in found.groupdict().items()},
               done.stdout + done.stderr)  # fmt: skip


def _provision(book: Path, folder: Path) -> Callable[[], Run]:
    """Starts ``provision play`` on ``book``; the returned call waits for its run (so that
    it runs while ansible-playbook does: the two never share a folder or a trace)."""
    trace = folder / "provision.trace"
    started = provision_popen("play", str(book), "-i", str(_inventory(folder)), "-e",
                              f"trace={trace}", "--json", *_args(book), cwd=folder)  # fmt: skip

    def finish() -> Run:
        try:
            stdout, stderr = started.communicate(timeout=120)
        finally:  # killed and reaped whatever happened (a timeout, or ansible's run failing)
            if started.poll() is None:
                started.kill()
                started.communicate()
        assert stdout.strip(), stderr
        recap = json.loads(stdout)["recap"].get("localhost", {})
        return Run(started.returncode, _trace(trace), recap, stderr)

    return finish


def test_the_corpus_is_there():
    assert len(BOOKS) >= 30


@pytest.mark.skipif(shutil.which("ansible-playbook") is None, reason="ansible-core not installed")
@pytest.mark.parametrize("book", BOOKS, ids=[b.stem for b in BOOKS])
def test_provision_runs_the_playbook_as_ansible_does(book: Path, tmp_path: Path):
    (tmp_path / "a").mkdir()
    (tmp_path / "p").mkdir()
    ours_running = _provision(book, tmp_path / "p")
    try:
        theirs = _ansible(book, tmp_path / "a")
    finally:
        ours = ours_running()
    where = f"\n--- ansible-playbook:\n{theirs.output}\n--- provision:\n{ours.output}"
    assert ours.trace == theirs.trace, where
    assert (ours.code == 0) == (theirs.code == 0), where
    for key in ("failed", "skipped", "ignored", "rescued", "unreachable"):
        assert ours.recap.get(key, 0) == theirs.recap[key], (key, where)
    done = ours.recap.get("ok", 0) + ours.recap.get("changed", 0) + ours.recap.get("ignored", 0)
    assert done == theirs.recap["ok"], ("ok", where)
    if not theirs.recap["ignored"]:  # an ignored command counts as changed in Ansible's recap
        assert ours.recap.get("changed", 0) == theirs.recap["changed"], ("changed", where)
