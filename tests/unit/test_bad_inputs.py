"""Every file in tests/bad_inputs/ fails to load with exactly the error in this table.

Paths are relative (the test runs in that folder), so messages start with the file's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from provision.errors import ConfigError
from provision.load.inventory import Inventory, load_inventory, parse_extra_vars
from provision.load.playbook import load_playbook
from provision.load.validate import validate
from provision.tasks.base import ModuleSpec, Outcome, TaskContext

CORPUS = Path(__file__).parent.parent / "bad_inputs"


@dataclass(frozen=True)
class NetworkArgs:
    name: str
    driver: str = "bridge"
    internal: bool = False


@dataclass(frozen=True)
class CommandArgs:
    argv: list[str]


@dataclass(frozen=True)
class CopyArgs:
    dest: str
    content: str = ""


def _noop(ctx: TaskContext, args: Any) -> Outcome:
    return Outcome(False)


MODULES = {
    spec.name: spec
    for spec in (
        ModuleSpec("docker_network", NetworkArgs, _noop),
        ModuleSpec("command", CommandArgs, _noop),
        ModuleSpec("copy", CopyArgs, _noop),
    )
}
EMPTY = Inventory(Path("inventory.yml"), {}, {"all": ()}, {})


def _playbook(name: str) -> None:
    load_playbook(name, modules=MODULES)


def _validated(name: str) -> None:
    validate(load_playbook(name, modules=MODULES), EMPTY, {}, modules=MODULES)


def _inventory(name: str) -> None:
    load_inventory(name)


def _extra_file(name: str) -> None:
    parse_extra_vars([f"@{name}"])


def _extra_item(item: str) -> None:
    parse_extra_vars([item])


CASES = [
    # YAML itself
    (_playbook, "syntax_error.yml",
     "syntax_error.yml:6:1: invalid YAML: did not find expected ',' or '}' "
     "(while parsing a flow mapping)"),
    (_playbook, "duplicate_key.yml",
     "duplicate_key.yml:7:9: duplicate key 'name' (first defined at line 6)"),
    # plays
    (_playbook, "play_without_hosts.yml",
     "play_without_hosts.yml:1:3: plays[0].hosts: a play needs 'hosts'"),
    (_playbook, "hosts_not_string.yml",
     "hosts_not_string.yml:2:10: plays[0].hosts: must be a string (a host pattern), got mapping"),
    (_playbook, "tasks_not_list.yml",
     "tasks_not_list.yml:4:5: plays[0].tasks: must be a list of tasks, got mapping"),
    (_playbook, "unknown_play_key.yml",
     "unknown_play_key.yml:3:3: plays[0].becom: unknown play key 'becom' (did you mean 'become'?)"),
    # tasks
    (_playbook, "unknown_module.yml",
     "unknown_module.yml:5:7: plays[0].tasks[0].dockr_network: unknown module 'dockr_network' "
     "(did you mean 'docker_network'?)"),
    (_playbook, "unknown_keyword.yml",
     "unknown_keyword.yml:6:7: plays[0].tasks[0].notfy: unknown task keyword 'notfy' "
     "(did you mean 'notify'?)"),
    (_playbook, "two_modules.yml",
     "two_modules.yml:6:7: plays[0].tasks[0]: a task names exactly one module, "
     "found 'docker_network' and 'copy'"),
    (_playbook, "unknown_handler.yml",
     "unknown_handler.yml:6:30: plays[0].tasks[0].notify: no handler named 'restart openrsty' "
     "(did you mean 'restart openresty'?)"),
    (_playbook, "bad_register.yml",
     "bad_register.yml:6:17: plays[0].tasks[0].register: 'up-time' is not a valid variable name"),
    # blocks
    (_playbook, "block_rescue_alone.yml",
     "block_rescue_alone.yml:4:7: plays[0].tasks[0].rescue: 'rescue' belongs to a block: "
     "write it beside 'block:'"),
    (_playbook, "block_unknown_keyword.yml",
     "block_unknown_keyword.yml:5:7: plays[0].tasks[0].rescues: unknown block keyword "
     "'rescues' (did you mean 'rescue'?)"),
    (_playbook, "block_task_unknown_module.yml",
     "block_task_unknown_module.yml:6:11: plays[0].tasks[0].always[0].dockr_network: unknown "
     "module 'dockr_network' (did you mean 'docker_network'?)"),
    (_playbook, "block_in_handlers.yml",
     "block_in_handlers.yml:5:7: plays[0].handlers[0]: a block among handlers is not "
     "supported; write the handler's tasks one by one"),
    (_validated, "block_failed_task_outside_rescue.yml",
     "block_failed_task_outside_rescue.yml:6:28: plays[0].tasks[0].always[0].command.argv[0]: "
     "undefined variable 'ansible_failed_task'"),
    # module arguments
    (_playbook, "unknown_argument.yml",
     "unknown_argument.yml:7:9: plays[0].tasks[0].docker_network.drvier: unknown argument "
     "'drvier' for module 'docker_network' (known: name, driver, internal)"),
    (_playbook, "missing_argument.yml",
     "missing_argument.yml:5:7: plays[0].tasks[0].docker_network.name: missing required "
     "argument 'name' for module 'docker_network'"),
    (_playbook, "wrong_type_list.yml",
     "wrong_type_list.yml:6:15: plays[0].tasks[0].docker_network.name: must be str, "
     "got list ['shared', 'network']"),
    (_playbook, "wrong_type_bool.yml",
     "wrong_type_bool.yml:7:19: plays[0].tasks[0].docker_network.internal: must be bool, "
     "got str 'maybe'"),
    # variables (validate)
    (_validated, "undefined_var_arg.yml",
     "undefined_var_arg.yml:9:17: plays[0].tasks[0].docker_network.driver: undefined variable "
     "'netwrk_driver' (did you mean 'network'?)"),
    (_validated, "undefined_var_when.yml",
     "undefined_var_when.yml:9:13: plays[0].tasks[1].when: undefined variable 'create_network'"
     " (did you mean 'network'?)"),
    # inventories
    (_inventory, "inventory_shell_host.yml",
     "inventory_shell_host.yml:6:9: all.children.cluster.hosts: invalid host name "
     "'web;rm -rf /' (use letters, digits, '_', '.', '-')"),
    (_inventory, "inventory_bad_port.yml",
     "inventory_bad_port.yml:7:25: all.children.cluster.hosts.web1.ansible_port: must be an "
     "integer port from 1 to 65535, got '22x'"),
    (_inventory, "inventory_unknown_group_key.yml",
     "inventory_unknown_group_key.yml:2:3: all.childrn: unknown group key 'childrn' "
     "(did you mean 'children'?)"),
    (_inventory, "inventory_group_cycle.yml",
     "inventory_group_cycle.yml:5:9: all.children.web.children.app: groups are each other's "
     "children: web -> app -> web"),
    (_inventory, "inventory_unknown_plugin.yml",
     "inventory_unknown_plugin.yml:1:9: plugin: unknown inventory plugin 'provision.aws_ec3' "
     "(did you mean 'provision.aws_ec2'?)"),
    # extra vars (-e)
    (_extra_file, "extra_vars_list.yml",
     "extra_vars_list.yml:1:1: -e: extra vars must be a mapping"),
    (_extra_item, "foo", "-e: expected key=value, @file.yml or a mapping, got 'foo'"),
    (_extra_item, "1x=2", "-e: expected key=value, @file.yml or a mapping, got '1x=2'"),
    (_extra_item, "{a: [1",
     "-e: invalid YAML mapping '{a: [1': expected ',' or ']', but got '<stream end>'"),
]  # fmt: skip


@pytest.mark.parametrize(("load", "name", "expected"), CASES, ids=[c[1] for c in CASES])
def test_bad_input_fails_with_exact_message(
    load: Any, name: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(CORPUS)
    with pytest.raises(ConfigError) as caught:
        load(name)
    assert str(caught.value) == expected


def test_every_corpus_file_is_in_the_table() -> None:
    covered = {name for _, name, _ in CASES}
    assert {p.name for p in CORPUS.glob("*.yml")} <= covered
