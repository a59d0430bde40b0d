"""Commands every connection (SSH, local) builds the same way: an atomic file write, and
several read-only commands in one round trip.

Values reach the shell as positional arguments or quoted here (``shlex.join``), at the
boundary, like everywhere else."""

from __future__ import annotations

import secrets
import shlex
from collections.abc import Sequence
from typing import Protocol

from provision.models import Result

__all__ = ["put_argv", "run_batched"]

# $1 the path, $2 the octal mode; the data comes on stdin. A temporary file in the same
# folder, then a rename: a reader never sees half a file, and a failed write (a full disk)
# leaves the old file in place and removes its half-written temporary file.
_PUT = (
    'set -e; d=$(dirname "$1"); mkdir -p "$d"; t=$(mktemp "$d/.provision.XXXXXX"); '
    'trap \'rm -f "$t"\' EXIT; cat > "$t"; chmod "$2" "$t"; mv -f "$t" "$1"; trap - EXIT'
)


def put_argv(path: str, mode: int) -> list[str]:
    """The command that writes its standard input to ``path`` with ``mode``, atomically."""
    return ["sh", "-c", _PUT, "sh", path, f"{mode:o}"]


class _Runs(Protocol):
    def run(self, argv: Sequence[str], *, sudo: bool = ..., warn: bool = ...) -> Result: ...


def run_batched(
    remote: _Runs, commands: Sequence[Sequence[str]], *, sudo: bool = False
) -> list[Result]:
    """``run_many`` for any connection with ``run``: one shell runs every command (each argv
    quoted here) side by side, and prints their outputs in order, each followed by a marker
    line carrying its exit code."""
    if not commands:
        return []
    marker = f"@@provision-{secrets.token_hex(8)}"
    # Read-only, so they may run side by side: each writes its output and exit code to a
    # file of its own; then the outputs are printed in order, each followed by the marker.
    started = "\n".join(
        f'({shlex.join(argv)} </dev/null >"$d/{i}" 2>/dev/null; echo $? >"$d/{i}.rc") &'
        for i, argv in enumerate(commands)
    )
    printed = "\n".join(
        f'cat "$d/{i}"; printf \'\\n{marker} %s\\n\' "$(cat "$d/{i}.rc")"'
        for i in range(len(commands))
    )
    script = f'd=$(mktemp -d)\n{started}\nwait\n{printed}\nrm -rf "$d"'
    out = remote.run(["sh", "-c", script], sudo=sudo, warn=True).stdout
    results, rest = [], out
    for argv in commands:
        body, _, rest = rest.partition(f"\n{marker} ")
        code, _, rest = rest.partition("\n")
        results.append(Result(shlex.join(argv), int(code) if code.isdigit() else 255, body))
    return results
