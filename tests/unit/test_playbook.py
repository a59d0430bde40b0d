from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from provision.errors import ConfigError
from provision.load.inventory import Inventory, InventoryHost
from provision.load.playbook import Location, load_playbook
from provision.load.validate import validate
from provision.load.yamlsource import value_loc
from provision.tasks.base import ModuleSpec, Outcome, TaskContext


@dataclass(frozen=True)
class NetworkArgs:
    name: str
    driver: str = "bridge"
    internal: bool = False


@dataclass(frozen=True)
class CommandArgs:
    argv: list[str]
    retries: int = 0


@dataclass(frozen=True)
class CopyArgs:
    dest: str
    content: str = ""
    env: dict[str, str] | None = None


def _noop(ctx: TaskContext, args: Any) -> Outcome:
    return Outcome(False)


MODULES = {
    spec.name: spec
    for spec in (
        ModuleSpec("docker_network", NetworkArgs, _noop),
        ModuleSpec("command", CommandArgs, _noop),
        ModuleSpec("copy", CopyArgs, _noop),
        ModuleSpec("ping", NetworkArgs, _noop),
    )
}

GOOD = """\
- name: network
  hosts: cluster:!db
  become: true
  gather_facts: false
  vars:
    network: shared-network
  vars_files: [vars.yml]
  tasks:
    - docker_network: {name: "{{ network }}", internal: "{{ internal }}"}
      notify: restart
    - name: check
      command: {argv: [docker, network, ls]}
      register: nets
      when: [network != '', true]
      until: nets is succeeded
      tags: net
      ignore_errors: yes
      check_mode: false
      retries: 2
      delay: 0.5
  handlers:
    - name: restart
      command:
        argv: [docker, restart, openresty]
      listen: [config changed]
- hosts: localhost
  tasks: []
"""


