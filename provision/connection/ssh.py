"""One SSH connection to one host, reused for every command and upload of a run.

With ``keys`` (key files, host keys), the only module that imports paramiko; and the one
place where values are shell-quoted: callers pass argv lists (``run``) or a constant script
plus positional values (``sh``), never a command string they built by hand.

>>> with Connection(HostSpec("web", "127.0.0.1", 2222, key_file=Path("id"))) as conn:
...     conn.run(["docker", "network", "ls"]).stdout
"""

from __future__ import annotations

import itertools
import logging
import select
import shlex
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from provision.connection.base import BaseConnection, Chunks, Duplex, OnBytes
from provision.connection.keys import make_private_dir
from provision.errors import ConnectError
from provision.models import HostSpec, Result

# paramiko imports Invoke (~80 ms, half its import time) only for ssh_config's `Match exec`,
# which provision never reads: hide Invoke during that import, then give it back, so that a
# later `import invoke` (Fabric's, say) works as usual.
_HIDE_INVOKE = "invoke" not in sys.modules
if _HIDE_INVOKE:
    sys.modules["invoke"] = None  # type: ignore[assignment]  # `import invoke` now fails
try:
    import paramiko
finally:
    if _HIDE_INVOKE:
        del sys.modules["invoke"]

__all__ = ["Connection", "HostKeyPolicy"]

# paramiko logs the failures we translate into ConnectError (with tracebacks, from its
# transport thread); without a handler Python would print them to stderr.
logging.getLogger("paramiko").addHandler(logging.NullHandler())
logging.getLogger("paramiko").propagate = False

_CHUNK = 1 << 16
# Commands at once on one connection: sshd refuses channels past its MaxSessions
# (10 by default; tunnels seem to count too) with "Connect failed"; a swarm's nodes all run
# their checks on the manager's connection.
MAX_SESSIONS = 4
#: Seconds to keep asking for a session channel sshd refused (see ``_open_session``).
OPEN_RETRY = 15.0


class HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Refuse unknown host keys, unless trust-on-first-use was asked for; then record them."""

    def __init__(self, known_hosts: Path, *, trust_on_first_use: bool) -> None:
        self.known_hosts = known_hosts
        self.trust_on_first_use = trust_on_first_use

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        if not self.trust_on_first_use:
            raise paramiko.SSHException(
                f"host key {key.get_name()} {key.fingerprint} of {hostname} is not in "
                f"{self.known_hosts}; pin it or pass --trust-on-first-use"
            )
        client.get_host_keys().add(hostname, key.get_name(), key)
        make_private_dir(self.known_hosts.parent)
        with self.known_hosts.open("a") as fh:
            fh.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")


class Connection(BaseConnection):
    """An SSH connection with Fabric's small surface: run, sh, put, pipe_in, forward_local.

    ``open`` retries until ``retry_deadline`` seconds have passed, for hosts that have just
    booted; authentication and host-key failures are not retried.
    """

    def __init__(
        self,
        host: HostSpec,
        *,
        known_hosts: Path | None = None,
        trust_on_first_use: bool = False,
        connect_timeout: float = 10.0,
        retry_deadline: float = 60.0,
        keepalive: int = 15,
    ) -> None:
        super().__init__(host)
        self.known_hosts = known_hosts
        self.trust_on_first_use = trust_on_first_use
        self.connect_timeout = connect_timeout
        self.retry_deadline = retry_deadline
        self.keepalive = keepalive
        self.opened = 0  # SSH handshakes this object made (tests/integration/test_ssh_connection)
        self._client: paramiko.SSHClient | None = None
        # Clients that ``reconnect`` replaced, closed with the connection: a swarm's nodes run
        # commands on the manager's connection (peers), so when the manager's own play
        # reconnects (docker_engine, for the docker group), another thread's command may still
        # be on the old one; closing it there killed that command ("lost connection").
        self._retired: list[paramiko.SSHClient] = []
        self._opening = threading.Lock()  # one handshake at a time, shared by the threads
        self._sessions = threading.BoundedSemaphore(MAX_SESSIONS)

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> Connection:
        self.open()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def is_open(self) -> bool:
        transport = self._client.get_transport() if self._client else None
        return bool(transport and transport.is_active())

    def open(self) -> None:
        if self.is_open:
            return
        with self._opening:
            if not self.is_open:  # another thread may have opened it meanwhile
                self._client = self._handshake()

    def _handshake(self) -> paramiko.SSHClient:
        """A new client, retried until ``retry_deadline`` (the caller holds ``_opening``)."""
        deadline = time.monotonic() + self.retry_deadline
        delay = 0.25
        while True:
            try:
                client = self._connect_once()
                self.opened += 1
                return client
            except ConnectError:
                raise
            except (OSError, paramiko.SSHException, EOFError) as exc:
                if time.monotonic() + delay > deadline:
                    raise ConnectError(
                        f"unreachable after {self.retry_deadline:.0f}s: {exc}",
                        host=self.host.target,
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _connect_once(self) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        if self.known_hosts is not None and self.known_hosts.exists():
            client.load_host_keys(str(self.known_hosts))
        if self.known_hosts is not None:
            policy: paramiko.MissingHostKeyPolicy = HostKeyPolicy(
                self.known_hosts, trust_on_first_use=self.trust_on_first_use
            )
        else:
            policy = (
                paramiko.AutoAddPolicy() if self.trust_on_first_use else paramiko.RejectPolicy()
            )
        client.set_missing_host_key_policy(policy)
        key = str(self.host.key_file) if self.host.key_file else None
        try:
            client.connect(
                self.host.address,
                port=self.host.port,
                username=self.host.user,
                key_filename=key,
                timeout=self.connect_timeout,
                banner_timeout=self.connect_timeout,
                auth_timeout=self.connect_timeout,
                allow_agent=key is None,
                look_for_keys=key is None,
            )
        except paramiko.SSHException as exc:
            client.close()
            refused = self._refusal(exc)
            if refused is None:
                raise
            raise ConnectError(refused, host=self.host.target) from exc
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(self.keepalive)
            # Each command is a few small packets; Nagle + delayed ACK would add ~40 ms each.
            sock = transport.sock
            if isinstance(sock, socket.socket):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return client

    def reconnect(self) -> None:
        """Open a new session, e.g. so that a new group membership (docker) applies.

        Commands started after it use the new session; those still running on the old one
        (other threads sharing this connection) finish there: it is closed with ``close``.
        """
        with self._opening:
            new = self._handshake()  # the old client serves other threads meanwhile
            old, self._client = self._client, new
            if old is not None:
                self._retired.append(old)

    def close(self) -> None:
        with self._opening:
            clients = [*self._retired, *([self._client] if self._client else [])]
            self._client = None
            self._retired.clear()
        for client in clients:
            client.close()

    def _refusal(self, exc: paramiko.SSHException) -> str | None:
        """What a refused connection means (a host key or the login); None for other errors."""
        if isinstance(exc, paramiko.BadHostKeyException):
            return (
                f"host key mismatch: expected {exc.expected_key.get_base64()[:16]}..., "
                f"got {exc.key.get_base64()[:16]}...; refusing to connect"
            )
        if isinstance(exc, paramiko.AuthenticationException):
            return (
                f"authentication failed for user {self.host.user!r} with key "
                f"{self.host.key_file}: {exc}"
            )
        if "host key" in str(exc) and "not in" in str(exc):
            return str(exc)
        return None

    # -- the primitives ----------------------------------------------------------------------
    def _execute(
        self, argv: list[str], chunks: Chunks, timeout: float | None, on_bytes: OnBytes
    ) -> Result:
        command = shlex.join(argv)
        pending = iter(chunks)
        first = next(pending, None)
        # No input: the command reads /dev/null, and no lone EOF is sent (see _send_eof).
        wire = command + " </dev/null" if first is None else command
        transport = self._transport()
        try:
            with self._sessions:
                channel = self._open_session(transport)
                channel.exec_command(wire)
                sent = [] if first is None else itertools.chain([first], pending)
                out, err = _exchange(channel, sent, timeout, on_bytes, eof=first is not None)
                code = channel.recv_exit_status()
                channel.close()
        except _TimedOut as stopped:  # the host is still there: the command's failure
            out, err, code = (
                stopped.out,
                stopped.err + f"\ntimed out after {timeout}s".encode(),
                124,
            )
        except (OSError, paramiko.SSHException, EOFError) as exc:
            raise ConnectError(
                f"lost connection during {command!r}: {exc}", host=self.host.target
            ) from exc
        return Result(command, code, out.decode(errors="replace"), err.decode(errors="replace"))

    def _open_session(self, transport: paramiko.Transport) -> paramiko.Channel:
        """A session channel; one sshd refused while the connection stays up is asked for
        again, within ``OPEN_RETRY`` seconds: its MaxSessions reached while it still counts
        channels just closed (seen failing a swarm's verify on a loaded machine). paramiko
        raises ``ChannelException``, or, when another thread's open took the saved reason,
        "Unable to open channel.". Safe: a refused channel never ran its command. A dead
        connection fails at once, as before."""
        delay, deadline = 0.1, time.monotonic() + OPEN_RETRY
        while True:
            try:
                return transport.open_session(timeout=self.connect_timeout)
            except paramiko.SSHException:
                if not transport.is_active() or time.monotonic() >= deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def _channel(self, remote_host: str, remote_port: int, peer: tuple[str, int]) -> Duplex:
        try:
            return self._transport().open_channel("direct-tcpip", (remote_host, remote_port), peer)
        except paramiko.SSHException as exc:
            raise OSError(str(exc)) from exc

    def _transport(self) -> paramiko.Transport:
        self.open()
        client = self._client  # once: another thread may swap it (reconnect) or close it
        transport = client.get_transport() if client is not None else None
        if transport is None:  # closed by another thread meanwhile
            raise ConnectError("no SSH transport", host=self.host.target)
        return transport


class _TimedOut(Exception):
    """The command outlived its timeout (its channel closed): what it printed until then.
    A timeout is the command's failure (exit 124, as ``timeout(1)`` and the local connection
    say), not the host's: only a dead transport makes a host unreachable."""

    def __init__(self, out: bytes, err: bytes) -> None:
        super().__init__("timed out")
        self.out, self.err = out, err


