"""The holes an audit found in "bad input is refused before any call", each as the user would
hit it: through the real CLI, asserting exit 2, one clear line, no traceback, and that no
connection was attempted (the hosts are on a loopback port where nothing listens, and the event
stream shows no ``connect``).
"""

from __future__ import annotations

import json
import os
import random
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provision.cluster.routes import validate, validate_endpoint, validate_prefix
from provision.connection.keys import ensure_key_file, make_private_dir
from provision.errors import ConfigError
from provision.models.names import check_name, check_path
from tests.helpers import ENDPOINTS_ACCEPTED, ENDPOINTS_REFUSED

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "provision"


def _closed_port() -> int:
    """A loopback port where nothing listens (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "provision.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def refused(done: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit 2, no traceback, one line on stderr that says ``error:`` and holds ``fragments``."""
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


@pytest.fixture
def static_inventory(tmp_path: Path) -> Path:
    """One static host on a loopback port where nothing listens (no cloud)."""
    path = tmp_path / "inv.yml"
    path.write_text(
        "all:\n  vars: {cloud: none, cluster_name: holes}\n  children:\n    cluster:\n"
        f"      hosts:\n        web1: {{ansible_host: 127.0.0.1, ansible_port: {_closed_port()}}}\n"
    )
    return path


def _no_connect(events: Path) -> None:
    kinds = [json.loads(line)["event"] for line in events.read_text().splitlines()]
    assert "connect" not in kinds and "unreachable" not in kinds, kinds


# ---------------------------------------------------------------- 1. anchored matching


def test_no_unanchored_pattern_is_left_in_the_package() -> None:
    # `re.match(r"^...$")` lets a trailing newline through; every validator matches whole.
    leftovers = []
    for path in PACKAGE.rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"""re\.(match|compile)\(r?["']\^.*\$["']""", line):
                leftovers.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert leftovers == []


def test_route_prefix_with_a_newline_exits_2_before_any_connection(
    tmp_path: Path, static_inventory: Path
) -> None:
    started = time.monotonic()
    done = cli(
        "routes",
        "add",
        "/internal\n",
        "admin",
        "10.0.0.9:8080",
        "-i",
        str(static_inventory),
        "--state-dir",
        str(tmp_path / "state"),
        cwd=tmp_path,
    )
    elapsed = time.monotonic() - started
    refused(done, "prefix", "'/internal\\n'")
    # Refused before any connection: far from the 120 s connect deadline. The bound is the
    # hostile corpus's 10 s (a CLI start-up on a loaded 2-core machine took over 2 s).
    assert elapsed < 10.0, elapsed
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["add", "/api", "svc\n", "echo-a:80"], "service"),
        (["add", "/api", "svc", "echo-a:99999"], "port must be from 1 to 65535"),
        (["add", "/api", "svc", "169.254.169.254:80"], "link-local"),
        (["add", "/api", "svc", "127.0.0.1:6379"], "loopback"),
        (["add", "/api/../admin", "svc", "echo-a:80"], "normalised"),
        (["add", "/a b", "svc", "echo-a:80"], "prefix"),
        (["rm", "/internal\n"], "prefix"),
    ],
)
def test_bad_routes_exit_2_before_connecting(
    tmp_path: Path, static_inventory: Path, args: list[str], fragment: str
) -> None:
    done = cli("routes", *args, "-i", str(static_inventory), "--state-dir",
               str(tmp_path / "state"), cwd=tmp_path)  # fmt: skip
    refused(done, fragment)
    assert "unreachable" not in done.stderr


def test_cluster_name_with_a_newline_is_refused(tmp_path: Path) -> None:
    # (key=value reads a YAML scalar, which drops a trailing newline; a mapping keeps it)
    done = cli("status", "-e", '{"cluster_name": "demo\\n"}', "--state-dir",
               str(tmp_path / "s"), cwd=tmp_path)  # fmt: skip
    refused(done, "cluster_name", "invalid name 'demo\\n'")


# ---------------------------------------------------------------- 2. templated values


