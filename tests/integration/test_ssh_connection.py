"""provision's SSH connection, shared by threads, against a real sshd (a sandbox host).

In a swarm the workers' join tasks run their commands on the manager's connection (peers)
while the manager's own play may reconnect it (docker_engine does, for the docker group).
CI once saw a worker marked unreachable there: its command died with the closed session.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from provision.connection.ssh import Connection
from provision.errors import CommandError
from tests.helpers import state_for

pytestmark = pytest.mark.integration


def _connect(host, keypair, tmp_path) -> Connection:
    """A connection to ``host`` pinning its key, not opened yet."""
    state = state_for(host, tmp_path / "state")
    return Connection(host.host_spec(keypair.private_key), known_hosts=state / "known_hosts")


def test_reconnect_lets_another_thread_s_running_command_finish(
    ssh_host, ssh_keypair, tmp_path
):  # fmt: skip
    with _connect(ssh_host, ssh_keypair, tmp_path) as conn:
        started = threading.Event()

        def long_command() -> str:
            started.set()
            return conn.run(["sh", "-c", "sleep 2; echo finished"]).stdout.strip()

        with ThreadPoolExecutor(max_workers=1) as pool:
            running = pool.submit(long_command)
            assert started.wait(10)
            time.sleep(0.5)  # the command is on the session now
            conn.reconnect()
            after = conn.run(["echo", "new session"]).stdout.strip()
            assert running.result(timeout=30) == "finished"
        assert after == "new session"
        assert conn.opened == 2


def test_threads_opening_one_connection_at_once_make_one_handshake(
    ssh_host, ssh_keypair, tmp_path
):  # fmt: skip
    conn = _connect(ssh_host, ssh_keypair, tmp_path)
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            outputs = list(pool.map(lambda i: conn.run(["echo", str(i)]).stdout.strip(), range(4)))
        assert outputs == ["0", "1", "2", "3"]
        assert conn.opened == 1
    finally:
        conn.close()


def _eof_after_close(transport, waited: list[float]):
    """``transport._send_user_message``, delaying input or an EOF another thread sends with
    the channel's lock released until the channel is closed (sshd's CLOSE handled, ours sent):
    the interleaving a loaded machine makes by chance, made every time. An EOF sent under the
    lock, by the transport thread, or with our own CLOSE (``close``: the channel is marked
    closed first, and the two go in order) passes at once."""
    send = transport._send_user_message

    def delayed(message):
        data = message.asbytes()
        # CHANNEL_DATA (94) and CHANNEL_EOF (96): sshd drops the connection on either when it
        # comes after the channel's CLOSE
        if data[0] in (94, 96) and threading.current_thread() is not transport:
            remote = int.from_bytes(data[1:5], "big")
            channel = next(c for c in transport._channels.values() if c.remote_chanid == remote)
            if not channel.lock.locked() and not channel.closed:
                started = time.monotonic()
                deadline = started + 5  # bounded: sshd closes within ms of `true` exiting
                while not channel.closed and time.monotonic() < deadline:
                    time.sleep(0.01)
                waited.append(time.monotonic() - started)
        return send(message)

    return delayed


@pytest.mark.parametrize(
    "stdin", [None, b"input the command never reads\n"], ids=["no-input", "input"]
)
def test_an_eof_racing_sshd_s_close_does_not_drop_the_connection(
    ssh_host, ssh_keypair, tmp_path, monkeypatch, stdin
):  # fmt: skip
    """sshd drops the whole connection on an EOF for a channel it has freed ("ieof packet
    referred to nonexistent channel"): paramiko's ``shutdown_write`` sends the EOF after
    releasing the channel's lock, so the transport thread could answer sshd's CLOSE first.
    Seen killing a swarm's verify on loaded CI runs; here forced every time."""
    with _connect(ssh_host, ssh_keypair, tmp_path) as conn:
        transport = conn._client.get_transport()
        waited: list[float] = []
        monkeypatch.setattr(transport, "_send_user_message", _eof_after_close(transport, waited))
        for _ in range(3):
            assert conn.run(["true"], stdin=stdin).exit_code == 0
        assert conn.run(["echo", "still here"]).stdout.strip() == "still here"
        assert transport.is_active()
        assert conn.opened == 1
        assert waited == []  # no input or lone EOF raced a CLOSE


def test_a_command_past_its_timeout_fails_with_exit_124_and_the_host_stays_reachable(
    ssh_host, ssh_keypair, tmp_path
):  # fmt: skip
    """A timeout is the command's failure (exit 124, 'timed out after', as the local
    connection and localdocker say it), not a lost host: the next command runs on the same
    connection. It was a ConnectError, which marked the host unreachable."""
    with _connect(ssh_host, ssh_keypair, tmp_path) as conn:
        started = time.monotonic()
        result = conn.run(["sh", "-c", "echo begun; sleep 30"], timeout=1, warn=True)
        assert time.monotonic() - started < 15  # bounded by the timeout, not the sleep
        assert result.exit_code == 124
        assert result.stdout == "begun\n"
        assert "timed out after 1s" in result.stderr
        with pytest.raises(CommandError) as failed:
            conn.run(["sleep", "30"], timeout=1)
        assert failed.value.result.exit_code == 124
        assert conn.run(["echo", "here"]).stdout == "here\n"
        assert conn.opened == 1
