"""A session channel sshd refuses ("Unable to open channel": its MaxSessions reached while it
still counts channels just closed; seen failing a swarm's verify on a loaded machine) is asked
for again within a bound, and the command runs once. Fakes stand in for paramiko's transport;
the refusal itself is paramiko's own exception."""

from __future__ import annotations

import paramiko
import pytest

from provision.connection import ssh
from provision.models import HostSpec


class RefusingTransport:
    def __init__(self, refusals: int, active: bool = True) -> None:
        self.refusals = refusals
        self.active = active
        self.opened = 0
        self.asked = 0

    def is_active(self) -> bool:
        return self.active

    def open_session(self, timeout: float | None = None) -> str:
        self.asked += 1
        if self.refusals:
            self.refusals -= 1
            # paramiko raises either, depending on which thread took the saved reason
            if self.refusals % 2:
                raise paramiko.ChannelException(2, "Connect failed")
            raise paramiko.SSHException("Unable to open channel.")
        self.opened += 1
        return "channel"


def _connection() -> ssh.Connection:
    return ssh.Connection(HostSpec(name="h", address="127.0.0.1", port=1, user="admin"))


def test_a_refused_channel_is_asked_for_again(monkeypatch):
    monkeypatch.setattr(ssh.time, "sleep", lambda seconds: None)
    transport = RefusingTransport(refusals=3)
    assert _connection()._open_session(transport) == "channel"  # type: ignore[arg-type]
    assert transport.opened == 1


def test_refusals_past_the_bound_still_fail(monkeypatch):
    monkeypatch.setattr(ssh, "OPEN_RETRY", 0.0)
    monkeypatch.setattr(ssh.time, "sleep", lambda seconds: None)
    with pytest.raises(paramiko.SSHException, match="Unable to open channel"):
        _connection()._open_session(RefusingTransport(refusals=1))  # type: ignore[arg-type]


def test_a_dead_connection_fails_at_once(monkeypatch):
    monkeypatch.setattr(ssh.time, "sleep", lambda seconds: None)
    transport = RefusingTransport(refusals=1, active=False)
    with pytest.raises(paramiko.SSHException):
        _connection()._open_session(transport)  # type: ignore[arg-type]
    assert transport.asked == 1
