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
