"""Which host runs on the controller (#26, hole 1): only Ansible's implicit ``localhost`` and
hosts with ``ansible_connection: local``. An inventory entry named ``localhost`` with an address
of its own is a host like any other, reached over SSH (here: the fake connector), as Ansible
treats an explicit ``localhost`` entry. Run with the real ``command`` module: on the old code
the entry's task ran on this machine as this user."""

from __future__ import annotations

import textwrap
from pathlib import Path

from provision.load.inventory import load_inventory
from provision.load.playbook import load_playbook
from provision.load.validate import validate
from provision.run.options import Options
from provision.run.runner import Runner
from provision.tasks import registry
from tests.unit.fakes import FakeRemote

PLAY = """
- name: touch
  hosts: {hosts}
  gather_facts: false
  tasks:
    - name: mark
      command: {{argv: [touch, "{marker}"]}}
"""


def _run(tmp_path: Path, inventory: str, hosts: str) -> tuple[list[str], Path]:
    marker = tmp_path / "ran-on-the-controller"
    (tmp_path / "inv.yml").write_text(textwrap.dedent(inventory))
    (tmp_path / "play.yml").write_text(PLAY.format(hosts=hosts, marker=marker))
    modules = registry()
    book = load_playbook(tmp_path / "play.yml", modules=modules)
    inv = load_inventory(tmp_path / "inv.yml")
    validate(book, inv, {}, modules=modules)
    remotes: list[str] = []

    def connect(spec):
        remotes.append(f"{spec.name}@{spec.address}:{spec.port}")
        return FakeRemote(host=spec)

    report = Runner(Options(state_dir=tmp_path / "state"), connector=connect,
                    modules=modules).run(book, inv)  # fmt: skip
    assert not report.failed, report.errors
    return remotes, marker


def test_an_inventory_host_named_localhost_is_reached_over_ssh_not_run_here(tmp_path):
    remotes, marker = _run(tmp_path, """
        cluster:
          hosts:
            localhost: {ansible_host: 127.0.0.1, ansible_port: 1, ansible_user: admin}
    """, "cluster")  # fmt: skip
    assert remotes == ["localhost@127.0.0.1:1"]
    assert not marker.exists(), "the task ran on the controller"


def test_the_implicit_localhost_and_ansible_connection_local_run_here(tmp_path):
    remotes, marker = _run(tmp_path, """
        cluster:
          hosts:
            web-1: {ansible_host: 127.0.0.1}
    """, "localhost")  # fmt: skip
    assert remotes == [] and marker.exists()
    marker.unlink()
    remotes, marker = _run(tmp_path, """
        cluster:
          hosts:
            here: {ansible_connection: local}
    """, "cluster")  # fmt: skip
    assert remotes == [] and marker.exists()