def test_shell_character_in_network_by_extra_vars_is_refused_at_load(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    done = cli(
        "up",
        "--host",
        f"admin@127.0.0.1:{_closed_port()}",
        "-e",
        "network=net;reboot",
        "--events",
        str(events),
        "--state-dir",
        str(tmp_path / "s"),
        cwd=tmp_path,
    )
    refused(done, "network", "invalid name 'net;reboot'")
    _no_connect(events)


def test_a_bad_rendered_task_argument_is_refused_before_the_first_task(tmp_path: Path) -> None:
    # The first task would change the host; the third's argument, rendered from -e, is bad.
    book = tmp_path / "play.yml"
    book.write_text(
        "- hosts: cluster\n  gather_facts: false\n  tasks:\n"
        "    - copy: {dest: /tmp/first, content: x}\n"
        "    - copy: {dest: /tmp/second, content: y}\n"
        '    - docker_network: {name: "{{ net }}"}\n'
    )
    events = tmp_path / "events.jsonl"
    done = cli("play", str(book), "--host", f"admin@127.0.0.1:{_closed_port()}", "-e",
               "net=$(reboot)", "--events", str(events), cwd=tmp_path)  # fmt: skip
    refused(done, "play.yml:6:", "docker_network.name", "invalid name '$(reboot)'")
    _no_connect(events)


# ---------------------------------------------------------------- 4. tracebacks


@pytest.mark.parametrize("delay", [".inf", ".nan", "-1"])
def test_delay_that_is_not_a_finite_number_is_refused(tmp_path: Path, delay: str) -> None:
    book = tmp_path / "play.yml"
    book.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        f"    - command: {{argv: [echo]}}\n      register: r\n      until: r.rc == 0\n"
        f"      delay: {delay}\n"
    )
    refused(cli("play", str(book), cwd=tmp_path), "play.yml:7:14", "delay: must be from 0")


def test_nul_byte_in_a_value_on_localhost_is_refused_at_load(tmp_path: Path) -> None:
    book = tmp_path / "play.yml"
    book.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        '    - command: {argv: [echo, "a\\0b"]}\n'
    )
    refused(cli("play", str(book), cwd=tmp_path), "play.yml:4:", "NUL byte")


@pytest.mark.parametrize("where", ["missing/events.jsonl", "."])
def test_events_to_a_missing_folder_or_a_folder_is_refused(tmp_path: Path, where: str) -> None:
    done = cli("up", "--host", f"admin@127.0.0.1:{_closed_port()}", "--events", where,
               "--state-dir", str(tmp_path / "s"), cwd=tmp_path)  # fmt: skip
    refused(done, "--events", "cannot write events")


def test_doctor_on_malformed_yaml(tmp_path: Path) -> None:
    (tmp_path / "docker-compose.yml").write_text("services: [\n  a: {\n")
    refused(cli("doctor", str(tmp_path), cwd=tmp_path), "docker-compose.yml:3:1",
            "not valid YAML")  # fmt: skip


def test_inventory_that_never_ends_is_refused(tmp_path: Path) -> None:
    refused(cli("up", "-i", "/dev/zero", cwd=tmp_path, timeout=30), "/dev/zero",
            "not a regular file")  # fmt: skip


def test_huge_ttl_is_refused_before_any_cloud_call(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    done = cli("up", "-e", "ttl=99999999999d", "--events", str(events), "--state-dir",
               str(tmp_path / "s"), cwd=tmp_path)  # fmt: skip
    refused(done, "ttl")
    assert events.read_text() == ""  # not even the first play started
    assert not (tmp_path / "s").exists()


# ---------------------------------------------------------------- 5. hangs


@pytest.mark.parametrize("value", ["nan", "inf", "-3"])
def test_connect_deadline_that_never_ends_is_refused(tmp_path: Path, value: str) -> None:
    done = cli(
        "up",
        "--host",
        f"admin@127.0.0.1:{_closed_port()}",
        "--connect-deadline",
        value,
        "--state-dir",
        str(tmp_path / "s"),
        cwd=tmp_path,
        timeout=30,
    )
    refused(done, "--connect-deadline")


def test_fifo_as_a_playbook_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "book.yml"
    os.mkfifo(fifo)
    refused(cli("play", str(fifo), cwd=tmp_path, timeout=30), "not a regular file")


BOMB = "\n".join(
    [f"  l0: &l0 [{', '.join(['x'] * 9)}]"]
    + [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 7)]
)


def test_alias_bomb_in_play_vars_is_refused_quickly(tmp_path: Path) -> None:
    book = tmp_path / "play.yml"
    book.write_text(f"- hosts: localhost\n  vars:\n{BOMB}\n  tasks: []\n")
    started = time.monotonic()
    refused(cli("play", str(book), cwd=tmp_path, timeout=60), "alias bomb")
    assert time.monotonic() - started < 10


def test_alias_bomb_in_task_arguments_is_refused_quickly(tmp_path: Path) -> None:
    book = tmp_path / "play.yml"
    anchors = BOMB.replace("\n  ", "\n        ").replace("  l0", "        l0", 1)
    book.write_text(
        "- hosts: localhost\n  tasks:\n    - command:\n        argv: [echo]\n"
        f"        env:\n{anchors}\n"
    )
    refused(cli("play", str(book), cwd=tmp_path, timeout=60), "alias bomb")


# ---------------------------------------------------------------- 6. names no run defines


@pytest.mark.parametrize("name", ["item", "hostvars"])
def test_item_and_hostvars_are_refused(tmp_path: Path, name: str) -> None:
    book = tmp_path / "play.yml"
    book.write_text(
        f"- hosts: localhost\n  tasks:\n    - command: {{argv: [echo, '{{{{ {name} }}}}']}}\n"
    )
    refused(cli("play", str(book), cwd=tmp_path), f"undefined variable '{name}'")


