"""Hostile inputs through the real CLI (#26's classes): each is refused with exit 2 within
10 s, a message naming the file:line, the field or the flag, no traceback, and nothing made:
no state folder, no connection (the only host is 127.0.0.1 port 1, where nothing listens;
AWS's endpoint is a closed port too, and the hermetic environment has fake credentials)."""

from __future__ import annotations

import importlib
import os
import time
from pathlib import Path

import pytest

from tests.clirun import provision_cli

HOST = ["--host", "admin@127.0.0.1:1"]
LONG = "9" * 5000  # Python refuses to parse an int of more than 4300 digits at all
HOSTS = "all:\n  children:\n    cluster:\n      hosts:\n        web1: "


def _deep_inventory(levels: int) -> str:
    text = "all:\n  children:\n"
    for i in range(levels):
        text += "  " * (i + 2) + f"g{i}:\n" + "  " * (i + 3) + "children:\n"
    return text


# An inventory the project's playbooks accept (inventory/host.yml's vars), its one host at
# 127.0.0.1 port 1 with what follows on its line.
VARS = (
    "all:\n  vars: {cloud: none, cluster_name: host, region: us-east-1, instance_type: "
    "t3.small, image: debian-12, ttl: 4h, http_cidr: 0.0.0.0/0, transfer_images: true}\n"
    "  children:\n    cluster:\n      hosts:\n        web1: {ansible_host: "
)
DEEP_PARENS = "(" * 3000 + "1" + ")" * 3000
NESTED_LOOP = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"

FILES = {
    "port_superscript.yml": HOSTS + '{ansible_host: 127.0.0.1, ansible_port: "²"}\n',
    "port_5000_digits.yml": HOSTS + "{ansible_host: 127.0.0.1, ansible_port: " + LONG + "}\n",
    "deep.yml": _deep_inventory(800),
    "host_shell.yml": VARS + "'127.0.0.1;reboot', ansible_port: 1}\n",
    "user_shell.yml": VARS + "127.0.0.1, ansible_port: 1, ansible_user: 'a b;reboot'}\n",
    "host_template.yml": VARS + "'{{ h }}', ansible_port: 1, h: '1.2.3.4;reboot'}\n",
    "port_template.yml": VARS + "127.0.0.1, ansible_port: '{{ p }}', p: 0}\n",
    "key_missing.yml": VARS + "127.0.0.1, ansible_port: 1, "
    "ansible_ssh_private_key_file: no-such-key}\n",
    "key_readable.yml": VARS + "127.0.0.1, ansible_port: 1, "
    "ansible_ssh_private_key_file: readable_key}\n",
    # doctor: compose files it must refuse, not crash on
    "deep/compose.yml": "services:\n  a:\n    image: redis\n    labels: "
    + "[" * 3000
    + "]" * 3000
    + "\n",
    "merge/compose.yml": "services:\n  a:\n    <<: 5\n    image: redis\n",
    "dotenv/compose.yml": "services:\n  a:\n    image: redis\n",
    # the modules that only read variables: bad arguments are refused at load, too
    "assert_no_that.yml": "- hosts: cluster\n  tasks:\n    - command: {argv: ['true']}\n"
    "    - assert: {fail_msg: x}\n",
    "debug_both.yml": "- hosts: cluster\n  tasks:\n    - command: {argv: ['true']}\n"
    "    - debug: {msg: a, var: b}\n",
    # loops: each item's arguments are checked at load when the list is known
    "loop_item_bad.yml": "- hosts: cluster\n  tasks:\n    - command: {argv: ['true']}\n"
    "    - copy: {dest: \"{{ item }}\", content: x}\n      loop: [/tmp/ok, 'relative;rm']\n",
    "loop_not_a_list.yml": "- hosts: cluster\n  tasks:\n    - command: {argv: ['true']}\n"
    "      loop: 5\n",
    "loop_typo.yml": "- hosts: cluster\n  tasks:\n    - command: {argv: ['echo', '{{ itme }}']}\n"
    "      loop: [1]\n",
    "shell_chdir.yml": "- hosts: cluster\n  tasks:\n    - command: {argv: ['true']}\n"
    "    - shell: {cmd: ls, chdir: 'tmp;reboot'}\n",
    # includes: a cycle, a templated name, a missing file: refused at load
    "include_self.yml": "- hosts: cluster\n  tasks:\n    - import_tasks: self_tasks.yml\n",
    "self_tasks.yml": "- import_tasks: self_tasks.yml\n",
    "include_templated.yml": "- hosts: cluster\n  tasks:\n    - include_tasks: '{{ x }}.yml'\n",
    "include_missing.yml": "- hosts: cluster\n  tasks:\n    - import_tasks: nowhere.yml\n",
    # extra vars nested deeper than a parser's recursion (a traceback before)
    "deep_vars.yml": "a: " + "[" * 3000 + "]" * 3000 + "\n",
    # a region that is no AWS region, in a dynamic inventory
    "mars_aws_ec2.yml": "plugin: provision.aws_ec2\ncluster: demo\nregion: mars-1\n",
    # a playbook whose second task names a source that is not there
    "sources.yml": "- hosts: cluster\n  tasks:\n    - command: {argv: ['true']}\n"
    "    - copy: {src: missing.txt, dest: /tmp/x}\n",
    "templates.yml": "- hosts: cluster\n  tasks:\n    - command: {argv: ['true']}\n"
    "    - template: {src: missing.j2, dest: /tmp/y}\n",
}

