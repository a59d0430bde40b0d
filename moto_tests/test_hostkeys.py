"""Host keys: parsed from the console output, pinned, written to known_hosts; a mismatch refused.

moto's GetConsoleOutput always answers the same canned text, so the console output carrying a
host-key block is injected with a botocore hook (the same XML AWS sends, parsed by botocore).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moto_tests.conftest import (
    FAST,
    REGION,
    BannerServer,
    console_response,
    ec2_error,
    make_spec,
    operator,
)
from provision.aws import (
    decide_host_keys,
    down,
    known_hosts_name,
    parse_console_host_keys,
    up,
    write_known_hosts,
)
from provision.aws.results import Timeouts
from provision.errors import ConnectError

ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHtLqRr0n8b8hq3bM2kEk1fPjw1Gm8n8oZ0lcdM6Xy4a"
ECDSA = (
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBE1pZ2h0Ym"
    "VhbnlrZXlmb3J0ZXN0cw=="
)
INTRUDER = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEVWSUxFVklMRVZJTEVWSUxFVklMRVZJTEVWSUxFVklM"

CONSOLE = f"""[    0.000000] Linux version 6.1.0-18-cloud-amd64
Cloud-init v. 22.4.2 finished at Mon, 01 Jan 2024 00:00:00 +0000. Datasource DataSourceEc2Local.
ec2: #############################################################
ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----
ec2: 256 SHA256:abcdefghijklmnopqrstuvwxyz root@ip-10-0-0-1 (ED25519)
ec2: -----END SSH HOST KEY FINGERPRINTS-----
-----BEGIN SSH HOST KEY KEYS-----
{ECDSA} root@ip-10-0-0-1
{ED25519} root@ip-10-0-0-1
-----END SSH HOST KEY KEYS-----
"""


def test_parser_reads_the_key_block_and_prefers_ed25519():
    assert parse_console_host_keys(CONSOLE) == (ED25519, ECDSA)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "no keys here at all",
        "-----BEGIN SSH HOST KEY KEYS-----\nssh-ed25519 AAAA",  # cut off before the END line
        "-----BEGIN SSH HOST KEY KEYS-----\nssh-ed25519 !!notbase64!!\n"
        "-----END SSH HOST KEY KEYS-----",
    ],
)
def test_parser_finds_nothing_without_a_complete_block(text):
    assert parse_console_host_keys(text) == ()


def test_parser_takes_the_last_block_after_a_reboot():
    rebooted = CONSOLE + CONSOLE.replace(ED25519, INTRUDER).replace(ECDSA, "")
    assert parse_console_host_keys(rebooted) == (INTRUDER,)


@pytest.mark.parametrize(
    ("console", "recorded", "presented", "tofu", "expected"),
    [
        ((ED25519,), (), ED25519, False, ((ED25519,), "console")),
        ((ED25519,), (), None, False, ((ED25519,), "console")),
        ((), (), ED25519, True, ((ED25519,), "tofu")),
        ((), (), ED25519, False, None),
        ((), (), None, True, None),
        ((), (ED25519,), ED25519, False, ((ED25519,), "state")),
        ((ED25519,), (ED25519,), None, False, ((ED25519,), "state")),
    ],
)
def test_pinning_decision(console, recorded, presented, tofu, expected):
    pinned = decide_host_keys(
        "h", console=console, recorded=recorded, presented=presented, trust_on_first_use=tofu
    )
    if expected is None:
        assert pinned is None
    else:
        assert (pinned.keys, pinned.source) == expected


@pytest.mark.parametrize(
    ("console", "recorded", "presented"),
    [
        ((ED25519,), (), INTRUDER),  # host presents a key the console never showed
        ((), (ED25519,), INTRUDER),  # host presents a key other than the pinned one
        ((INTRUDER,), (ED25519,), None),  # console shows other keys than the pinned ones
    ],
)
def test_a_mismatching_key_is_refused(console, recorded, presented):
    with pytest.raises(ConnectError, match="refusing"):
        decide_host_keys(
            "h", console=console, recorded=recorded, presented=presented, trust_on_first_use=True
        )


def test_known_hosts_lines(tmp_path: Path):
    path = tmp_path / "known_hosts"
    write_known_hosts(path, "203.0.113.5", 22, [ED25519])
    write_known_hosts(path, "127.0.0.1", 2222, [ED25519, ECDSA])
    write_known_hosts(path, "203.0.113.5", 22, [ECDSA])  # replaces, never duplicates
    assert path.read_text().splitlines() == [
        f"[127.0.0.1]:2222 {ED25519}",
        f"[127.0.0.1]:2222 {ECDSA}",
        f"203.0.113.5 {ECDSA}",
    ]
    assert known_hosts_name("10.0.0.1", 22) == "10.0.0.1"


@pytest.fixture
def console_with_keys(session):
    """Every GetConsoleOutput answers with the key block (moto cannot be told to)."""
    instance_ids: list[str] = []

    def answer(request, **_):
        request.url = "https://injected.invalid/"
        return console_response(instance_ids[0] if instance_ids else "i-0", CONSOLE)

    session.events.register_first("before-send.ec2.GetConsoleOutput", answer)
    return instance_ids


def stand_up(session, state_dir, server: BannerServer, scanner, **options):
    return up(
        make_spec(),
        state_dir=state_dir,
        session=session,
        my_address=operator,
        timeouts=Timeouts(running=5, ssh=2, console=0.05, poll=0.01),
        endpoint_for=lambda instance: ("127.0.0.1", server.port),
        host_key_scanner=scanner,
        **options,
    )


@pytest.mark.usefixtures("aws")
def test_up_pins_the_console_key_and_writes_known_hosts(
    session, state_dir, banner_server, console_with_keys
):
    result = stand_up(session, state_dir, banner_server, lambda address, port: ED25519)
    (host,) = result.instances
    assert host.host_key == ED25519
    lines = (state_dir / "known_hosts").read_text().splitlines()
    assert lines == [
        f"[127.0.0.1]:{banner_server.port} {ED25519}",
        f"[127.0.0.1]:{banner_server.port} {ECDSA}",
    ]
    saved = json.loads((state_dir / "alpha" / "state.json").read_text())
    assert saved["instances"][0]["host_key_source"] == "console"
    down("alpha", region=REGION, state_dir=state_dir, session=session, timeouts=FAST)
    assert (state_dir / "known_hosts").read_text() == ""  # its lines go with the cluster


@pytest.mark.usefixtures("aws")
def test_up_refuses_a_host_presenting_another_key(
    session, state_dir, banner_server, console_with_keys
):
    with pytest.raises(ConnectError, match="host key mismatch"):
        stand_up(session, state_dir, banner_server, lambda address, port: INTRUDER)
    assert not (state_dir / "known_hosts").exists()


@pytest.mark.usefixtures("aws")
def test_a_rerun_refuses_a_host_whose_key_changed(
    session, state_dir, banner_server, console_with_keys
):
    stand_up(session, state_dir, banner_server, lambda address, port: ED25519)
    with pytest.raises(ConnectError, match="pinned"):
        stand_up(session, state_dir, banner_server, lambda address, port: INTRUDER)


@pytest.mark.usefixtures("aws")
def test_without_console_keys_tofu_must_be_allowed(session, state_dir, banner_server):
    # moto's own console output carries no key block.
    with pytest.raises(ConnectError, match="trust_on_first_use is off"):
        stand_up(session, state_dir, banner_server, lambda address, port: ED25519)
    result = stand_up(
        session, state_dir, banner_server, lambda address, port: ED25519, trust_on_first_use=True
    )
    assert result.instances[0].host_key == ED25519
    saved = json.loads((state_dir / "alpha" / "state.json").read_text())
    assert saved["instances"][0]["host_key_source"] == "tofu"


@pytest.mark.usefixtures("aws")
def test_ssh_banner_wait_gives_up_with_a_message(session, state_dir):
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(ConnectError, match="waiting for an SSH banner"):
        up(
            make_spec(),
            state_dir=state_dir,
            session=session,
            my_address=operator,
            timeouts=Timeouts(running=5, ssh=0.3, console=0, poll=0.05),
            endpoint_for=lambda instance: ("127.0.0.1", port),
        )


@pytest.mark.usefixtures("aws")
def test_cloud_init_hook_runs_last_for_each_host(
    session, state_dir, banner_server, console_with_keys
):
    seen = []
    result = stand_up(
        session, state_dir, banner_server, lambda address, port: ED25519, cloud_init=seen.append
    )
    assert seen == list(result.instances)
    assert seen[0].host_key == ED25519


@pytest.fixture
def buffered_console(session):
    """Real EC2's console (GetConsoleOutput's API reference): the buffered output is empty for
    minutes after a boot, the latest (``Latest=True``) shows cloud-init's key block at once.
    Records each request's Latest flag."""
    latest: list[bool] = []

    def answer(request, **_):
        body = request.body.decode() if isinstance(request.body, bytes) else str(request.body)
        asked = "Latest=true" in body
        latest.append(asked)
        request.url = "https://injected.invalid/"
        return console_response("i-0", CONSOLE if asked else "")

    session.events.register_first("before-send.ec2.GetConsoleOutput", answer)
    return latest


