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
import shlex
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterable

from provision.connection.base import BaseConnection, Chunks, Duplex, OnBytes
from provision.models import HostSpec, Result

__all__ = ["LocalConnection"]


class LocalConnection(BaseConnection):
    """Run commands on this machine; ``sudo`` adds ``sudo -n --`` unless already root."""

    def __init__(self, host: HostSpec | None = None) -> None:
        super().__init__(host or HostSpec("localhost", "127.0.0.1", user=getpass.getuser()))

    def _is_root(self) -> bool:
        return os.geteuid() == 0

    def _execute(
        self, argv: list[str], chunks: Chunks, timeout: float | None, on_bytes: OnBytes
    ) -> Result:
        command = shlex.join(argv)
        # Output goes to files, so the process never blocks on a full pipe while we feed it.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=out, stderr=err)
            except OSError as exc:  # no such program: report it like a shell would
                return Result(command, 127, "", str(exc))
            code = _feed_and_wait(proc, chunks, timeout, on_bytes)
            out.seek(0)
            err.seek(0)
            stderr = err.read().decode(errors="replace")
            if code is None:
                code, stderr = 124, stderr + f"\ntimed out after {timeout}s"
            return Result(command, code, out.read().decode(errors="replace"), stderr)

    def _channel(self, remote_host: str, remote_port: int, peer: tuple[str, int]) -> Duplex:
        """A plain TCP connection: the same contract as the SSH tunnel, so callers connect
        to 127.0.0.1 either way, whether the target is here or behind SSH."""
        upstream = socket.create_connection((remote_host, remote_port), timeout=5)
        upstream.settimeout(None)
        return upstream


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
