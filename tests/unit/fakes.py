"""A fake connection for unit tests of modules: canned answers, every command recorded.

It fakes the host, not the thing under test: modules are tested for the commands they
produce from the facts they read (the pyinfra way), real hosts are in tests/integration.
It is built on the same ``BaseConnection`` as the SSH and local transports, so the verbs the
modules call (``run``, ``sh``, ``put_bytes``, ``pipe_in``...) are the real ones; only the two
primitives (run one argv, run a batch of reads) are canned here.
"""

from __future__ import annotations

import contextlib
import re
import shlex
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from provision.connection.base import BaseConnection
from provision.connection.commands import put_argv
from provision.models import HostSpec, Result

Answer = Result | Callable[[list[str]], Result]


@dataclass(eq=False)
class FakeRemote(BaseConnection):
    """``answers``: (regex on the joined argv, Result or callable). First match wins."""

    answers: list[tuple[str, Answer]] = field(default_factory=list)
    host: HostSpec = field(default_factory=lambda: HostSpec("fake", "127.0.0.1", user="admin"))
    calls: list[list[str]] = field(default_factory=list)
    stdin: list[bytes] = field(default_factory=list)
    reconnects: int = 0
    batches: list[list[str]] = field(default_factory=list)

    def answer(self, pattern: str, stdout: str = "", code: int = 0, stderr: str = "") -> None:
        self.answers.insert(0, (pattern, Result(pattern, code, stdout, stderr)))

    def _is_root(self) -> bool:
        return True  # recorded commands read as written, without a sudo prefix

    def _execute(
        self,
        argv: list[str],
        chunks: Iterable[bytes],
        timeout: float | None,
        on_bytes: Callable[[int], None] | None,
    ) -> Result:
        data = b"".join(chunks)
        if argv[:3] == put_argv("", 0)[:3]:  # an atomic write: recorded as "put PATH MODE"
            argv = ["put", argv[4], argv[5]]
        self.calls.append(argv)
        if data:
            self.stdin.append(data)
        joined = " ".join(argv)
        for pattern, answer in self.answers:
            if re.search(pattern, joined):
                return answer(argv) if callable(answer) else answer
        return Result(shlex.join(argv), 0)

    def _batch(self, commands: Sequence[Sequence[str]], sudo: bool) -> list[Result]:
        self.batches.append([" ".join(c) for c in commands])
        return [self.run(c, sudo=sudo, warn=True) for c in commands]

    def reconnect(self) -> None:
        self.reconnects += 1

    @contextlib.contextmanager
    def forward_local(self, remote_host: str, remote_port: int) -> Iterator[int]:
        yield 0  # nothing listens: tests of the route table use a real Redis

    def commands(self) -> list[str]:
        """Every command but the read-only ones a test is not about, as joined strings."""
        return [" ".join(c) for c in self.calls]
