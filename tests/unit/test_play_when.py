"""A play's ``when``: a host for which it is false skips the whole play (the swarm plays of
up.yml and the single-host ones share one playbook); its variables are checked at load."""

from __future__ import annotations

import pytest

from provision.errors import ConfigError
from provision.tasks.base import TaskContext
from tests.unit.fakes import Hosts
from tests.unit.fakes import load_play as load
from tests.unit.fakes import run_play as run

PLAY = """
- name: only on h2
  hosts: cluster
  gather_facts: false
  when: inventory_hostname == 'h2' and layout.topology == 'single'
  tasks:
    - name: conf
      ensure_file: {path: /etc/app.conf, content: "{{ greeting }}"}
"""


def test_a_false_play_condition_skips_the_host_and_touches_nothing(tmp_path):
    book, inv = load(tmp_path, PLAY)
    hosts = Hosts()
    report = run(book, inv, hosts)
    assert hosts.files == {("h2", "/etc/app.conf"): "hello"}
    assert "h1" not in hosts.remotes  # not even connected
    assert report.recap["h2"].changed == 1


def test_the_play_condition_names_only_known_variables(tmp_path):
    with pytest.raises(ConfigError, match="undefined variable 'topolgy'"):
        load(tmp_path, PLAY.replace("layout.topology == 'single'", "topolgy == 'single'"))


def test_a_task_context_reaches_its_peers_only_through_the_runner():
    from tests.unit.fakes import FakeRemote

    ctx = TaskContext(FakeRemote())
    assert ctx.peer("fake") is ctx.conn
    with pytest.raises(ConfigError, match="cannot be reached"):
        ctx.peer("other")