@pytest.mark.usefixtures("aws")
def test_realism_console_output_is_buffered_unless_latest(
    session, state_dir, banner_server, buffered_console
):
    """The console is read with Latest=True: the key is pinned from the console at once (on
    the old code, asked without it, the output stayed empty: "no host key to pin")."""
    result = stand_up(session, state_dir, banner_server, lambda address, port: ED25519)
    assert result.instances[0].host_key == ED25519
    saved = json.loads((state_dir / "alpha" / "state.json").read_text())
    assert saved["instances"][0]["host_key_source"] == "console"
    assert buffered_console and all(buffered_console), buffered_console


@pytest.mark.usefixtures("aws")
def test_an_instance_type_refusing_latest_is_read_buffered(session, state_dir, banner_server):
    """Where Latest is refused (UnsupportedOperation), the console is asked again without it,
    and the key block found there is pinned."""
    asked: list[bool] = []

    def answer(request, **_):
        body = request.body.decode() if isinstance(request.body, bytes) else str(request.body)
        asked.append("Latest=true" in body)
        request.url = "https://injected.invalid/"
        if asked[-1]:
            return ec2_error(400, "UnsupportedOperation", "Latest is not supported")
        return console_response("i-0", CONSOLE)

    session.events.register_first("before-send.ec2.GetConsoleOutput", answer)
    result = stand_up(session, state_dir, banner_server, lambda address, port: ED25519)
    assert result.instances[0].host_key == ED25519
    assert asked[:2] == [True, False] and not any(asked[1:]), asked
