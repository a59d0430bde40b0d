"""The README's first command as a newcomer runs it on a stock Debian 12 (#24): a bare EC2-like
host of the test bed (systemd, python3 without pip, the system Python externally managed: PEP
668), the checkout's tracked files copied in as a clone has them, and as the `admin` user with
sudo, `scripts/setup.sh && provision up` with `--check`: the set-up installs the apt packages,
the Docker engine and the package in a virtual environment, puts `provision` on the PATH, and
the sandbox's `up --check` says what it would launch (the engine, which `up` asks first, lets
`admin` in before the docker group applies). The set-up's second run does nothing.

apt reaches Debian's mirror and pip PyPI from inside the host, as a newcomer's would; nothing
else leaves this machine."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable

import pytest

from provision.sandbox import localdocker
from provision.sandbox.hosts import SandboxHost
from tests.clirun import ROOT

pytestmark = pytest.mark.integration


def _first_command() -> str:
    """The README's first command (the "Two commands" block's first line, its comment off)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Two commands", 1)[1].split("```sh\n", 1)[1]
    return block.splitlines()[0].split("#", 1)[0].strip()


def test_the_readme_s_first_command_works_on_a_stock_debian_12(
    bare_ssh_host: SandboxHost, ssh_argv: Callable[..., list[str]]
) -> None:
    def on_host(script: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        argv = ssh_argv(bare_ssh_host, "bash", "-lc", script)
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)

    command = _first_command()
    assert command == "scripts/setup.sh && provision up", command
    stock = on_host("python3 -m pip --version; echo rc=$?; "
                    "ls /usr/lib/python3.*/EXTERNALLY-MANAGED")  # fmt: skip
    assert "No module named pip" in stock.stderr and "rc=1" in stock.stdout, stock
    assert "EXTERNALLY-MANAGED" in stock.stdout, stock

    # This machine reaches PyPI through a TLS-inspecting proxy, whose CA it trusts (its pip
    # is given its CA bundle: /etc/pip.conf); the host is given the same trust, as its network
    # would. A newcomer's machine on an open network needs none of this.
    container = bare_ssh_host.container_name
    localdocker.docker("cp", "/etc/ssl/certs/ca-certificates.crt",
                       f"{container}:/etc/ssl/certs/testbed-ca-bundle.crt")  # fmt: skip
    localdocker.docker("exec", container, "sh", "-c",
                       "printf '[global]\\ncert = /etc/ssl/certs/testbed-ca-bundle.crt\\n'"
                       " > /etc/pip.conf")  # fmt: skip

    # The checkout as a clone has it: its tracked files, owned by the newcomer.
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                           check=True, timeout=60).stdout  # fmt: skip
    archive = subprocess.run(["tar", "-c", "-C", str(ROOT), "--null", "-T", "-"], input=files,
                             capture_output=True, check=True, timeout=120).stdout  # fmt: skip
    localdocker.docker("exec", container, "install", "-d", "-o", "admin", "-g", "admin",
                       "/home/admin/provision")  # fmt: skip
    subprocess.run(["docker", "exec", "-i", "-u", "admin", container, "tar", "-x", "-C",
                    "/home/admin/provision"], input=archive, check=True, timeout=120)  # fmt: skip

    first = on_host(f"cd ~/provision && {command} --check", timeout=900)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "setup: installing" in first.stdout, first.stdout
    assert "admin may use the Docker engine in this login too" in first.stdout, first.stdout
    assert re.search(r"changed localhost: .*would launch 1 x", first.stderr), first.stderr
    assert re.search(r"^localhost +ok=\d+ changed=1 failed=0", first.stderr, re.M), first.stderr
    where = on_host('command -v provision; readlink -f "$(command -v provision)"')
    assert where.stdout.split() == ["/usr/local/bin/provision",
                                    "/home/admin/provision/.venv/bin/provision"], where  # fmt: skip

    again = on_host("cd ~/provision && scripts/setup.sh", timeout=120)
    assert again.returncode == 0, again.stderr
    assert "installing" not in again.stdout and "starting" not in again.stdout, again.stdout
    assert again.stdout.startswith("setup: ready"), again.stdout