def _in_order(channel: paramiko.Channel) -> Any:
    """The transport, when our messages can be sent under the channel's lock (see
    ``_send_eof``); None during a key exchange or with a paramiko without these steps."""
    transport: Any = channel.get_transport()
    ready = getattr(transport, "clear_to_send", None)
    steps = ("_send_eof", "_wait_for_send_window")
    usable = all(hasattr(channel, s) for s in steps) and hasattr(transport, "_send_user_message")
    return transport if ready is not None and usable and ready.is_set() else None


def _send_eof(channel: paramiko.Channel) -> None:
    """The end of the command's input, sent before the channel can be closed.

    paramiko's ``shutdown_write`` makes the EOF under the channel's lock but sends it after
    releasing it; when the command has ended meanwhile, the transport thread, handling sshd's
    CLOSE in between, sends our CLOSE first. sshd frees the channel on that CLOSE and drops
    the whole connection on the late EOF ("ieof packet referred to nonexistent channel"),
    killing every other command on it. Seen on loaded machines: a swarm's verify lost the
    manager's connection ("Unable to open channel."). So: a command without input gets
    ``</dev/null`` and no lone EOF at all (``_execute``); after input, the EOF is sent under
    the channel's lock, so a CLOSE the transport thread handles comes after it. Not during a
    key exchange (paramiko's reason to release the lock first: the transport thread may need
    it then), and not with a paramiko without these private steps: there paramiko's own way
    is kept. The input itself goes the same way (``_send_data``)."""
    transport = _in_order(channel)
    if transport is None:
        channel.shutdown_write()
        return
    inner: Any = channel  # paramiko's own steps, in its order, but under the lock
    with channel.lock:
        if channel.closed or channel.eof_sent:
            return
        message = inner._send_eof()
        if message is not None:
            transport._send_user_message(message)


