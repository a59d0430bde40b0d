"""Host keys: read from the console output, pinned, and written to ``<state_dir>/known_hosts``.

cloud-init prints the host's public keys between ``-----BEGIN SSH HOST KEY KEYS-----`` and
``-----END SSH HOST KEY KEYS-----`` on the serial console, which only the AWS account can read:
a key from there is pinned without ever trusting the network. Without it, the key the host
presents is trusted on first use only when the user allowed that, and the choice is recorded.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from provision.connection.keys import make_private_dir
from provision.errors import ConnectError

BEGIN = "-----BEGIN SSH HOST KEY KEYS-----"
END = "-----END SSH HOST KEY KEYS-----"
_KEY = re.compile(
    r"\b(ssh-ed25519|ecdsa-sha2-nistp(?:256|384|521)|ssh-rsa)\s+([A-Za-z0-9+/]+={0,2})"
)
# OpenSSH clients prefer these first; the first one found is the instance's ``host_key``.
_PREFERENCE = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
)

HostKeyScanner = Callable[[str, int], str]
"""Returns the key ``address:port`` presents, as ``"keytype base64"``."""


def parse_console_host_keys(output: str) -> tuple[str, ...]:
    """The ``"keytype base64"`` keys of the last host-key block in a console output.

    The last block wins because a rebooted instance prints a fresh one. Lines may carry a
    console prefix (``ec2: ``, a kernel timestamp); only the key type and data are kept.
    """
    start = output.rfind(BEGIN)
    if start < 0:
        return ()
    end = output.find(END, start)
    if end < 0:
        return ()
    keys = []
    for match in _KEY.finditer(output[start + len(BEGIN) : end]):
        keytype, data = match.groups()
        try:
            base64.b64decode(data, validate=True)
        except binascii.Error:
            continue
        keys.append(f"{keytype} {data}")
    return tuple(sorted(set(keys), key=_rank))


def _rank(key: str) -> tuple[int, str]:
    keytype = key.split()[0]
    return (_PREFERENCE.index(keytype) if keytype in _PREFERENCE else 99, key)


@dataclass(frozen=True)
class Pinned:
    """The keys to trust for one host and how we came to trust them (console/state/tofu)."""

    keys: tuple[str, ...]
    source: str

    @property
    def preferred(self) -> str | None:
        return self.keys[0] if self.keys else None


def decide_host_keys(
    host: str,
    *,
    console: Sequence[str],
    recorded: Sequence[str],
    presented: str | None,
    trust_on_first_use: bool,
) -> Pinned | None:
    """Which keys to pin for ``host``, or None when nothing can be trusted yet.

    Raises ``ConnectError`` when the host presents a key, or the console shows keys, that do
    not match what is already trusted: that is either a replaced host or a man in the middle.
    """
    if recorded:
        if console and not set(recorded) & set(console):
            raise ConnectError(
                "console output shows host keys that differ from the pinned "
                "ones; refusing (tear the cluster down if it was rebuilt)",
                host=host,
            )
        _check_presented(host, presented, recorded, "pinned")
        return Pinned(tuple(recorded), "state")
    if console:
        _check_presented(host, presented, console, "console output")
        return Pinned(tuple(console), "console")
    if presented and trust_on_first_use:
        return Pinned((presented,), "tofu")
    return None


def _check_presented(host: str, presented: str | None, trusted: Sequence[str], what: str) -> None:
    if presented is not None and presented not in trusted:
        raise ConnectError(
            f"host key mismatch: the host presents {presented.split()[0]} "
            f"{presented.split()[1][:24]}..., which is not among the keys from the {what}; "
            "refusing to connect",
            host=host,
        )


def known_hosts_name(address: str, port: int) -> str:
    """OpenSSH's host field: ``address`` on port 22, ``[address]:port`` otherwise."""
    return address if port == 22 else f"[{address}]:{port}"


def write_known_hosts(path: Path, address: str, port: int, keys: Iterable[str]) -> None:
    """Replace the lines of ``address:port`` in an OpenSSH known_hosts file with ``keys``."""
    name = known_hosts_name(address, port)
    kept = [line for line in _read_lines(path) if line.split(" ", 1)[0] != name]
    _write_atomically(path, [*kept, *(f"{name} {key}" for key in keys)])


def forget_known_hosts(path: Path, names: Iterable[str]) -> None:
    """Drop every line of these host names (``known_hosts_name`` form)."""
    drop = set(names)
    lines = _read_lines(path)
    kept = [line for line in lines if line.split(" ", 1)[0] not in drop]
    if kept != lines:
        _write_atomically(path, kept)


def _read_lines(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [line for line in path.read_text().splitlines() if line.strip()]


def _write_atomically(path: Path, lines: list[str]) -> None:
    make_private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        handle.write("".join(f"{line}\n" for line in lines))
    os.replace(tmp, path)
