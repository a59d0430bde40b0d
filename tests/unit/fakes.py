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
import textwrap
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from provision.connection.base import BaseConnection
from provision.connection.commands import put_argv
from provision.load.inventory import load_inventory
from provision.load.playbook import load_playbook
from provision.load.validate import validate
from provision.models import HostSpec, Result
from provision.run.options import Options
from provision.run.runner import Runner
from provision.tasks import registry
from provision.tasks.base import ModuleSpec, Outcome, TaskContext, build_args

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


# ---------------------------------------------------------------- host facts, as gathered

DEBIAN12_BARE = """os_id=debian
os_like=
os_version=12
os_codename=bookworm
arch=x86_64
user=admin
user_groups=admin sudo
systemd=1
"""
DEBIAN13_DOCKER = """os_id=debian
os_version=13
arch=aarch64
user=admin
user_groups=admin sudo docker
docker_cli=Docker version 26.1.5+dfsg1, build a72d7cd
docker_server=26.1.5+dfsg1
compose_v2=2.26.1
pending=restart openresty
pending=restart openresty
"""
UBUNTU = "os_id=ubuntu\nos_like=debian\nos_version=24.04\ncompose_v2=v2.27.0\ncompose_v1=\n"
AL2023 = "os_id=amzn\nos_like=fedora\nos_version=2023\ncloud_init=1\n"


def run(module: str, args: dict, remote: FakeRemote, *, check: bool = False, facts=None):
    """One module of the registry applied through a fake connection: (outcome, context)."""
    spec = registry()[module]
    ctx = TaskContext(remote, check=check, become=True, facts={"host": facts} if facts else {})
    return spec.apply(ctx, build_args(spec, args)), ctx


# ---------------------------------------------------------------- a runner on toy modules


@dataclass(frozen=True)
class FileArgs:
    path: str
    content: str = "x"


def ensure_file(ctx: TaskContext, args: FileArgs) -> Outcome:
    """A toy module: look (cat), then act (write)."""
    if ctx.read(["cat", args.path]).stdout == args.content:
        return ctx.ok("same")
    ctx.run(["write", args.path, args.content])
    return ctx.changed("written")


@dataclass(frozen=True)
class FailArgs:
    msg: str = "boom"


def fail(ctx: TaskContext, args: FailArgs) -> Outcome:
    ctx.run(["false"])
    return ctx.changed("unreachable")


@dataclass(frozen=True)
class CountArgs:
    key: str


def count(ctx: TaskContext, args: CountArgs) -> Outcome:
    n = ctx.facts.get(args.key, 0) + 1
    ctx.facts[args.key] = n
    return Outcome(False, f"n={n}", data={"n": n})


#: toy modules for the runner's tests: a file written then read back, a failure, a counter
MODULES = {
    "ensure_file": ModuleSpec("ensure_file", FileArgs, ensure_file),
    "fail": ModuleSpec("fail", FailArgs, fail),
    "count": ModuleSpec("count", CountArgs, count),
}

INVENTORY = """
all:
  vars:
    greeting: hello
  children:
    cluster:
      hosts:
        h1: {ansible_host: 127.0.0.1}
        h2: {ansible_host: 127.0.0.2}
"""


class Hosts:
    """A fake remote per host; a file written by 'write' is then read back by 'cat'."""

    def __init__(self) -> None:
        self.remotes: dict[str, FakeRemote] = {}
        self.files: dict[tuple[str, str], str] = {}

    def connect(self, spec):
        remote = FakeRemote(host=spec)
        name = spec.name

        def cat(argv):
            from provision.models import Result

            content = self.files.get((name, argv[1]))
            return Result("cat", 0 if content is not None else 1, content or "")

        def write(argv):
            from provision.models import Result

            self.files[(name, argv[1])] = argv[2]
            return Result("write", 0)

        def false(argv):
            from provision.models import Result

            return Result("false", 1, "", "it went wrong\nreally wrong")

        remote.answers += [(r"^cat ", cat), (r"^write ", write), (r"^false$", false)]
        self.remotes[name] = remote
        return remote


def load_play(tmp_path: Path, playbook: str, extra_vars=None):
    (tmp_path / "inv.yml").write_text(INVENTORY)
    (tmp_path / "play.yml").write_text(textwrap.dedent(playbook))
    book = load_playbook(tmp_path / "play.yml", modules=MODULES)
    inv = load_inventory(tmp_path / "inv.yml")
    validate(book, inv, extra_vars or {}, modules=MODULES)
    return book, inv


def run_play(book, inv, hosts: Hosts, **options):
    runner = Runner(Options(**options), connector=hosts.connect, modules=MODULES)
    return runner.run(book, inv)
