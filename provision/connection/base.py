"""The connection contract (``Remote``) and the one base that implements its verbs.

Every transport (SSH, the controller itself, the unit tests' fake) supplies only its
primitives — run one argv with bytes on stdin (``_execute``), open a byte stream to an address
as the host sees it (``_channel``) — and gets the same verbs: ``run``, ``sh``, ``run_many``,
``put_bytes``, ``pipe_in``, ``forward_local``. Quoting happens here and in ``commands``, at the
boundary: callers pass argv lists or a constant script with positional values.

>>> class Echo(BaseConnection):
...     def _execute(self, argv, chunks, timeout, on_bytes):
...         return Result(" ".join(argv), 0, " ".join(argv[1:]) + "\\n")
>>> Echo(HostSpec("h", "127.0.0.1")).run(["echo", "hi"]).stdout
'hi\\n'
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Protocol

from provision.connection.commands import put_argv, run_batched
from provision.errors import CommandError, ConfigError
from provision.models import HostSpec, Result

__all__ = ["BaseConnection", "Chunks", "OnBytes", "Remote"]

#: What ``_execute`` feeds to a command's stdin, chunk by chunk.
Chunks = Iterable[bytes]
#: Told how many bytes of input went out, as they go (progress); None: not told.
OnBytes = Callable[[int], None] | None

_CHUNK = 1 << 16


class Remote(Protocol):
    """What a task or a check may do with a host."""

    host: HostSpec

    def run(
        self,
        argv: Sequence[str],
        *,
        sudo: bool = ...,
        warn: bool = ...,
        stdin: bytes | None = ...,
        timeout: float | None = ...,
    ) -> Result: ...

    def sh(
        self,
        script: str,
        *args: str,
        sudo: bool = ...,
        warn: bool = ...,
        timeout: float | None = ...,
    ) -> Result: ...

    def put_bytes(self, data: bytes, path: str, *, mode: int = ..., sudo: bool = ...) -> None: ...

    def pipe_in(
        self,
        argv: Sequence[str],
        chunks: Iterable[bytes],
        *,
        sudo: bool = ...,
        warn: bool = ...,
        timeout: float | None = ...,
        on_bytes: Callable[[int], None] | None = ...,
    ) -> Result: ...

    def run_many(self, commands: Sequence[Sequence[str]], *, sudo: bool = ...) -> list[Result]: ...

    def reconnect(self) -> None: ...

    def forward_local(self, remote_host: str, remote_port: int) -> AbstractContextManager[int]: ...


class Duplex(Protocol):
    """A byte stream a tunnel pumps: a socket, or an SSH channel."""

    def fileno(self) -> int: ...
    def recv(self, size: int) -> bytes: ...
    def sendall(self, data: bytes) -> Any: ...
    def close(self) -> None: ...


class BaseConnection:
    """The ``Remote`` verbs on a transport's two primitives (see the module docstring)."""

    host: HostSpec
    #: Told each command's result as it comes back (the runner's ``-v``); a read batch's
    #: commands one by one, not the script that carries them.
    observe: Callable[[Result], None] | None = None
    # Per thread: inside run_many, whose batch script is not observed (its commands are, one
    # by one). Per thread, not on the connection: another host's thread may use it as a peer.
    _batching = threading.local()

    def __init__(self, host: HostSpec) -> None:
        self.host = host

    # -- the primitives a transport supplies ----------------------------------------------
    def _execute(
        self, argv: list[str], chunks: Chunks, timeout: float | None, on_bytes: OnBytes
    ) -> Result:
        """Run ``argv`` (already with sudo, if asked) feeding ``chunks`` to its stdin."""
        raise NotImplementedError

    def _channel(self, remote_host: str, remote_port: int, peer: tuple[str, int]) -> Duplex:
        """A stream to ``remote_host:remote_port`` as the host sees it (``OSError`` if not)."""
        raise NotImplementedError

    def _is_root(self) -> bool:
        """Whether commands already run as root (then ``sudo`` adds nothing)."""
        return self.host.user == "root"

    def _batch(self, commands: Sequence[Sequence[str]], sudo: bool) -> list[Result]:
        return run_batched(self, commands, sudo=sudo)

    def close(self) -> None:
        """Release the transport (nothing to release by default)."""

    def reconnect(self) -> None:
        """Open a new session, so that e.g. a new group membership (docker) applies."""

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> Any:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- the verbs -------------------------------------------------------------------------
    def argv_for(self, argv: Sequence[str], sudo: bool) -> list[str]:
        """``argv`` as it will run: with ``sudo -n --`` in front when asked and not root."""
        for value in argv:
            if "\x00" in value:
                raise ConfigError(
                    f"a command argument holds a NUL byte: {value!r}", field=self.host.name
                )
        return ["sudo", "-n", "--", *argv] if sudo and not self._is_root() else list(argv)

    def run(
        self,
        argv: Sequence[str],
        *,
        sudo: bool = False,
        warn: bool = False,
        stdin: bytes | None = None,
        timeout: float | None = None,
    ) -> Result:
        """Run ``argv`` (each element quoted at the transport); raise ``CommandError`` on a
        non-zero exit unless ``warn``."""
        return self.pipe_in(argv, [stdin] if stdin else [], sudo=sudo, warn=warn, timeout=timeout)

    def sh(
        self,
        script: str,
        *args: str,
        sudo: bool = False,
        warn: bool = False,
        timeout: float | None = None,
    ) -> Result:
        """Run a constant shell ``script``; values reach it as ``$1``, ``$2``..., never spliced."""
        return self.run(["sh", "-c", script, "sh", *args], sudo=sudo, warn=warn, timeout=timeout)

    def run_many(self, commands: Sequence[Sequence[str]], *, sudo: bool = False) -> list[Result]:
        """Run read-only ``commands`` side by side in ONE round trip; each gets its own Result
        (stdout and exit code). Never raises on a command's exit."""
        self._batching.on = True
        try:
            results = self._batch(commands, sudo)
        finally:
            self._batching.on = False
        if self.observe is not None:
            for result in results:
                self.observe(result)
        return results

    def put_bytes(self, data: bytes, path: str, *, mode: int = 0o644, sudo: bool = False) -> None:
        """Write ``data`` to ``path`` on the host (creating its folder), atomically."""
        self.run(put_argv(path, mode), sudo=sudo, stdin=data)

    def pipe_in(
        self,
        argv: Sequence[str],
        chunks: Iterable[bytes],
        *,
        sudo: bool = False,
        warn: bool = False,
        timeout: float | None = None,
        on_bytes: Callable[[int], None] | None = None,
    ) -> Result:
        """Run ``argv`` with ``chunks`` streamed to its standard input."""
        result = self._execute(self.argv_for(argv, sudo), chunks, timeout, on_bytes)
        if self.observe is not None and not getattr(self._batching, "on", False):
            self.observe(result)
        if result.failed and not warn:
            raise CommandError(result, host=self.host.name)
        return result

    @contextlib.contextmanager
    def forward_local(self, remote_host: str, remote_port: int) -> Iterator[int]:
        """Listen on a free 127.0.0.1 port and forward each connection to
        ``remote_host:remote_port`` as the host sees it. Yields the local port."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        stop = threading.Event()

        def serve() -> None:
            while not stop.is_set():
                ready, _, _ = select.select([listener], [], [], 0.2)
                if not ready:
                    continue
                client, peer = listener.accept()
                try:
                    upstream = self._channel(remote_host, remote_port, peer)
                except OSError:
                    client.close()
                    continue
                threading.Thread(target=_pump, args=(client, upstream, stop), daemon=True).start()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            yield int(listener.getsockname()[1])
        finally:
            stop.set()
            thread.join(timeout=2)
            listener.close()


def _pump(a: Duplex, b: Duplex, stop: threading.Event) -> None:
    """Copy bytes both ways until either side closes or the tunnel stops."""
    try:
        while not stop.is_set():
            ready, _, _ = select.select([a, b], [], [], 0.2)
            for src in ready:
                data = src.recv(_CHUNK)
                if not data:
                    return
                (b if src is a else a).sendall(data)
    except Exception:
        pass
    finally:
        a.close()
        b.close()