def _write(tmp_path: Path, text: str, name: str = "pb.yml") -> Path:
    (tmp_path / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return tmp_path / name


def test_load_a_playbook(tmp_path: Path) -> None:
    _write(tmp_path, "internal: true\nnetwork: from-file\n", "vars.yml")
    book = load_playbook(_write(tmp_path, GOOD), modules=MODULES)
    first, second = book.plays
    assert (first.name, first.hosts, first.become, first.gather_facts) == (
        "network",
        "cluster:!db",
        True,
        False,
    )
    assert first.vars == {"network": "from-file", "internal": True}  # vars_files win over vars
    create, check = first.tasks
    assert (create.name, create.module, create.notify, create.retries) == (
        "docker_network",
        "docker_network",
        ("restart",),
        0,
    )
    assert create.args == {"name": "{{ network }}", "internal": "{{ internal }}"}
    assert create.loc == Location(str(tmp_path / "pb.yml"), 9, 7)
    assert check.when == "(network != '') and (true)"
    assert (check.register, check.until, check.tags) == ("nets", "nets is succeeded", ("net",))
    assert (check.ignore_errors, check.check_mode, check.retries, check.delay) == (
        True,
        False,
        2,
        0.5,
    )
    assert check.field_locs["when"].line == 14
    assert first.handlers[0].listen == ("config changed",)
    assert value_loc(check.args, "argv") == Location(str(tmp_path / "pb.yml"), 12, 23)
    assert (second.name, second.tasks, second.gather_facts, second.become) == (
        "localhost",
        (),
        True,
        False,
    )


def test_until_retries_three_times_by_default(tmp_path: Path) -> None:
    book = load_playbook(
        _write(
            tmp_path,
            """\
        - hosts: all
          tasks:
            - command: {argv: [/bin/true]}
              register: r
              until: r is succeeded
        """,
        ),
        modules=MODULES,
    )
    assert (book.plays[0].tasks[0].retries, book.plays[0].tasks[0].delay) == (3, 5.0)


# Each case: a playbook, and the exact error (after "pb.yml:").
BAD = [
    ("", "a playbook must be a non-empty list of plays"),
    ("hosts: all\n", "1:1: plays: a playbook must be a list of plays, got mapping"),
    ("- [a]\n", "1:3: plays[0]: a play must be a mapping, got list"),
    ("- hosts: 'a b'\n", "1:10: plays[0].hosts: invalid host pattern 'a b'"),
    ("- hosts: 'web;ls'\n", "1:10: plays[0].hosts: invalid host pattern 'web;ls'"),
    ("- {hosts: all, become: 'yes'}\n", "1:24: plays[0].become: must be true or false, got string"),
    ("- {hosts: all, vars: [a]}\n", "1:22: plays[0].vars: vars must be a mapping, got list"),
    ("- {hosts: all, vars: {a-b: 1}}\n", "1:23: plays[0].vars: invalid variable name 'a-b'"),
    (
        "- {hosts: all, tasks: [x]}\n",
        "1:24: plays[0].tasks[0]: a task must be a mapping, got string",
    ),
    ("- {hosts: all, tasks: [{name: x}]}\n", "1:24: plays[0].tasks[0]: a task must name a module"),
    (
        "- {hosts: all, tasks: [{command: echo hi}]}\n",
        "1:34: plays[0].tasks[0].command: the arguments of 'command' must be a mapping, got string",
    ),
    (
        "- {hosts: all, tasks: [{command: {argv: [a]}, listen: x}]}\n",
        "1:47: plays[0].tasks[0].listen: unknown task keyword 'listen'",
    ),
    (
        "- {hosts: all, tasks: [{ping: {name: a}, whn: x}]}\n",
        "1:42: plays[0].tasks[0].whn: unknown task keyword 'whn' (did you mean 'when'?)",
    ),
    (
        "- {hosts: all, tasks: [{command: {argv: [a]}, when: {a: 1}}]}\n",
        "1:53: plays[0].tasks[0].when: must be an expression (a string), got mapping",
    ),
    (
        "- {hosts: all, tasks: [{command: {argv: [a]}, notify: [1]}]}\n",
        "1:55: plays[0].tasks[0].notify: must be a string or a list of strings, got list",
    ),
    (
        "- {hosts: all, tasks: [{command: {argv: [a]}, retries: -1}]}\n",
        "1:56: plays[0].tasks[0].retries: must be from 0 to 1000, got -1",
    ),
    (
        "- {hosts: all, tasks: [{command: {argv: [a]}, retries: true}]}\n",
        "1:56: plays[0].tasks[0].retries: must be a whole number, got bool",
    ),
    (
        "- {hosts: all, tasks: [{command: {argv: [a]}, register: class}]}\n",
        "1:57: plays[0].tasks[0].register: 'class' is not a valid variable name",
    ),
    (
        "- {hosts: all, tasks: [{command: {argv: [a, [b]]}}]}\n",
        "1:45: plays[0].tasks[0].command.argv[1]: must be str, got list ['b']",
    ),
    (
        "- {hosts: all, tasks: [{command: {argv: [a], retries: x}}]}\n",
        "1:55: plays[0].tasks[0].command.retries: must be int, got str 'x'",
    ),
    (
        "- {hosts: all, handlers: [{command: {argv: [a]}, notify: nope}]}\n",
        "1:58: plays[0].handlers[0].notify: no handler named 'nope'",
    ),
    (
        "- {hosts: all, vars_files: [missing.yml]}\n",
        "1:29: plays[0].vars_files[0]: no such file: missing.yml",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_playbooks(
    text: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_playbook("pb.yml", modules=MODULES)
    separator = " " if message.startswith("a playbook") else ""
    assert str(caught.value) == f"pb.yml:{separator}{message}"


def test_templated_arguments_pass_type_checks_at_load(tmp_path: Path) -> None:
    book = load_playbook(
        _write(
            tmp_path,
            """\
        - hosts: all
          tasks:
            - docker_network: {name: x, internal: "{{ flag }}"}
        """,
        ),
        modules=MODULES,
    )
    assert book.plays[0].tasks[0].args["internal"] == "{{ flag }}"


# ---------------------------------------------------------------- validate

INVENTORY = Inventory(
    Path("inv.yml"),
    hosts={
        "web1": InventoryHost("web1", {"port": 80, "only_web1": 1}, ("all", "cluster")),
        "web2": InventoryHost("web2", {"port": 81}, ("all", "cluster")),
    },
    groups={"all": ("web1", "web2"), "cluster": ("web1", "web2"), "later": ()},
    group_vars={"all": {"region": "eu"}, "later": {"size": "small"}},
    parents={"all": (), "cluster": ("all",), "later": ("all",)},
)


def _validate(tmp_path: Path, text: str, **extra: Any) -> None:
    book = load_playbook(_write(tmp_path, text), modules=MODULES)
    validate(book, INVENTORY, {"cli": 1}, modules=MODULES, **extra)


GOOD_VARS = """\
- hosts: later
  vars: {url: "http://{{ region }}/{{ size }}"}
  tasks:
    - command: {argv: ["{{ url }}", "{{ cli }}", "{{ playbook_dir }}"]}
      register: made
    - command: {argv: ["{{ inventory_hostname }}", "{{ layout.network }}"]}
      register: again
      until: again.rc == 0
- hosts: cluster
  tasks:
    - copy: {dest: "/{{ port }}", env: {A: "{{ made.stdout }}"}}
      when: inventory_hostname in groups.cluster and published
"""


def test_validate_accepts_known_names(tmp_path: Path) -> None:
    # Every name in GOOD_VARS is known (inventory, play vars, extra vars, magic names, a
    # register, a published name); the same playbook fails as soon as one of them is not.
    assert _validate(tmp_path, GOOD_VARS, extra_names={"published"}) is None
    with pytest.raises(ConfigError, match="undefined variable 'published'"):
        _validate(tmp_path, GOOD_VARS)
    with pytest.raises(ConfigError, match="undefined variable 'made'"):
        _validate(
            tmp_path,
            GOOD_VARS.replace("register: made", "register: other"),
            extra_names={"published"},
        )


@pytest.mark.parametrize("name", ["item", "hostvars"])
def test_names_no_run_defines_are_refused(tmp_path: Path, name: str) -> None:
    # No loops, no hostvars: a template naming them would fail at run time, so it fails here.
    text = f"- hosts: all\n  tasks:\n    - command: {{argv: ['{{{{ {name} }}}}']}}\n"
    with pytest.raises(ConfigError, match=f"undefined variable '{name}'"):
        _validate(tmp_path, text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "- hosts: cluster\n  tasks:\n    - copy: {dest: '{{ only_web1 }}'}\n",
            "3:20: plays[0].tasks[0].copy.dest: undefined variable 'only_web1' for host 'web2'",
        ),
        (
            "- hosts: later\n  tasks:\n    - copy: {dest: '{{ port }}'}\n",
            "3:20: plays[0].tasks[0].copy.dest: undefined variable 'port'"
            " (did you mean 'http_port'?)",
        ),
        (
            "- hosts: all\n  tasks:\n    - copy: {dest: x, env: {A: '{{ nope }}'}}\n",
            "3:32: plays[0].tasks[0].copy.env.A: undefined variable 'nope'",
        ),
        (
            "- hosts: all\n  tasks:\n    - command: {argv: [a, '{{ nope }}']}\n",
            "3:27: plays[0].tasks[0].command.argv[1]: undefined variable 'nope'",
        ),
        (
            "- hosts: all\n  tasks:\n    - command: {argv: [a]}\n      until: r.rc == 0\n",
            "4:14: plays[0].tasks[0].until: undefined variable 'r'",
        ),
        (
            "- hosts: all\n  tasks:\n    - command: {argv: [a]}\n      when: r.rc == 0\n"
            "      register: r\n",
            "4:13: plays[0].tasks[0].when: undefined variable 'r'",
        ),
        (
            "- hosts: all\n  vars: {a: '{{ b }}'}\n  tasks: []\n",
            "2:13: plays[0].vars.a: undefined variable 'b'",
        ),
        (
            "- hosts: all\n  tasks:\n    - command: {argv: ['{{ a +}}']}\n",
            "3:24: plays[0].tasks[0].command.argv[0]: template syntax error: "
            "unexpected 'end of print statement'",
        ),
    ],
)
def test_validate_names_the_undefined_variable(
    tmp_path: Path, text: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        validate(load_playbook("pb.yml", modules=MODULES), INVENTORY, {}, modules=MODULES)
    assert str(caught.value) == f"pb.yml:{message}"


def test_validate_rechecks_modules(tmp_path: Path) -> None:
    book = load_playbook(
        _write(tmp_path, "- hosts: all\n  tasks:\n    - ping: {name: a}\n"), modules=MODULES
    )
    with pytest.raises(
        ConfigError,
        match=r"pb.yml:3:7: plays\[0\].tasks\[0\].ping: unknown "
        r"module 'ping'",
    ):
        validate(book, INVENTORY, {}, modules={"command": MODULES["command"]})