# (name, argv, what the message must contain)
CASES = [
    # numbers: '²' passes str.isdigit() and fails int(); 5000 digits fail int() itself
    ("host-port-superscript", ["up", "--host", "admin@127.0.0.1:²"], "--host: expected"),
    ("host-port-5000-digits", ["up", "--host", f"admin@127.0.0.1:{LONG}"], "(5018 chars)"),
    ("host-port-0", ["up", "--host", "admin@127.0.0.1:0"], "--host: must be a port"),
    ("inventory-port-superscript", ["up", "-i", "port_superscript.yml"],
     "port_superscript.yml:5:55: all.children.cluster.hosts.web1.ansible_port"),
    ("inventory-port-5000-digits", ["up", "-i", "port_5000_digits.yml"],
     "port_5000_digits.yml:5:55: a number of 5000 digits is too long (at most 4300)"),
    ("e-instance-count-superscript", ["up", "--check", "-e", "instance_count=²"],
     "-e instance_count: must be an integer from 1 to 10, got '²'"),
    ("e-instance-count-5000-digits", ["up", "--check", "-e", f"instance_count={LONG}"],
     "(5002 chars)"),
    ("e-instance-count-0", ["up", "--check", "-e", "instance_count=0"], "-e instance_count"),
    ("e-http-port-superscript", ["up", *HOST, "-e", "http_port=²"],
     "-e http_port: must be a port from 1 to 65535, got '²'"),
    ("e-http-port-70000", ["up", *HOST, "-e", "http_port=70000"], "-e http_port"),
    ("e-redis-nodes-superscript",
     ["up", *HOST, "-e", "redis_mode=cluster", "-e", "redis_cluster_nodes=²"],
     "-e redis_cluster_nodes: must be an even number"),
    # route endpoints a resolver reads as another address (127.1 is 127.0.0.1; 2852039166 is
    # 169.254.169.254, the instance metadata service), or as none at all
    ("route-127.1", ["routes", "add", "/a", "svc", "127.1:80"], "endpoints: endpoint '127.1:80'"),
    ("route-decimal-metadata", ["routes", "add", "/a", "svc", "2852039166:80"],
     "endpoints: endpoint '2852039166:80'"),
    ("route-hex", ["routes", "add", "/a", "svc", "0x7f000001:80"], "four numbers"),
    ("route-999", ["routes", "add", "/a", "svc", "999.999.999.999:80"], "four numbers"),
    # connection settings given with -e (they win over the inventory's)
    ("e-ansible-port-0", ["up", *HOST, "-e", "ansible_port=0"], "-e ansible_port: must be a port"),
    ("e-ansible-port-abc", ["up", *HOST, "-e", "ansible_port=abc"], "-e ansible_port"),
    ("e-ansible-host-shell", ["up", *HOST, "-e", "ansible_host=1.2.3.4;reboot"],
     "-e ansible_host: invalid host address"),
    ("e-ansible-user-shell", ["up", *HOST, "-e", "ansible_user=a;reboot"],
     "-e ansible_user: invalid name"),
    # depth
    ("inventory-800-deep", ["inventory", "-i", "deep.yml", "--list"],
     "deep.yml: nested too deep"),
    # files and folders
    ("state-dir-dev-null", ["up", *HOST, "--state-dir", "/dev/null"],
     "--state-dir: /dev/null exists and is not a folder"),
    ("state-dir-under-a-file", ["up", *HOST, "--state-dir", "port_superscript.yml/state"],
     "--state-dir: cannot make"),
    ("init-into-proc", ["init", "/proc/provision-hostile"], "DIR: cannot make /proc/"),
    ("doctor-dev-zero", ["doctor", "/dev/zero"], "PATH: /dev/zero is not a file or a folder"),
    ("doctor-fifo", ["doctor", "fifo"], "PATH: fifo is not a file or a folder"),
    # cost: templates past their budget (they ran for hours, or until memory ran out)
    ("template-power", ["up", *HOST, "-e", "x={{ 7 ** 300000000 }}"],
     "-e x: template too costly: 7 ** 300000000 is too large"),
    ("template-nested-loop", ["up", *HOST, "-e", "x=" + NESTED_LOOP],
     "-e x: template too costly: range() gave more than 1000000 numbers"),
    ("template-repeat", ["up", *HOST, "-e", "x={{ 'a' * 100000000 }}"],
     "-e x: template too costly: a repeat of 1 x 100000000 is too large"),
    ("template-center", ["up", *HOST, "-e", "x={{ 'a' | center(2000000) }}"],
     "-e x: template too costly: rendered 2000000 characters"),
    ("template-3000-parentheses", ["up", *HOST, "-e", "x={{ " + DEEP_PARENS + " }}"],
     "-e x: template nested too deep"),
    # variables: a name the runner defines; variables that need each other
    ("e-layout-reserved", ["up", *HOST, "-e", "layout=x"], "-e layout: a name the runner"),
    ("e-groups-reserved", ["up", *HOST, "-e", "groups=x"], "-e groups: a name the runner"),
    ("recursive-pair", ["up", *HOST, "-e", "a={{ b }}", "-e", "b={{ a }}"],
     "-e a: recursive loop detected in template: a -> b -> a"),
    ("recursive-self", ["up", *HOST, "-e", "a={{ a }}"],
     "-e a: recursive loop detected in template: a -> a"),
    # connection settings from the inventory, written and templated, checked at load
    ("inventory-host-shell", ["up", "-i", "host_shell.yml"],
     "host_shell.yml:6:30: all.children.cluster.hosts.web1.ansible_host: invalid host address"),
    ("inventory-user-shell", ["up", "-i", "user_shell.yml"],
     "user_shell.yml:6:72: all.children.cluster.hosts.web1.ansible_user: invalid name"),
    ("inventory-host-template", ["up", "-i", "host_template.yml"],
     "host_template.yml: web1.ansible_host: invalid host address '1.2.3.4;reboot'"),
    ("inventory-port-template", ["up", "-i", "port_template.yml"],
     "port_template.yml: web1.ansible_port: must be a port from 1 to 65535, got 0"),
    ("inventory-key-missing", ["up", "-i", "key_missing.yml"],
     "key_missing.yml: web1.ansible_ssh_private_key_file: cannot read the key file no-such-key"),
    ("inventory-key-readable", ["up", "-i", "key_readable.yml"],
     "key_readable.yml: web1.ansible_ssh_private_key_file: the key file readable_key has "
     "mode 0644: others can read it"),
    # --key: each is refused before a connection, not found out as an authentication failure
    ("key-readable", ["up", *HOST, "--key", "readable_key"],
     "--key: the key file readable_key has mode 0644"),
    ("key-public", ["up", *HOST, "--key", "key.pub"], "--key: key.pub is a public key"),
    ("key-encrypted", ["up", *HOST, "--key", "encrypted_key"],
     "--key: the key encrypted_key is encrypted"),
    ("key-too-large", ["up", *HOST, "--key", "deep.yml"],
     "--key: the key file deep.yml is too large"),
    ("key-text", ["up", *HOST, "--key", "text_key"], "--key: text_key is not an SSH private key"),
    ("key-dev-zero", ["up", *HOST, "--key", "/dev/zero"],
     "--key: the key file /dev/zero is not a regular file"),
    ("key-with-inventory", ["up", "-i", "port_template.yml", "--key", "good_key"],
     "--key goes with --host"),
    # debug/assert/fail take Ansible's arguments, checked before the first task
    ("assert-without-that", ["play", "assert_no_that.yml", *HOST],
     "assert_no_that.yml:4:7: plays[0].tasks[1].assert.that: missing required argument 'that'"),
    ("debug-msg-and-var", ["play", "debug_both.yml", *HOST],
     "debug_both.yml:4:28: plays[0].tasks[1].debug.var: give 'msg' or 'var', not both"),
    ("loop-item-refused-at-load", ["play", "loop_item_bad.yml", *HOST],
     "loop_item_bad.yml:4:20: plays[0].tasks[1].copy.dest: invalid absolute path 'relative;rm'"),
    ("loop-not-a-list", ["play", "loop_not_a_list.yml", *HOST],
     "loop_not_a_list.yml:4:13: plays[0].tasks[0].loop: must be a list or a template"),
    ("loop-item-typo", ["play", "loop_typo.yml", *HOST],
     "undefined variable 'itme' (did you mean 'item'?)"),
    ("shell-chdir-not-a-path", ["play", "shell_chdir.yml", *HOST],
     "shell_chdir.yml:4:31: plays[0].tasks[1].shell.chdir: invalid absolute path 'tmp;reboot'"),
    ("include-cycle", ["play", "include_self.yml", *HOST],
     "self_tasks.yml:1:17: tasks[0].import_tasks: self_tasks.yml includes itself"),
    ("include-templated-name", ["play", "include_templated.yml", *HOST],
     "include_templated.yml:3:22: plays[0].tasks[0].include_tasks: the file name must be"),
    ("include-missing-file", ["play", "include_missing.yml", *HOST],
     "include_missing.yml:3:21: plays[0].tasks[0].import_tasks: no file nowhere.yml beside"),
    # depth: -e given as a deep mapping, or from a deep file
    ("e-deep-json-mapping", ["up", *HOST, "-e", '{"a":' * 3000 + "1" + "}" * 3000],
     "-e: nested too deep"),
    ("e-deep-vars-file", ["up", *HOST, "-e", "@deep_vars.yml"],
     "deep_vars.yml: nested too deep to read"),
    # doctor on compose files that crashed it (a traceback, exit 1)
    ("doctor-deep-compose", ["doctor", "deep"],
     "deep/compose.yml: nested too deep to be a compose file"),
    ("doctor-merge-a-number", ["doctor", "merge"],
     "merge/compose.yml:3:9: not valid YAML: expected a mapping or list of mappings"),
    ("doctor-dotenv-not-utf8", ["doctor", "dotenv"], "dotenv/.env: not UTF-8 text (byte 2)"),
    # --events: a FIFO nobody reads blocked the run; /dev/full failed after the lock was taken
    ("events-fifo-unread", ["up", *HOST, "--events", "fifo"],
     "--events: cannot write events to fifo: nobody reads this FIFO"),
    ("events-dev-full", ["up", *HOST, "--events", "/dev/full"],
     "--events: cannot write events to /dev/full: a device"),
    # regions: no AWS client is made for a region that cannot exist
    ("aws-ec2-region-mars", ["inventory", "-i", "mars_aws_ec2.yml", "--list"],
     "mars_aws_ec2.yml:3:9: region: not an AWS region name: 'mars-1'"),
    ("e-region-mars", ["up", "--check", "-e", "region=mars-1"],
     "ec2_cluster.region: not an AWS region name: 'mars-1'"),
    ("sweep-region-mars", ["sweep", "-e", "region=mars-1"], "not an AWS region name: 'mars-1'"),
    # a copy/template source that is not there fails before the first task, not after it
    ("copy-src-missing", ["play", "sources.yml", *HOST],
     "sources.yml:4:19: plays[0].tasks[1].copy.src: source missing.txt does not exist"),
    ("template-src-missing", ["play", "templates.yml", *HOST],
     "templates.yml:4:23: plays[0].tasks[1].template.src: template missing.j2 does not exist"),
]  # fmt: skip


