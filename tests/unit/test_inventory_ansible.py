"""Ansible is the oracle: for every inventory of ``tests/inventory_corpus/``,
``provision inventory --list`` and ``ansible-inventory --list`` print the same groups (each
one's hosts and children) and the same variables for every host.

ansible-core is in the ``test`` extra; without it the test is skipped, except in CI
(``CI=true``), where it fails.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from provision.cli import main

CORPUS = Path(__file__).resolve().parents[1] / "inventory_corpus"
CASES = sorted(path for path in CORPUS.iterdir() if path.is_dir())
HAVE_ANSIBLE = importlib.util.find_spec("ansible") is not None


@pytest.fixture
def _ansible() -> None:
    if HAVE_ANSIBLE:
        return
    if os.environ.get("CI") == "true":
        pytest.fail("ansible-core is not installed (pip install -e '.[test]')")
    pytest.skip("ansible-core is not installed")


def _inventory(case: Path) -> Path:
    (found,) = [p for p in case.iterdir() if p.is_file() and p.name.startswith("inventory")]
    return found


def _args(case: Path) -> list[str]:
    playbooks = case / "playbooks"
    args = ["-i", str(_inventory(case)), "--list"]
    return [*args, "--playbook-dir", str(playbooks)] if playbooks.is_dir() else args


def _ansible_list(case: Path, cwd: Path) -> dict[str, Any]:
    env = {
        **os.environ,
        "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true",  # a file it cannot read fails, not warns
        "ANSIBLE_HOME": str(cwd / ".ansible"),
        "ANSIBLE_CONFIG": str(cwd / "none.cfg"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "ansible.cli.inventory", *_args(case)],
        cwd=cwd,  # an empty folder: ansible-inventory reads group_vars/ in the current one
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _provision_list(case: Path) -> dict[str, Any]:
    done = CliRunner().invoke(main, ["inventory", *_args(case)])
    assert done.exit_code == 0, done.output
    result: dict[str, Any] = json.loads(done.output)
    return result


def _groups(listing: dict[str, Any]) -> dict[str, dict[str, set[str]]]:
    return {
        group: {key: set(entry.get(key, ())) for key in ("hosts", "children")}
        for group, entry in listing.items()
        if group != "_meta"
    }


def test_the_corpus_is_big_enough() -> None:
    assert len(CASES) >= 12
    kinds = {_inventory(case).suffix for case in CASES}
    assert {".yml", ".ini", ".json", ""} <= kinds
    assert any((case / "playbooks").is_dir() for case in CASES)
    assert sum((case / "group_vars").is_dir() for case in CASES) >= 4


@pytest.mark.usefixtures("_ansible")
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_provision_reads_the_inventory_as_ansible(case: Path, tmp_path: Path) -> None:
    ansible = _ansible_list(case, tmp_path)
    ours = _provision_list(case)
    assert _groups(ours) == _groups(ansible)
    assert ours["_meta"]["hostvars"] == ansible["_meta"]["hostvars"]
    assert ours["_meta"]["hostvars"], "every case has variables to compare"


def test_provision_inventory_host_prints_one_hosts_vars() -> None:
    case = CORPUS / "every_level"
    done = CliRunner().invoke(
        main,
        ["inventory", "-i", str(_inventory(case)), "--host", "h1",
         "--playbook-dir", str(case / "playbooks")],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["k12"] == "L12-playbook_host_vars"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--list", "--host", "h1"], 2, "give one of --list or --host HOST"),
        ([], 2, "give one of --list or --host HOST"),
        (["--host", "nope"], 2, "no host named 'nope'"),
    ],
)
def test_provision_inventory_bad_use(args: list[str], code: int, message: str) -> None:
    inventory = _inventory(CORPUS / "yaml_basic")
    done = CliRunner().invoke(main, ["inventory", "-i", str(inventory), *args])
    assert done.exit_code == code
    assert message in done.output
