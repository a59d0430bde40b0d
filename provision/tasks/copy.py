"""``copy``: a local file or folder (``src``), or inline ``content``, to ``dest`` on the host.

Like Ansible's ``copy``: a sha256 manifest of both sides decides what to send; only changed
files travel, all of them in one tar stream (one round trip); ``delete: true`` removes files
no longer in the source; ``mode``/``owner``/``group`` are applied and drift is detected.
In diff mode the unified diff of each changed text file is reported.
"""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import io
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from provision.errors import ConfigError
from provision.models.names import check_name, check_path
from provision.tasks.base import ModuleSpec, Outcome, Reads, TaskContext

__all__ = ["SPEC", "CopyArgs", "Entry", "parse_remote", "plan"]

# Prints "mode owner group path" then "sha256  path" for every file under $1 (relative paths).
REMOTE_MANIFEST = (
    'cd "$1" 2>/dev/null || exit 0; '
    "find . -type f -printf 'stat %m %u %g %p\\n'; find . -type f -exec sha256sum {} +"
)
# $1 root, $2 owner:group, then the files just sent (only those change owner). The files are
# extracted into a temporary folder under the root, then each renamed into place: a failed
# write (a full disk) leaves every old file whole (tar alone would unlink it first and leave
# half a new one) and removes the temporary folder.
EXTRACT = (
    'set -e; r="$1"; o="$2"; shift 2; mkdir -p "$r"; t=$(mktemp -d "$r/.provision.XXXXXX"); '
    'trap \'rm -rf "$t"\' EXIT; tar -x -m --no-same-owner -C "$t"; '
    'for f; do chown "$o" "$t/$f"; mkdir -p "$(dirname "$r/$f")"; done; '
    'for f; do mv -f "$t/$f" "$r/$f"; done'
)


@dataclass(frozen=True)
class CopyArgs:
    dest: str
    src: str | None = None
    content: str | None = None
    mode: str | None = None  # octal, e.g. "0644"; default: the local file's permission bits
    owner: str = "root"
    group: str = "root"
    delete: bool = False
    exclude: tuple[str, ...] = ()  # shell-style patterns, neither sent nor deleted (e.g. ".env")

    def __post_init__(self) -> None:
        check_path(self.dest, "copy.dest")
        check_name(self.owner, "copy.owner")
        check_name(self.group, "copy.group")
        if (self.src is None) == (self.content is None):
            raise ConfigError("give exactly one of 'src' and 'content'", field="copy")
        if self.mode is not None:
            try:
                int(self.mode, 8)
            except ValueError:
                raise ConfigError(f"mode {self.mode!r} is not octal", field="copy.mode") from None


