"""A fake connection for unit tests of modules: canned answers, every command recorded.

It fakes the host, not the thing under test: modules are tested for the commands they
produce from the facts they read (the pyinfra way), real hosts are in tests/integration.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from provision.models import HostSpec, Result

Answer = Result | Callable[[list[str]], Result]


@dataclass
class FakeRemote:
    """``answers``: (regex on the joined argv, Result or callable). First match wins."""

    answers: list[tuple[str, Answer]] = field(default_factory=list)
    host: HostSpec = field(default_factory=lambda: HostSpec("fake", "127.0.0.1", user="admin"))
    calls: list[list[str]] = field(default_factory=list)
    stdin: list[bytes] = field(default_factory=list)
    reconnects: int = 0
    batches: list[list[str]] = field(default_factory=list)

    def answer(self, pattern: str, stdout: str = "", code: int = 0, stderr: str = "") -> None:
        self.answers.insert(0, (pattern, Result(pattern, code, stdout, stderr)))

    def run(
        self,
        argv: Sequence[str],
        *,
        sudo: bool = False,
        warn: bool = False,
        stdin: bytes | None = None,
        timeout: float | None = None,
    ) -> Result:
        from provision.errors import CommandError

        argv = list(argv)
        self.calls.append(argv)
        if stdin:
            self.stdin.append(stdin)
        joined = " ".join(argv)
        for pattern, answer in self.answers:
            if re.search(pattern, joined):
                result = answer(argv) if callable(answer) else answer
                break
        else:
            result = Result(joined, 0)
        if result.failed and not warn:
            raise CommandError(result, host=self.host.name)
        return result

    def sh(
        self,
        script: str,
        *args: str,
        sudo: bool = False,
        warn: bool = False,
        timeout: float | None = None,
    ) -> Result:
        return self.run(["sh", "-c", script, "sh", *args], sudo=sudo, warn=warn)

    def put_bytes(self, data: bytes, path: str, *, mode: int = 0o644, sudo: bool = False) -> None:
        self.run(["put", path, f"{mode:o}"], stdin=data)

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
        return self.run(argv, stdin=b"".join(chunks), warn=warn)

    def run_many(self, commands: Sequence[Sequence[str]], *, sudo: bool = False) -> list[Result]:
        self.batches.append([" ".join(c) for c in commands])
        return [self.run(c, sudo=sudo, warn=True) for c in commands]

    def reconnect(self) -> None:
        self.reconnects += 1

    @contextlib.contextmanager
    def forward_local(self, remote_host: str, remote_port: int) -> Iterator[int]:
        yield 0

    def commands(self) -> list[str]:
        """Every command but the read-only ones a test is not about, as joined strings."""
        return [" ".join(c) for c in self.calls]
