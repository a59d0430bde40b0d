"""A run's variables are resolved once (``provision.load.variables.RunVars``), where the API
starts the run, and that one object is what validation, the run lock, the runner and its
connections read."""

from __future__ import annotations

import textwrap
from collections import Counter

from provision import api
from provision.load import variables as variables_module
from provision.load.inventory import load_inventory
from provision.load.variables import RunVars
from provision.run.options import Options
from provision.run.runner import Runner
from tests.unit.fakes import INVENTORY, Hosts

PLAYBOOK = """
- name: first
  hosts: cluster
  gather_facts: false
  tasks:
    - debug: {msg: "{{ greeting }} {{ inventory_hostname }}"}
    - set_fact: {said: "{{ greeting }}"}
    - debug: {msg: "{{ said }}"}
- name: second
  hosts: cluster
  gather_facts: false
  vars: {greeting: bye}
  tasks:
    - debug: {msg: "{{ greeting }}"}
    - debug: {msg: "{{ said }} then {{ greeting }}"}
"""


def _files(tmp_path):
    (tmp_path / "inv.yml").write_text(INVENTORY)
    (tmp_path / "play.yml").write_text(textwrap.dedent(PLAYBOOK))
    return tmp_path / "play.yml", tmp_path / "inv.yml"


def _fake_ssh(monkeypatch) -> Hosts:
    hosts = Hosts()
    monkeypatch.setattr(Runner, "_ssh", lambda self, spec: hosts.connect(spec))
    return hosts


def test_a_run_merges_each_hosts_variables_once_per_play_however_many_tasks(tmp_path, monkeypatch):
    merged: Counter[str] = Counter()
    real = variables_module.resolve_vars

    def counting(inventory, host, play_vars, extra_vars):
        merged[host] += 1
        return real(inventory, host, play_vars, extra_vars)

    monkeypatch.setattr(variables_module, "resolve_vars", counting)
    _fake_ssh(monkeypatch)
    playbook, inventory = _files(tmp_path)
    options = Options(state_dir=tmp_path / "state", extra_vars={"region": "eu-west-1"})

    report = api.run_playbook(playbook, inventory, options)

    assert not report.failed, report.recap
    assert [r.msg for r in report.results if r.host == "h1" and r.task.startswith("debug")] == [
        "hello h1",
        "hello",
        "bye",
        "hello then bye",
    ]
    # The cluster's once; each host once for its connection and once per play (validation
    # and the runner share them), not once per task and layer as before.
    assert merged == {"localhost": 1, "h1": 3, "h2": 3}


def test_extra_vars_reach_the_connection_of_a_run_as_they_reach_the_apis_host_lookup(
    tmp_path, monkeypatch
):
    hosts = _fake_ssh(monkeypatch)
    playbook, inventory = _files(tmp_path)
    options = Options(state_dir=tmp_path / "state", extra_vars={"ansible_user": "root"})

    report = api.run_playbook(playbook, inventory, options)

    assert not report.failed, report.recap
    assert {r.host.user for r in hosts.remotes.values()} == {"root"}  # Ansible: -e wins
    from provision.api.hosts import cluster_hosts

    inv = load_inventory(inventory)
    looked_up = cluster_hosts(inv, RunVars(inv, options.extra_vars), options)
    assert [h.user for h in looked_up] == ["root", "root"]
    assert [(h.name, h.address) for h in looked_up] == [
        (r.host.name, r.host.address) for r in hosts.remotes.values()
    ]


def test_the_run_lock_names_the_cluster_the_extra_vars_give(tmp_path):
    _, inventory = _files(tmp_path)
    options = Options(state_dir=tmp_path / "state", extra_vars={"cluster_name": "ci-42"})
    lock = api.run_lock(inventory, options)
    assert lock.cluster == "ci-42"
    assert lock.path == (tmp_path / "state").resolve() / "ci-42" / "run.lock"
