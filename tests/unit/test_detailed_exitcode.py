"""`--detailed-exitcode` (#28): 3 when a task changed something (with --check: would), 0 when
none did, 1 on a failure; without the flag a change is 0, as before. On localhost."""

from __future__ import annotations

import json
from pathlib import Path

from tests.clirun import provision_cli


def _files(tmp_path: Path, content: str) -> tuple[Path, Path, Path]:
    target = tmp_path / "out.txt"
    book = tmp_path / "write.yml"
    book.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        f"    - copy: {{content: {json.dumps(content)}, dest: {json.dumps(str(target))}}}\n"
    )
    inventory = tmp_path / "local.yml"
    inventory.write_text("all:\n  hosts:\n    localhost: {ansible_connection: local}\n")
    return book, inventory, target


def test_three_for_a_change_or_a_pending_one_zero_for_none(tmp_path: Path):
    book, inventory, target = _files(tmp_path, "one\n")
    run = ("play", str(book), "-i", str(inventory), "--state-dir", "state")
    pending = provision_cli(*run, "--check", "--detailed-exitcode", cwd=tmp_path, timeout=120)
    assert pending.returncode == 3 and not target.exists(), pending.stderr
    changed = provision_cli(*run, "--detailed-exitcode", cwd=tmp_path, timeout=120)
    assert changed.returncode == 3 and target.read_text() == "one\n", changed.stderr
    same = provision_cli(*run, "--check", "--detailed-exitcode", cwd=tmp_path, timeout=120)
    assert same.returncode == 0, same.stderr
    target.write_text("drifted\n")
    plain = provision_cli(*run, cwd=tmp_path, timeout=120)  # no flag: a change is success
    assert plain.returncode == 0 and target.read_text() == "one\n", plain.stderr


def test_a_failure_is_still_one(tmp_path: Path):
    book = tmp_path / "fail.yml"
    book.write_text("- hosts: localhost\n  gather_facts: false\n  tasks:\n"
                    "    - fail: {msg: stop}\n")  # fmt: skip
    _, inventory, _ = _files(tmp_path, "x")
    done = provision_cli("play", str(book), "-i", str(inventory), "--detailed-exitcode",
                         "--state-dir", "state", cwd=tmp_path, timeout=120)  # fmt: skip
    assert done.returncode == 1, done.stderr
