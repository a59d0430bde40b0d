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


FILES = {
    "port_superscript.yml": HOSTS + '{ansible_host: 127.0.0.1, ansible_port: "²"}\n',
    "port_5000_digits.yml": HOSTS + "{ansible_host: 127.0.0.1, ansible_port: " + LONG + "}\n",
    "deep.yml": _deep_inventory(800),
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
]  # fmt: skip


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    for name, text in FILES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    os.mkfifo(tmp_path / "fifo")
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
