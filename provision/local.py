"""The controller itself as a host: the ``Remote`` verbs over ``subprocess`` (argv lists only).

Like Testinfra's local backend, this is a real backend, used by ``hosts: localhost`` plays and
by tests that run the checks against the local Docker engine:

>>> with LocalConnection() as conn:  # doctest: +SKIP
...     conn.run(["docker", "network", "ls"]).stdout
"""

from __future__ import annotations

import contextlib
import getpass
import os
import select
import shlex
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType

from provision.commands import put_argv, run_batched
from provision.errors import CommandError
from provision.models import HostSpec, Result

__all__ = ["LocalConnection"]

_CHUNK = 1 << 16

class LocalConnection:
    """Run commands on this machine; ``sudo`` adds ``sudo -n --`` unless already root."""

    def __init__(self, host: HostSpec | None = None) -> None:
        self.host = host or HostSpec("localhost", "127.0.0.1", user=getpass.getuser())

    def __enter__(self) -> LocalConnection:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to close: each command is its own process."""

    def reconnect(self) -> None:
        """Nothing to reopen: a new group membership applies to the next process anyway."""

    def _argv(self, argv: Sequence[str], sudo: bool) -> list[str]:
        if sudo and os.geteuid() != 0:
            return ["sudo", "-n", "--", *argv]
        return list(argv)

    def run(
        self,
        argv: Sequence[str],
        *,
        sudo: bool = False,
        warn: bool = False,
        stdin: bytes | None = None,
        timeout: float | None = None,
    ) -> Result:
        """Run ``argv``; raise CommandError on a non-zero exit unless ``warn``."""
        return self.pipe_in(argv, [stdin] if stdin else [], sudo=sudo, warn=warn, timeout=timeout)

    def sh(
        self, script: str, *args: str, sudo: bool = False, warn: bool = False,
        timeout: float | None = None,
    ) -> Result:
        """Run a constant shell ``script``; values reach it as ``$1``, ``$2``..., never spliced."""
        return self.run(["sh", "-c", script, "sh", *args], sudo=sudo, warn=warn, timeout=timeout)

    def run_many(self, commands: Sequence[Sequence[str]], *, sudo: bool = False) -> list[Result]:
        return run_batched(self, commands, sudo=sudo)

    def put_bytes(self, data: bytes, path: str, *, mode: int = 0o644, sudo: bool = False) -> None:
        """Write ``data`` to ``path`` atomically (a temporary file in its folder, then rename)."""
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
        full = self._argv(argv, sudo)
        command = shlex.join(full)
        # Output goes to files, so the process never blocks on a full pipe while we feed it.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.Popen(full, stdin=subprocess.PIPE, stdout=out, stderr=err)
            except OSError as exc:  # no such program: report it like a shell would
                return self._finish(Result(command, 127, "", str(exc)), warn)
            code = _feed_and_wait(proc, chunks, timeout, on_bytes)
            out.seek(0)
            err.seek(0)
            stderr = err.read().decode(errors="replace")
            if code is None:
                code, stderr = 124, stderr + f"\ntimed out after {timeout}s"
            result = Result(command, code, out.read().decode(errors="replace"), stderr)
        return self._finish(result, warn)

    def _finish(self, result: Result, warn: bool) -> Result:
        if result.failed and not warn:
            raise CommandError(result, host=self.host.name)
        return result

    @contextlib.contextmanager
    def forward_local(self, remote_host: str, remote_port: int) -> Iterator[int]:
        """A 127.0.0.1 TCP proxy to ``remote_host:remote_port``; yields its port.

        The same contract as the SSH tunnel of ``Connection.forward_local``: callers connect
        to 127.0.0.1 either way, whether the target is here or behind SSH.
        """
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        stop = threading.Event()

        def serve() -> None:
            while not stop.is_set():
                ready, _, _ = select.select([listener], [], [], 0.2)
                if not ready:
                    continue
                client, _ = listener.accept()
                try:
                    upstream = socket.create_connection((remote_host, remote_port), timeout=5)
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


def _feed_and_wait(
    proc: subprocess.Popen[bytes],
    chunks: Iterable[bytes],
    timeout: float | None,
    on_bytes: Callable[[int], None] | None,
) -> int | None:
    """Write ``chunks`` to the process, close its stdin, wait; None when it timed out."""
    assert proc.stdin is not None
    try:
        for chunk in chunks:
            proc.stdin.write(chunk)
            if on_bytes:
                on_bytes(len(chunk))
    except BrokenPipeError:
        pass  # it exited without reading everything; its exit code says why
    finally:
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


def _pump(a: socket.socket, b: socket.socket, stop: threading.Event) -> None:
    a.settimeout(None)
    b.settimeout(None)
    try:
        while not stop.is_set():
            ready, _, _ = select.select([a, b], [], [], 0.2)
            for src in ready:
                data = src.recv(_CHUNK)
                if not data:
                    return
                (b if src is a else a).sendall(data)
    except OSError:
        pass
    finally:
        a.close()
        b.close()