# ---------------------------------------------------------------- 10. files on the controller


def test_state_folders_are_made_private_at_every_level(tmp_path: Path) -> None:
    made = make_private_dir(tmp_path / "a" / "b" / "c")
    for folder in (tmp_path / "a", tmp_path / "a" / "b", made):
        assert folder.stat().st_mode & 0o777 == 0o700, folder


def test_a_private_key_others_can_read_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    line = ensure_key_file(key)
    assert line.startswith("ssh-ed25519 ") and key.stat().st_mode & 0o777 == 0o600
    assert ensure_key_file(key) == line  # the same key, read back
    key.chmod(0o644)
    with pytest.raises(ConfigError, match="mode 0644: others can read it; run `chmod 600"):
        ensure_key_file(key)


# ---------------------------------------------------------------- property: validators


_ALPHABET = (
    "abcXYZ019/._-:~%@!$&'()*+,;="
    + " \t\n\r\x00\x0b\x0c\x1b\x7f"
    + "\u2028\u2029\u0085\u00a0"
    + '`$|<>"\\{}[]#?é漢'
)


def _random_strings(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        text = "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(0, 12)))
        out.append(rng.choice(["", "/", "-", "--", "/api"]) + text)
    return out


def _safe_for_the_route_table(value: str) -> bool:
    """The router's text format is "prefix\\tservice\\tep ep" a line (store.lua): a value that
    holds none of its separators and no other control or non-ASCII character comes back as is."""
    return value.isascii() and value.isprintable() and " " not in value


def _lua_line_roundtrip(
    prefix: str, service: str, endpoints: list[str]
) -> tuple[str, str, list[str]]:
    line = f"{prefix}\t{service}\t{' '.join(endpoints)}"  # store.snapshot's encoding
    text = "\n".join([line])
    got_prefix, got_service, eps = text.split("\n")[0].split("\t")  # router.decode's reading
    return got_prefix, got_service, [e for e in eps.split(" ") if e]


def test_validators_reject_or_round_trip_random_strings() -> None:
    accepted = 0
    for value in _random_strings(20261203, 6000):
        for check in (validate_prefix, lambda v: validate("/p", v, []),
                      lambda v: validate_endpoint(v), lambda v: check_name(v, "f"),
                      lambda v: check_path(v, "f")):  # fmt: skip
            try:
                check(value)
            except ConfigError:
                continue
            accepted += 1
            assert _safe_for_the_route_table(value), repr(value)
            assert not value.startswith("-"), repr(value)  # never read as an option
            assert "\n" not in value and "\u2028" not in value
    assert accepted > 100  # the generator does produce valid values too
    route = ("/api/v1", "users", ["echo-a:80", "10.0.0.7:8080"])
    validate(*route)
    assert _lua_line_roundtrip(*route) == (*route[:2], route[2])


# ---------------------------------------------------------------- the project's own playbooks


@pytest.mark.parametrize("book", ["up.yml", "down.yml", "verify.yml"])
@pytest.mark.parametrize("inventory", ["sandbox", "host", "aws", "cluster-mode"])
def test_the_project_playbooks_validate_for_every_inventory(book: str, inventory: str) -> None:
    # Load-time rendering must respect `when:` (the cloud task on `cloud: none`, the bridge
    # network only for host-docker-internal) and leave run-time values alone.
    from provision.api import PLAYBOOKS, SANDBOX_INVENTORY, Options, host_inventory, load

    extra: dict[str, object] = {}
    if inventory == "host":
        inv: object = host_inventory("admin@127.0.0.1:2222", None)
    elif inventory == "aws":
        inv = ROOT / "inventory" / "aws.yml"
    else:
        inv = SANDBOX_INVENTORY
        if inventory == "cluster-mode":
            extra = {"redis_mode": "cluster"}
    for strategy in ("shared-network", "host-gateway", "host-docker-internal"):
        if inventory == "cluster-mode" and strategy != "shared-network":
            continue
        options = Options(extra_vars={**extra, "redis_strategy": strategy})
        book_loaded, _ = load(PLAYBOOKS / book, inv, options)  # type: ignore[arg-type]
        assert book_loaded.plays


@pytest.mark.parametrize("endpoint", ENDPOINTS_REFUSED)
def test_an_endpoint_the_router_skips_is_refused_by_the_cli_rule(endpoint: str) -> None:
    """The same corpus is written into Redis for the router in tests/integration/
    test_router_local.py (test_bad_entries_in_redis_are_skipped): one rule on both sides."""
    with pytest.raises(ConfigError):
        validate_endpoint(endpoint, allow_local=True)


@pytest.mark.parametrize("endpoint", ENDPOINTS_ACCEPTED)
def test_a_well_formed_endpoint_is_accepted(endpoint: str) -> None:
    assert validate_endpoint(endpoint, allow_local=True) == endpoint