@dataclass(frozen=True)
class Entry:
    data: bytes
    mode: int

    @property
    def sha(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _source(args: CopyArgs, base: Path) -> Path:
    """``src``, from ``base`` when relative; a file or a folder, else a ``ConfigError``."""
    src = Path(args.src or "")
    src = src if src.is_absolute() else base / src
    if not (src.is_file() or src.is_dir()):
        raise ConfigError(f"source {src} does not exist", field="copy.src")
    return src


def sources(args: CopyArgs, variables: Mapping[str, Any]) -> None:
    """At load: the ``src`` exists (inline ``content`` needs nothing)."""
    if args.src is not None:
        _source(args, Path(str(variables.get("playbook_dir", "."))))


def local_entries(args: CopyArgs, base: Path) -> tuple[str, dict[str, Entry]]:
    """The remote root folder and {relative path: Entry} of what should be there."""
    mode = int(args.mode, 8) if args.mode else None
    if args.content is not None:
        dest = PurePosixPath(args.dest)
        return str(dest.parent), {dest.name: Entry(args.content.encode(), mode or 0o644)}
    src = _source(args, base)
    if src.is_file():
        dest = PurePosixPath(args.dest)
        return str(dest.parent), {dest.name: _entry(src, mode)}
    files = sorted(p for p in src.rglob("*") if p.is_file())
    return args.dest, {p.relative_to(src).as_posix(): _entry(p, mode) for p in files}


def _excluded(rel: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatch(rel, p) for p in patterns)


def _entry(path: Path, mode: int | None) -> Entry:
    return Entry(path.read_bytes(), mode if mode is not None else path.stat().st_mode & 0o777)


def parse_remote(stdout: str) -> dict[str, tuple[str, int, str]]:
    """{relative path: (sha256, mode, "owner:group")} from ``REMOTE_MANIFEST`` output."""
    stats: dict[str, tuple[int, str]] = {}
    shas: dict[str, str] = {}
    for line in stdout.splitlines():
        if line.startswith("stat "):
            _, mode, owner, group, path = line.split(" ", 4)
            stats[path.removeprefix("./")] = (int(mode, 8), f"{owner}:{group}")
        else:
            digest, _, path = line.partition("  ")
            shas[path.removeprefix("./")] = digest
    return {p: (shas.get(p, ""), m, o) for p, (m, o) in stats.items()}


def plan(
    want: dict[str, Entry], have: dict[str, tuple[str, int, str]], owner: str, only: bool
) -> tuple[list[str], list[str]]:
    """(files to send, files to delete). ``only``: just the wanted names matter (a file copy)."""
    send = [rel for rel, entry in want.items() if have.get(rel) != (entry.sha, entry.mode, owner)]
    delete = [] if only else sorted(set(have) - set(want))
    return send, delete


def _tar(want: dict[str, Entry], names: list[str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for rel in names:
            info = tarfile.TarInfo(rel)
            info.size = len(want[rel].data)
            info.mode = want[rel].mode
            tar.addfile(info, io.BytesIO(want[rel].data))
    return buf.getvalue()


def _diff(ctx: TaskContext, root: str, want: dict[str, Entry], names: list[str]) -> str:
    chunks = []
    for rel in names:
        old = ctx.read(["cat", f"{root}/{rel}"]).stdout if ctx.diff else ""
        try:
            new = want[rel].data.decode()
        except UnicodeDecodeError:
            chunks.append(f"Binary file {rel} differs\n")
            continue
        chunks.extend(
            difflib.unified_diff(
                old.splitlines(keepends=True),
                new.splitlines(keepends=True),
                f"{root}/{rel} (host)",
                f"{root}/{rel} (local)",
            )
        )
    return "".join(chunks)


def apply(ctx: TaskContext, args: CopyArgs) -> Outcome:
    root, want = local_entries(args, Path(str(ctx.vars.get("playbook_dir", "."))))
    have = parse_remote(ctx.looked(reads(args, ctx.vars))["manifest"].stdout)
    owner = f"{args.owner}:{args.group}"
    if args.exclude:
        want = {k: v for k, v in want.items() if not _excluded(k, args.exclude)}
        have = {k: v for k, v in have.items() if not _excluded(k, args.exclude)}
    send, delete = plan(want, have, owner, only=not args.delete or root != args.dest)
    if not send and not delete:
        return ctx.ok(f"{len(want)} file(s) up to date in {root}", files=[], removed=[])
    diff = _diff(ctx, root, want, send) if ctx.diff else ""
    if send:
        ctx.run(["sh", "-c", EXTRACT, "sh", root, owner, *send], stdin=_tar(want, send))
    if delete:
        ctx.run(["rm", "-f", "--", *(f"{root}/{rel}" for rel in delete)])
    msg = f"sent {len(send)} file(s) to {root}" + (f", removed {len(delete)}" if delete else "")
    return ctx.changed(msg, diff=diff, files=send, removed=delete)


def reads(args: CopyArgs, variables: Mapping[str, Any]) -> Reads:
    root, _ = local_entries(args, Path(str(variables.get("playbook_dir", "."))))
    return {"manifest": ["sh", "-c", REMOTE_MANIFEST, "sh", root]}


SPEC = ModuleSpec("copy", CopyArgs, apply, reads=reads, sources=sources)
