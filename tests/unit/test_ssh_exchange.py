"""How ``_exchange`` (provision.connection.ssh) tells a command's end from a dropped session,
on a stand-in for paramiko's channel in the states paramiko leaves it in.

When the transport dies, paramiko marks each channel closed, which makes
``exit_status_ready()`` true with ``exit_status`` still -1. If the dying sshd had sent EOF
first, the loop saw "exit status ready and EOF" and returned exit -1 as if the command had
ended: the task failed with a command error instead of naming the dropped connection (a
flaky fault case 1). The real drop is tested in tests/faults/test_ssh_dropped.py.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import pytest

from provision.connection.ssh import _exchange


@dataclass
class Transport:
    active: bool

    def is_active(self) -> bool:
        return self.active


@dataclass
class Channel:
    """Done at once: closed (or not), EOF received, no output."""

    transport: Transport
    exit_status: int = -1
    closed: bool = True
    eof_received: bool = True
    sent: list[str] = field(default_factory=list)

    def exit_status_ready(self) -> bool:
        return self.closed or self.exit_status != -1

    def get_transport(self) -> Transport:
        return self.transport

    def recv_ready(self) -> bool:
        return False

    def recv_stderr_ready(self) -> bool:
        return False

    def shutdown_write(self) -> None:
        self.sent.append("EOF")


def test_a_channel_closed_by_a_dying_sshd_is_a_dropped_connection():
    channel = Channel(Transport(active=False))
    with pytest.raises(OSError, match="the SSH connection dropped"):
        _exchange(channel, [], None, None)  # type: ignore[arg-type]


def test_the_transport_dying_a_moment_after_the_close_is_a_dropped_connection():
    transport = Transport(active=True)
    channel = Channel(transport)

    threading.Timer(0.2, lambda: setattr(transport, "active", False)).start()
    with pytest.raises(OSError, match="the SSH connection dropped"):
        _exchange(channel, [], None, None)  # type: ignore[arg-type]


def test_a_command_that_ended_keeps_its_exit_status():
    channel = Channel(Transport(active=False), exit_status=3)
    assert _exchange(channel, [], None, None) == (b"", b"")  # type: ignore[arg-type]
    assert channel.sent == ["EOF"]


def test_no_exit_status_on_a_live_connection_returns_after_a_short_wait():
    # e.g. the remote command killed by a signal: sshd sends exit-signal, paramiko keeps -1
    channel = Channel(Transport(active=True))
    started = time.monotonic()
    assert _exchange(channel, [], None, None) == (b"", b"")  # type: ignore[arg-type]
    assert 0.9 < time.monotonic() - started < 5