def _send_data(channel: paramiko.Channel, data: bytes) -> int:
    """Send up to ``data``'s length of input; how much went, 0 when the command has ended
    (its channel closed: it did not read all of its input, which is not a lost connection).
    Under the channel's lock, for the reason ``_send_eof`` gives: a DATA message after our
    CLOSE drops the connection as a late EOF does."""
    transport = _in_order(channel)
    if transport is None:
        try:
            return channel.send(data)
        except OSError:  # "Socket is closed": the command ended
            if channel.closed:
                return 0
            raise
    inner: Any = channel
    with channel.lock:
        if channel.closed:
            return 0
        size = int(inner._wait_for_send_window(len(data)))  # waits on the lock's condition
        if size == 0:  # closed, or EOF sent, meanwhile
            return 0
        message = paramiko.Message()
        message.add_byte(paramiko.common.cMSG_CHANNEL_DATA)
        message.add_int(channel.remote_chanid)
        message.add_string(data[:size])
        transport._send_user_message(message)
    return size


def _exchange(
    channel: paramiko.Channel,
    chunks: Iterable[bytes],
    timeout: float | None,
    on_bytes: Callable[[int], None] | None,
    *,
    eof: bool = True,
) -> tuple[bytes, bytes]:
    """Send ``chunks`` then EOF (when ``eof``), while draining stdout and stderr (so neither
    side blocks)."""
    out: list[bytes] = []
    err: list[bytes] = []
    deadline = None if timeout is None else time.monotonic() + timeout

    def drain() -> None:
        while channel.recv_ready():
            out.append(channel.recv(_CHUNK))
        while channel.recv_stderr_ready():
            err.append(channel.recv_stderr(_CHUNK))

    for chunk in chunks:
        view = memoryview(chunk)
        while view:
            drain()
            sent = _send_data(channel, bytes(view[:_CHUNK]))
            if sent == 0:  # the command ended before it read all of its input
                break
            view = view[sent:]
            if on_bytes:
                on_bytes(sent)
        if channel.closed:
            break
    if eof:
        _send_eof(channel)
    while not (channel.exit_status_ready() and channel.eof_received):
        if channel.closed and not channel.eof_received:
            # Closed without the command's end: the transport died under it (the session's
            # sshd killed, the network gone). Without this the loop would spin to ``timeout``.
            transport = channel.get_transport()
            if transport is None or not transport.is_active():
                raise OSError("the SSH connection dropped")
            break
        if deadline is not None and time.monotonic() > deadline:
            channel.close()
            drain()
            raise _TimedOut(b"".join(out), b"".join(err))
        # Data wakes select; the exit status does not, so poll briefly for it.
        select.select([cast(Any, channel)], [], [], 0.005)
        drain()
    drain()
    if channel.exit_status == -1 and _transport_dies(channel):
        # Ended without an exit status, and the transport is going: the session's sshd was
        # killed, but its side closed the channel (EOF, close) first. paramiko then marks the
        # channel done, which is not the command's end. Seen as a flaky fault case 1.
        raise OSError("the SSH connection dropped")
    return b"".join(out), b"".join(err)


def _transport_dies(channel: paramiko.Channel, within: float = 1.0) -> bool:
    """Whether the channel's transport is, or within ``within`` seconds becomes, inactive
    (a channel closed by a dying sshd is followed by the TCP close a moment later)."""
    deadline = time.monotonic() + within
    while True:
        transport = channel.get_transport()
        if transport is None or not transport.is_active():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