def _keys(folder: Path) -> None:
    """Key files as a user may hold them: a good one, one others can read, its public half,
    one encrypted with a passphrase, and a text that is no key."""
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    plain = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.OpenSSH, ser.NoEncryption())
    locked = key.private_bytes(
        ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.BestAvailableEncryption(b"secret")
    )
    public = key.public_key().public_bytes(ser.Encoding.OpenSSH, ser.PublicFormat.OpenSSH)
    for name, data, mode in (("good_key", plain, 0o600), ("readable_key", plain, 0o644),
                             ("key.pub", public, 0o600), ("encrypted_key", locked, 0o600),
                             ("text_key", b"not a key\n", 0o600)):  # fmt: skip
        (folder / name).write_bytes(data)
        (folder / name).chmod(mode)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    for name, text in FILES.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
        (tmp_path / name).chmod(0o644)
    (tmp_path / "dotenv" / ".env").write_bytes(b"A=\xff\xfe\n")
    os.mkfifo(tmp_path / "fifo")
    _keys(tmp_path)
    return tmp_path


def test_every_case_has_its_own_name():
    assert len({name for name, _, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(("name", "argv", "expected"), CASES, ids=[c[0] for c in CASES])
def test_refused_at_once_with_exit_2_naming_where(corpus: Path, name, argv, expected):
    started = time.monotonic()
    done = provision_cli(*argv, cwd=corpus, timeout=30)
    took = time.monotonic() - started
    assert done.returncode == 2, done.stderr
    assert took < 10, took
    assert expected in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not (corpus / ".provision").exists()  # no state folder, so no lock, no run


@pytest.mark.parametrize(
    ("argv", "target"),
    [(["doctor"], "provision.doctor.diagnose"),
     (["inventory", "--list"], "provision.load.inventory.load_inventory")],
)  # fmt: skip
def test_ctrl_c_in_a_read_exits_130_not_1(monkeypatch, tmp_path, argv, target):
    """Ctrl-C arrives as KeyboardInterrupt wherever the command is; click alone would print
    "Aborted!" and exit 1. (The interrupt is raised by the read itself: this tests the
    exit code, not the signal.)"""
    from click.testing import CliRunner

    from provision.cli import main

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    module, _, name = target.rpartition(".")
    monkeypatch.setattr(importlib.import_module(module), name, interrupted)
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(main, argv)
    assert done.exit_code == 130, done.output
